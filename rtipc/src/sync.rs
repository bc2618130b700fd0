//! The atomics that the lock-free protocols use: `core`'s normally, loom's under `--cfg loom`,
//! so that every `protocol.rs` is model-checked as written (the shim of crossbeam-utils'
//! `primitive` module). Handles, which map real shared memory, use `core`'s atomics and are
//! left out of loom builds at their module declaration.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A word read from shared memory that breaks a protocol: the protocols return it instead of
/// acting on it, and the handles turn it into a [`DataError`](crate::DataError).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadWord {
    /// The word as read.
    pub word: u64,
    /// What is wrong with it.
    pub reason: CorruptWord,
}

/// What a word that breaks a protocol does wrong; each has a fixed explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorruptWord {
    /// A state channel's middle slot index is out of range or equals the producer's own slot.
    StateMiddleOnPublish,
    /// A state channel's middle word is out of range, clean, or equals the consumer's slot.
    StateMiddleOnFetch,
    /// A state channel's sequence number went backwards.
    StateSeqBackwards,
    /// A state channel's saved slot indices are not three distinct slots.
    StateIndices,
    /// A state channel's word changed more often during one publish than a consumer that
    /// follows the protocol can change it.
    StateContention,
    /// A queue's ring cell holds an invalid slot index or the producer's own slot.
    QueueCellOnPush,
    /// A queue's ring cell changed to an invalid value during a pop.
    QueueCellOnPop,
    /// A queue consumer's published position is ahead of the producer or too far behind.
    QueueTail,
    /// A queue's saved position or slot index is out of range.
    QueueSaved,
    /// A record channel's record header has a length, sequence number or padding that does not
    /// fit the ring.
    RecordHeader,
    /// A record channel's head, tail or held position is out of order or too far apart.
    RecordPositions,
}

impl CorruptWord {
    /// The explanation, for a person.
    pub const fn text(self) -> &'static str {
        match self {
            CorruptWord::StateMiddleOnPublish => {
                "a state channel's middle slot index is invalid or equals the producer's own slot"
            }
            CorruptWord::StateMiddleOnFetch => {
                "a state channel's middle slot index is invalid, clean, or equals the consumer's \
                 own slot"
            }
            CorruptWord::StateSeqBackwards => "a state channel's sequence number went backwards",
            CorruptWord::StateIndices => "a state channel's slot indices are not distinct",
            CorruptWord::StateContention => {
                "a state channel's word changed more often during one publish than its consumer \
                 can change it"
            }
            CorruptWord::QueueCellOnPush => {
                "a queue's ring cell holds an invalid slot index or the producer's own slot"
            }
            CorruptWord::QueueCellOnPop => {
                "a queue's ring cell changed to an invalid value during a pop"
            }
            CorruptWord::QueueTail => {
                "a queue consumer's published position is ahead of the producer or too far behind"
            }
            CorruptWord::QueueSaved => "a queue's saved position or slot index is out of range",
            CorruptWord::RecordHeader => {
                "a record channel's record header has a length, sequence number or padding that \
                 does not fit the ring"
            }
            CorruptWord::RecordPositions => {
                "a record channel's head, tail or held position is out of order or too far apart"
            }
        }
    }
}

/// Where a side stops in a model of a crash: production code passes [`Run`], which never stops
/// (its `Stop` is uninhabited, so the stopping paths compile away); loom models pass a counter
/// that stops a side after a number of atomic steps, as a SIGKILL would.
pub(crate) trait Steps {
    /// What `next` returns when the side stops.
    type Stop;
    /// Whether the side may take its next step (an atomic operation on shared memory).
    fn next(&mut self) -> Result<(), Self::Stop>;
}

/// Runs to completion: the production [`Steps`].
pub(crate) struct Run;

impl Steps for Run {
    type Stop = core::convert::Infallible;
    #[inline(always)]
    fn next(&mut self) -> Result<(), Self::Stop> {
        Ok(())
    }
}

/// The side stopped before finishing, as if killed: only models see this.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stopped;

/// Stops a side after a number of atomic steps, as a SIGKILL would (`None`: never): the
/// [`Steps`] of the crash models.
#[cfg(all(test, loom))]
pub(crate) struct StopAfter(pub Option<u32>);

#[cfg(all(test, loom))]
impl Steps for StopAfter {
    type Stop = Stopped;
    fn next(&mut self) -> Result<(), Stopped> {
        match &mut self.0 {
            None => Ok(()),
            Some(0) => Err(Stopped),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
        }
    }
}

/// A step of a side that may be stopped: returns `Ok(Err(stop))` from the operation, leaving it
/// where it is.
macro_rules! step {
    ($steps:expr) => {
        if let Err(stop) = $steps.next() {
            return Ok(Err(stop));
        }
    };
}
pub(crate) use step;
