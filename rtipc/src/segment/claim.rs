//! Channels of a mapped segment, and the claims that make each end single-owner.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wake::Bell;
use crate::error::{DataError, Error, Result};
use crate::layout::{common_ctrl, fanout_ctrl, ChannelInfo, Ctrl, End};
use crate::schema::{self, Object};
use crate::sync::BadWord;
use crate::sys::lock::{self, Lock};
use crate::sys::mem::Mapping;

/// A validated channel of a mapped segment: what handles are built from.
#[derive(Clone)]
pub(crate) struct ChannelRef {
    pub map: Arc<Mapping>,
    /// The channel's position in the table.
    pub index: usize,
    pub info: Arc<ChannelInfo>,
    pub cache_line: u64,
    /// The channel's eventfd (notify-enabled channels of anonymous segments).
    pub eventfd: Option<Arc<OwnedFd>>,
}

impl ChannelRef {
    /// The channel's control block.
    pub fn ctrl(&self) -> Ctrl<'_> {
        let words = self
            .map
            .atomics_u64(self.info.ctrl_offset, self.info.ctrl_len / 8);
        Ctrl::new(words, self.cache_line)
    }

    /// The offset in the mapping of line `line` of the control block.
    pub fn ctrl_line(&self, line: u64) -> u64 {
        self.info.ctrl_offset + line * self.cache_line
    }

    /// The start of slot `index` (below the channel's slot count).
    pub fn slot(&self, index: u64) -> *mut u8 {
        assert!(
            index < u64::from(self.info.slot_count),
            "slot index out of range"
        );
        let stride = self.info.slot_stride;
        self.map
            .ptr(self.info.buffer_offset + index * stride, stride)
    }

    /// Finds `T` among the channel's objects and checks it against ours for `usage`: exactly,
    /// or, for an appendable type, by the prefix rule where `usage` allows it.
    pub fn object_for<T: Object>(&self, usage: Use) -> Result<Found> {
        self.object_like(
            T::ID,
            T::SCHEMA,
            size_of::<T>() as u64,
            align_of::<T>() as u64,
            T::FINGERPRINT,
            usage,
        )
    }

    /// [`ChannelRef::object_for`] for a type described by its id, schema, size, alignment and
    /// fingerprint (a [`Region`](crate::Region) type).
    pub fn object_like(
        &self,
        id: u64,
        schema: &'static schema::Schema,
        size: u64,
        align: u64,
        fingerprint: u64,
        usage: Use,
    ) -> Result<Found> {
        let c = &self.info;
        let object = schema.name().to_owned();
        let Some(o) = c.objects.iter().find(|o| o.id == id) else {
            if let Some(o) = c.objects.iter().find(|o| o.schema.name() == schema.name()) {
                return Err(Error::IdMismatch {
                    channel: c.name.clone(),
                    object,
                    ours: id,
                    theirs: o.id,
                });
            }
            return Err(Error::ObjectNotFound {
                channel: c.name.clone(),
                object,
                id,
            });
        };
        let mismatch = |diff: schema::SchemaDiff| Error::SchemaMismatch {
            channel: c.name.clone(),
            object: object.clone(),
            diff,
        };
        // The fast path: the same layout.
        if o.size == size && o.align == align && o.fingerprint == fingerprint {
            return Ok(Found {
                offset: o.offset,
                size: o.size,
                align: o.align,
                evolution: None,
            });
        }
        let diff = schema::diff(schema, &o.schema);
        let evolution = match schema::prefix(schema, &o.schema) {
            Ok(e) => e,
            // The diff carries the prefix rule's reason.
            Err(_) => return Err(mismatch(diff)),
        };
        let ours_older = evolution.ours_is_older();
        let refusal = match usage {
            Use::Exact => Some(
                "this handle needs the exact layout; the prefix rule of appendable types \
                 applies to `StateProducer`, `StateConsumer`, `StateCopier`, `QueueProducer`, \
                 `QueueConsumer`, `QueueCopier`, `RecordCopier`, `RecordSender`, observers and \
                 `MultiStateConsumer`"
                    .to_owned(),
            ),
            Use::Elements => Some(format!(
                "the prefix rule applies ({evolution}), but a record channel's records are \
                 arrays of this type, read and written in place, and another revision's \
                 elements have another size: use `RecordCopier` to read, `RecordSender` to \
                 write an earlier revision"
            )),
            Use::Read if !ours_older => Some(format!(
                "the prefix rule applies, but this consumer's type ({evolution}) has fields \
                 the segment's slots do not: it cannot read them in place; read the \
                 segment's revision with a build of that revision, or copy it out with \
                 `StateCopier` or `QueueCopier`, which fill the missing fields with zeros"
            )),
            Use::Write if !ours_older => Some(format!(
                "the prefix rule applies, but this producer's type ({evolution}) is longer \
                 than the segment's slots: a producer may only be of the segment's revision \
                 or an earlier one"
            )),
            _ => None,
        };
        if let Some(reason) = refusal {
            return Err(mismatch(diff.with_reason(reason)));
        }
        // The slot holds the segment's revision at `o.offset`, aligned for it; ours is a
        // prefix (or, copied, any revision), whose alignment the slot's must cover when it is
        // used in place.
        if usage != Use::Copy && (o.align < align || o.offset % align != 0) {
            return Err(mismatch(diff.with_reason(format!(
                "the prefix rule applies ({evolution}), but the segment's object is aligned to \
                 {} bytes and this build's type needs {align}",
                o.align
            ))));
        }
        Ok(Found {
            offset: o.offset,
            size: o.size,
            align: o.align,
            evolution: Some(evolution),
        })
    }

    /// The channel's one object, for a handle that moves it as bytes: its offset in the slot
    /// and its size. A channel of several objects is refused.
    pub fn only_object(&self) -> Result<(u64, u64)> {
        match self.info.objects.as_slice() {
            [o] => Ok((o.offset, o.size)),
            objects => Err(Error::InvalidArgument(format!(
                "channel `{}` carries {} objects; a raw handle moves channels of one",
                self.info.name,
                objects.len()
            ))),
        }
    }

    /// Refuses `len` bytes as `what` ("an update", "a message") of the channel's object of
    /// `size` bytes unless they are exactly that many.
    pub fn check_len(&self, what: &str, size: usize, len: usize) -> Result<()> {
        if len != size {
            return Err(Error::InvalidArgument(format!(
                "{what} of channel `{}` is {size} bytes, not {len}",
                self.info.name
            )));
        }
        Ok(())
    }

    /// How many consumer ends the channel has (more than one: a fan-out state channel).
    pub fn consumers(&self) -> u32 {
        self.info.kind.consumers(self.info.slot_count)
    }

    /// The offset in the mapping of fan-out consumer `consumer`'s line, plus `at`.
    pub fn consumer_line(&self, consumer: u32, at: u64) -> u64 {
        let n = u64::from(self.consumers());
        self.ctrl_line(fanout_ctrl::line_consumers(n, self.cache_line) + u64::from(consumer)) + at
    }

    /// Claims `end` of the channel for a new handle (consumer 0 for a consumer end).
    pub fn claim_end(self, end: End) -> Result<EndHandle> {
        self.claim_end_at(end, 0)
    }

    /// Claims `end` of the channel, consumer end `consumer` (below [`consumers`]) for a
    /// consumer.
    ///
    /// [`consumers`]: ChannelRef::consumers
    pub fn claim_end_at(self, end: End, consumer: u32) -> Result<EndHandle> {
        let consumer = if end == End::Consumer { consumer } else { 0 };
        let claim = Claim::take(&self, end, consumer)?;
        Ok(EndHandle {
            ch: self,
            end,
            consumer,
            _claim: claim,
            poisoned: false,
        })
    }
}

/// How a handle uses an object, which decides what the prefix rule of appendable types
/// allows it ([`schema::prefix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// The exact layout only.
    Exact,
    /// Read in place: our type may be an earlier revision than the segment's.
    Read,
    /// Written in place, the rest of the segment's object zeroed on every publish: our type
    /// may be an earlier revision than the segment's.
    Write,
    /// Copied out, missing fields zero: any revision.
    Copy,
    /// The element of a record channel's arrays, read or written in place: the exact layout,
    /// as every element's place depends on the element's size.
    Elements,
}

/// An object found in a channel for a handle: where it is in the slot, its size there (the
/// segment's revision), and, when the revisions differ, how.
#[derive(Clone, Debug)]
pub struct Found {
    /// The object's offset in the slot.
    pub offset: u64,
    /// The object's size in the slot: the segment's revision's size.
    pub size: u64,
    /// The object's alignment in the segment's revision.
    pub align: u64,
    /// How our revision relates to the segment's, when they differ.
    pub evolution: Option<schema::Evolution>,
}

impl Found {
    /// The revision of the object that the segment holds, which a copying handle receives:
    /// the peer's when the revisions differ, `ours` otherwise.
    pub fn received_revision(&self, ours: &schema::Schema) -> u32 {
        self.evolution
            .as_ref()
            .map_or(ours.revision(), |e| e.theirs)
    }

    /// How many bytes a handle whose object is `ours` bytes copies out of (or into) the
    /// segment's object: the shorter of the two.
    pub fn common_len(&self, ours: usize) -> usize {
        ours.min(self.size as usize)
    }

    /// The bytes of the segment's object past an object of `ours` bytes (an earlier
    /// revision's): what a producer of that revision zeroes.
    pub fn tail_len(&self, ours: usize) -> usize {
        (self.size as usize).saturating_sub(ours)
    }
}

/// What every channel handle holds: the validated channel, its claim on one end, and whether
/// it has found a corrupt word in shared memory (after which it refuses further use). Derefs
/// to the channel.
pub(crate) struct EndHandle {
    ch: ChannelRef,
    end: End,
    /// Which consumer end, for a consumer (0 unless fan-out).
    consumer: u32,
    _claim: Claim,
    poisoned: bool,
}

impl EndHandle {
    /// Refuses use once a corrupt word was found. On every publish, fetch, push and pop.
    #[inline]
    pub fn check(&self) -> Result<(), DataError> {
        if self.poisoned {
            return Err(DataError::Poisoned);
        }
        Ok(())
    }

    /// Records that a word read from the channel breaks the protocol: the handle refuses
    /// further use.
    #[cold]
    #[inline(never)]
    pub fn corrupt(&mut self, bad: BadWord) -> DataError {
        self.poisoned = true;
        bad.into()
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.ch.info.name
    }

    /// Which consumer end this is (0 for a producer, and for the one consumer of a channel
    /// that is not fan-out).
    pub fn consumer(&self) -> u32 {
        self.consumer
    }

    /// Whether a process holds the other end of the channel (for a producer of a fan-out
    /// channel: any of its consumer ends).
    pub fn other_end_held(&self) -> Result<bool> {
        Claim::other_end_held(&self.ch, self.end)
    }

    /// Waits until a process holds the other end of the channel (true) or `timeout` passes
    /// (false), looking every few milliseconds.
    pub fn wait_for_other_end(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut pause = Duration::from_micros(200);
        loop {
            if self.other_end_held()? {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// A consumer's wait on `bell` until `has_data` holds (true) or `timeout` passes (false):
    /// refuses a poisoned handle and a channel without notification, and reports a producer
    /// that it saw (`seen`, kept by the handle across calls) gone; see [`Bell::wait`].
    pub fn wait(
        &self,
        bell: Option<&Bell>,
        has_data: impl Fn() -> bool,
        timeout: Option<Duration>,
        seen: &mut bool,
    ) -> Result<bool> {
        self.bell(bell)?.wait(
            has_data,
            timeout,
            || self.other_end_held(),
            seen,
            self.name(),
        )
    }

    /// A consumer's preparation of a wait on `bell`'s eventfd; see [`Bell::arm`].
    pub fn arm(&self, bell: Option<&Bell>, has_data: impl Fn() -> bool) -> Result<bool> {
        self.bell(bell)?.arm(has_data, self.name())
    }

    fn bell<'b>(&self, bell: Option<&'b Bell>) -> Result<&'b Bell> {
        self.check()?;
        bell.ok_or_else(|| Error::NotifyDisabled {
            channel: self.name().to_owned(),
        })
    }
}

impl std::ops::Deref for EndHandle {
    type Target = ChannelRef;
    fn deref(&self) -> &ChannelRef {
        &self.ch
    }
}

/// A held claim on one end of a channel: a lock the kernel releases when this process dies
/// (see [`crate::sys::lock`]), and the holder's pid in the channel's claim word, for people and
/// tools to read.
pub(crate) struct Claim {
    lock: Lock,
    map: Arc<Mapping>,
    word: u64,
}

impl Claim {
    /// The lock of `end` (consumer `consumer` for a consumer) of channel `ch`.
    fn lock_offset(ch: &ChannelRef, end: End, consumer: u32) -> u64 {
        match end {
            End::Producer => lock::end_lock(ch.index, 0),
            End::Consumer if consumer == 0 => lock::end_lock(ch.index, 1),
            End::Consumer => lock::fanout_consumer_lock(ch.index, consumer),
        }
    }

    /// The offset of the word where the holder of `end` (consumer `consumer`) records its pid.
    fn pid_word(ch: &ChannelRef, end: End, consumer: u32) -> u64 {
        match end {
            End::Producer => ch.ctrl_line(common_ctrl::LINE_CLAIMS),
            End::Consumer if ch.consumers() > 1 => {
                ch.consumer_line(consumer, fanout_ctrl::CONSUMER_PID)
            }
            End::Consumer => ch.ctrl_line(common_ctrl::LINE_CLAIMS) + 8,
        }
    }

    /// Whether a process holds `end` (consumer `consumer`) of channel `ch`, and the pid its
    /// claim word records (0: none; a holder killed leaves its pid behind, so only the lock
    /// says whether it is held). For tools; takes nothing and writes nothing.
    pub fn holder(ch: &ChannelRef, end: End, consumer: u32) -> Result<(bool, u64)> {
        let held = lock::is_held(ch.map.as_fd(), Self::lock_offset(ch, end, consumer))
            .map_err(|e| Error::io("looking at a channel end's claim", e))?;
        // Relaxed: informational, for people and tools.
        let pid = ch
            .map
            .atomic_u64(Self::pid_word(ch, end, consumer))
            .load(Ordering::Relaxed);
        Ok((held, pid))
    }

    /// Takes the claim on `end` (consumer `consumer` for a consumer); released by the drop, or
    /// by the kernel when the process dies.
    fn take(ch: &ChannelRef, end: End, consumer: u32) -> Result<Claim> {
        if consumer >= ch.consumers() {
            return Err(Error::InvalidArgument(format!(
                "channel `{}` has {} consumer ends, numbered from 0; there is no consumer {consumer}",
                ch.info.name,
                ch.consumers()
            )));
        }
        let word = Self::pid_word(ch, end, consumer);
        let lock = lock::Lock::try_take(ch.map.as_fd(), Self::lock_offset(ch, end, consumer))
            .map_err(|e| Error::io("claiming a channel end", e))?;
        let Some(lock) = lock else {
            // Relaxed: the pid is for the error message only.
            let holder = ch.map.atomic_u64(word).load(Ordering::Relaxed);
            return Err(Error::AlreadyClaimed {
                channel: ch.info.name.clone(),
                end,
                holder: u32::try_from(holder).ok().filter(|&p| p != 0),
            });
        };
        // Relaxed: informational, for people and tools; liveness is the lock's.
        ch.map
            .atomic_u64(word)
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        Ok(Claim {
            lock,
            map: Arc::clone(&ch.map),
            word,
        })
    }

    /// Whether a process holds the other end of the channel (`end` names this one).
    pub fn other_end_held(ch: &ChannelRef, end: End) -> Result<bool> {
        let held = |end, consumer| {
            lock::is_held(ch.map.as_fd(), Self::lock_offset(ch, end, consumer))
                .map_err(|e| Error::io("looking at a channel's other end", e))
        };
        match end {
            End::Consumer => held(End::Producer, 0),
            End::Producer => {
                for k in 0..ch.consumers() {
                    if held(End::Consumer, k)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // A forked child's copy of a handle holds no claim: it writes nothing.
        if self.lock.ours() {
            // Relaxed: informational. Cleared only if it is still our pid.
            let me = u64::from(std::process::id());
            let _ = self.map.atomic_u64(self.word).compare_exchange(
                me,
                0,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}
