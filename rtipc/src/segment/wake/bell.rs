//! The doorbell and the bell: the wake-up mechanism around the protocol's `waiting` word.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::protocol::{self, Slept, EVENTFD, FUTEX};
use crate::error::{Error, Result};
use crate::layout::{common_ctrl, fanout_ctrl};
use crate::segment::claim::ChannelRef;
use crate::sys::mem::Mapping;
use crate::sys::{eventfd, futex};

/// How often a sleeping consumer looks whether its producer is still there.
pub(crate) const LIVENESS_PERIOD: Duration = Duration::from_millis(100);

/// The notification state of one end of a channel: the `waiting` word and, for anonymous
/// segments, the channel's eventfd.
struct Shared {
    map: Arc<Mapping>,
    word: u64,
    eventfd: Option<Arc<OwnedFd>>,
}

impl Shared {
    /// The `waiting` word of consumer `consumer` of `ch`: the channel's own, or for a fan-out
    /// channel the one in that consumer's line. Fan-out consumers wait on their futex only: an
    /// eventfd is one per channel and would wake one of them.
    fn new(ch: &ChannelRef, consumer: u32) -> Option<Shared> {
        let fanout = ch.consumers() > 1;
        ch.info.notify.then(|| Shared {
            map: Arc::clone(&ch.map),
            word: if fanout {
                ch.consumer_line(consumer, fanout_ctrl::CONSUMER_WAITING)
            } else {
                ch.ctrl_line(common_ctrl::LINE_NOTIFY)
            },
            eventfd: if fanout { None } else { ch.eventfd.clone() },
        })
    }

    fn waiting(&self) -> &AtomicU32 {
        self.map.atomic_u32(self.word)
    }
}

/// The producer's side: wakes the consumer after a publish, if it waits.
pub(crate) struct Doorbell {
    shared: Shared,
    /// The `waiting` words of a fan-out channel's consumers 1 and up.
    others: Box<[Shared]>,
}

impl Doorbell {
    /// The doorbell of channel `ch`; `None` if the channel was created without notification.
    pub(crate) fn new(ch: &ChannelRef) -> Option<Doorbell> {
        let others = (1..ch.consumers())
            .filter_map(|k| Shared::new(ch, k))
            .collect();
        Shared::new(ch, 0).map(|shared| Doorbell { shared, others })
    }

    /// Call after every publish: one fence and one load per consumer unless one waits. Out of
    /// line: the fence costs far more than the call, and the publish of a channel without
    /// notification then carries only the test for it.
    #[inline(never)]
    pub(crate) fn ring(&self) {
        let how = protocol::after_publish(self.shared.waiting());
        if how != 0 {
            Self::wake(&self.shared, how);
        }
        for other in &*self.others {
            // The fence of `after_publish` above orders these loads too.
            let how = protocol::after_fence(other.waiting());
            if how != 0 {
                Self::wake(other, how);
            }
        }
    }

    #[cold]
    fn wake(shared: &Shared, how: u32) {
        if how & FUTEX != 0 {
            futex::wake(shared.waiting());
        }
        if how & EVENTFD != 0 {
            if let Some(fd) = &shared.eventfd {
                eventfd::write(fd.as_fd());
            }
        }
    }
}

/// The consumer's side: announces, sleeps, and exposes the eventfd.
pub(crate) struct Bell {
    shared: Shared,
}

fn slept(timed_out: std::io::Result<bool>, op: &'static str) -> Result<Slept> {
    match timed_out {
        Ok(true) => Ok(Slept::TimedOut),
        Ok(false) => Ok(Slept::Woken),
        Err(e) => Err(Error::io(op, e)),
    }
}

impl Bell {
    /// The bell of consumer `consumer` (0 unless fan-out) of channel `ch`; `None` if the
    /// channel was created without notification.
    pub(crate) fn new(ch: &ChannelRef, consumer: u32) -> Option<Bell> {
        Shared::new(ch, consumer).map(|shared| Bell { shared })
    }

    /// Blocks until `has_data` holds (true) or `timeout` passes (false). While it sleeps it
    /// looks at least every [`LIVENESS_PERIOD`] whether a producer is there (`producer`): if the
    /// producer it saw (`seen`, kept by the handle across calls) is gone, it fails with
    /// [`Error::NoProducer`], so that a consumer never sleeps forever on a producer that died.
    /// A producer not seen yet is waited for; after reporting one gone, the next wait waits for
    /// a new one.
    pub(crate) fn wait(
        &self,
        has_data: impl Fn() -> bool,
        timeout: Option<Duration>,
        producer: impl Fn() -> Result<bool>,
        seen: &mut bool,
        channel: &str,
    ) -> Result<bool> {
        // A timeout too far in the future to represent is no timeout.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if has_data() {
                return Ok(true);
            }
            if producer()? {
                *seen = true;
            } else if std::mem::take(seen) {
                // The producer may have committed its last update or message and gone between
                // the look above and this one: what it left is still read first.
                if has_data() {
                    *seen = true;
                    return Ok(true);
                }
                return Err(Error::NoProducer {
                    channel: channel.to_owned(),
                });
            }
            let now = Instant::now();
            let slice = now.checked_add(LIVENESS_PERIOD);
            let until = match (deadline, slice) {
                (Some(d), Some(s)) => Some(d.min(s)),
                (d, s) => d.or(s),
            };
            if self.wait_until(&has_data, until)? {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// Blocks until `has_data` holds (true) or `deadline` passes (false).
    fn wait_until(&self, has_data: impl Fn() -> bool, deadline: Option<Instant>) -> Result<bool> {
        let word = self.shared.waiting();
        match &self.shared.eventfd {
            Some(fd) => protocol::wait(
                word,
                EVENTFD,
                has_data,
                || eventfd::drain(fd.as_fd()).map_err(|e| Error::io("reading eventfd", e)),
                |_| {
                    slept(
                        eventfd::poll_readable(fd.as_fd(), deadline),
                        "polling eventfd",
                    )
                },
            ),
            None => protocol::wait(
                word,
                FUTEX,
                has_data,
                || Ok(()),
                |how| slept(futex::wait(word, how, deadline), "waiting on futex"),
            ),
        }
    }

    /// Drains the eventfd and announces that the consumer waits on it; true (and no
    /// announcement) if `has_data` already holds.
    pub(crate) fn arm(&self, has_data: impl Fn() -> bool, channel: &str) -> Result<bool> {
        let Some(fd) = &self.shared.eventfd else {
            return Err(Error::NoEventFd {
                channel: channel.to_owned(),
            });
        };
        if has_data() {
            return Ok(true);
        }
        eventfd::drain(fd.as_fd()).map_err(|e| Error::io("reading eventfd", e))?;
        Ok(protocol::announce(self.shared.waiting(), EVENTFD, has_data))
    }

    /// The channel's eventfd, if it has one.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.shared.eventfd.as_deref().map(AsFd::as_fd)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::layout::{ChannelKind, ChannelSpec, Direction, End};
    use crate::segment::Segment;

    #[derive(crate::Object)]
    #[repr(C)]
    struct Word {
        v: u64,
    }

    fn bell() -> (Segment, Bell) {
        let seg = Segment::builder()
            .channel(
                ChannelSpec::queue("q", Direction::PeerToCreator, 4)
                    .object::<Word>()
                    .notify(true),
            )
            .create_anonymous()
            .unwrap();
        let ch = seg.channel("q", ChannelKind::Queue, End::Consumer).unwrap();
        let bell = Bell::new(&ch, 0).expect("a channel with notification");
        (seg, bell)
    }

    #[test]
    fn what_a_producer_left_as_it_went_is_read_before_it_is_reported_gone() {
        let (_seg, bell) = bell();
        // The first look finds nothing; by the liveness check the producer has committed its
        // last message and gone.
        let looks = Cell::new(0);
        let has_data = || {
            looks.set(looks.get() + 1);
            looks.get() > 1
        };
        let mut seen = true;
        let got = bell.wait(
            has_data,
            Some(Duration::from_secs(5)),
            || Ok(false),
            &mut seen,
            "q",
        );
        assert!(matches!(got, Ok(true)), "{got:?}");
        assert!(seen, "the producer's departure is still to be reported");
        // Nothing more: now it is reported, once.
        let got = bell.wait(
            || false,
            Some(Duration::from_secs(5)),
            || Ok(false),
            &mut seen,
            "q",
        );
        assert!(matches!(got, Err(Error::NoProducer { .. })), "{got:?}");
        assert!(!seen);
    }
}
