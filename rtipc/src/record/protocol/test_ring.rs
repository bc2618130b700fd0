//! The ring and words of one record channel in plain memory, for the protocol's tests and its
//! loom models (with loom's atomics under `--cfg loom`).

use super::{Geometry, Words, NONE};
use crate::sync::{AtomicU64, Ordering};

/// A ring of `capacity` bytes and the channel's words, as a fresh channel has them.
pub(super) struct Ring {
    pub ring: Vec<AtomicU64>,
    pub tail: AtomicU64,
    pub seq: AtomicU64,
    pub next: AtomicU64,
    pub head: AtomicU64,
    pub reading: AtomicU64,
    pub taken: AtomicU64,
    pub g: Geometry,
}

impl Ring {
    pub fn new(g: &Geometry) -> Ring {
        Ring {
            ring: (0..g.capacity / 8).map(|_| AtomicU64::new(0)).collect(),
            tail: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            next: AtomicU64::new(0),
            head: AtomicU64::new(0),
            reading: AtomicU64::new(NONE),
            taken: AtomicU64::new(0),
            g: *g,
        }
    }

    pub fn words(&self) -> Words<'_> {
        Words {
            ring: &self.ring,
            tail: &self.tail,
            seq: &self.seq,
            next: &self.next,
            head: &self.head,
            reading: &self.reading,
            taken: &self.taken,
        }
    }

    /// Writes `value` into every payload word of a record of `len` elements at `payload`, so
    /// that a torn or foreign payload shows.
    pub fn fill(&self, payload: u64, len: u64, value: u64) {
        let words = (len * self.g.elem).div_ceil(8);
        for i in 0..words {
            // Relaxed: published by the commit's release store of `tail`.
            self.ring[(payload / 8 + i) as usize].store(value, Ordering::Relaxed);
        }
    }

    /// Whether every payload word of the record at `payload` holds `value`.
    pub fn whole(&self, payload: u64, len: u64, value: u64) -> bool {
        let words = (len * self.g.elem).div_ceil(8);
        // Relaxed: ordered by the pop's acquire of `tail`.
        (0..words).all(|i| self.ring[(payload / 8 + i) as usize].load(Ordering::Relaxed) == value)
    }
}
