//! Channels of a mapped segment, and the claims that make each end single-owner.

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{DataError, Error, Result};
use crate::layout::{common_ctrl, ChannelInfo, Ctrl, End};
use crate::schema::{self, Object};
use crate::sync::BadWord;
use crate::sys::mem::Mapping;
use crate::sys::proc;

/// A validated channel of a mapped segment: what handles are built from.
#[derive(Clone)]
pub(crate) struct ChannelRef {
    pub map: Arc<Mapping>,
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

    /// Finds `T` among the channel's objects and checks it against ours; returns its offset in
    /// the slot.
    pub fn object<T: Object>(&self) -> Result<u64> {
        let c = &self.info;
        let object = T::SCHEMA.name().to_owned();
        let Some(o) = c.objects.iter().find(|o| o.id == T::ID) else {
            if let Some(o) = c
                .objects
                .iter()
                .find(|o| o.schema.name() == T::SCHEMA.name())
            {
                return Err(Error::IdMismatch {
                    channel: c.name.clone(),
                    object,
                    ours: T::ID,
                    theirs: o.id,
                });
            }
            return Err(Error::ObjectNotFound {
                channel: c.name.clone(),
                object,
                id: T::ID,
            });
        };
        if o.size != size_of::<T>() as u64
            || o.align != align_of::<T>() as u64
            || o.fingerprint != T::FINGERPRINT
        {
            return Err(Error::SchemaMismatch {
                channel: c.name.clone(),
                object,
                diff: schema::diff(T::SCHEMA, &o.schema),
            });
        }
        Ok(o.offset)
    }

    /// Claims `end` of the channel for a new handle.
    pub fn claim_end(self, end: End) -> Result<EndHandle> {
        let claim = Claim::take(&self, end)?;
        Ok(EndHandle {
            ch: self,
            _claim: claim,
            poisoned: false,
        })
    }
}

/// What every channel handle holds: the validated channel, its claim on one end, and whether
/// it has found a corrupt word in shared memory (after which it refuses further use). Derefs
/// to the channel.
pub(crate) struct EndHandle {
    ch: ChannelRef,
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
}

impl std::ops::Deref for EndHandle {
    type Target = ChannelRef;
    fn deref(&self) -> &ChannelRef {
        &self.ch
    }
}

/// A held claim on one end of a channel.
pub(crate) struct Claim {
    map: Arc<Mapping>,
    word: u64,
    me: u64,
}

impl Claim {
    /// Takes the claim on `end`; released by the drop.
    fn take(ch: &ChannelRef, end: End) -> Result<Claim> {
        let word =
            ch.ctrl_line(common_ctrl::LINE_CLAIMS) + if end == End::Producer { 0 } else { 8 };
        let me = u64::from(std::process::id());
        let atom = ch.map.atomic_u64(word);
        // Acquire on success: whatever the previous holder wrote before releasing its claim
        // (its private protocol state) is visible to us. Relaxed on failure: we only look at
        // the holder's pid.
        let mut current = 0;
        loop {
            match atom.compare_exchange(current, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    return Ok(Claim {
                        map: Arc::clone(&ch.map),
                        word,
                        me,
                    })
                }
                Err(holder) => {
                    let dead = holder != me
                        && (holder > u64::from(i32::MAX as u32) || !proc::exists(holder as u32));
                    if holder != 0 && !dead {
                        return Err(Error::AlreadyClaimed {
                            channel: ch.info.name.clone(),
                            end,
                        });
                    }
                    // Free, or held by a process that no longer exists: take it over.
                    current = holder;
                }
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Release: our last protocol-state stores happen before the next holder's acquire.
        // A failed exchange means someone took the claim over (they judged us dead): leave it.
        let _ = self.map.atomic_u64(self.word).compare_exchange(
            self.me,
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}
