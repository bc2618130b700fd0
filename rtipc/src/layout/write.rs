//! Writing a plan into memory: the header, the table and the metadata as bytes, then each
//! channel's initial control words, then the ready word.

use std::sync::atomic::Ordering;

use zerocopy::IntoBytes;

use super::format::{Header, READY, READY_OFFSET};
use super::plan::Plan;
use super::Ctrl;
use crate::sys::mem::Mapping;

impl Plan {
    /// Writes the header (with `ready` 0), the channel table and the metadata through `put`
    /// (offset, bytes). Buffers are left as they are: zero in fresh memory.
    pub(crate) fn write_bytes(&self, mut put: impl FnMut(u64, &[u8])) {
        let h = &self.header;
        put(0, h.as_bytes());
        for (i, (c, (name, meta))) in self.channels.iter().zip(&self.texts).enumerate() {
            put(
                h.table_offset + i as u64 * u64::from(h.entry_size),
                c.entry.as_bytes(),
            );
            put(c.entry.objects_offset, c.descs.as_bytes());
            for (d, s) in c.descs.iter().zip(&c.schemas) {
                put(d.schema_offset, s);
            }
            put(c.entry.name_offset, name);
            if !meta.is_empty() {
                put(c.entry.user_meta_offset, meta);
            }
        }
    }

    /// Writes the whole segment into a fresh, zeroed mapping of at least [`Plan::size`] bytes
    /// that no other process uses yet, and finally publishes the ready word.
    pub(crate) fn write(&self, map: &Mapping) {
        self.write_bytes(|offset, bytes| map.copy_in(offset, bytes));
        let cl = u64::from(self.header.cache_line);
        for c in &self.channels {
            let e = &c.entry;
            let words = map.atomics_u64(e.ctrl_offset, e.ctrl_len / 8);
            (c.init)(Ctrl::new(words, cl), e.slot_count);
            if let Some(data) = &c.data {
                let bytes = data();
                let len = (bytes.len() as u64).min(e.slot_stride) as usize;
                map.copy_in(e.buffer_offset, &bytes[..len]);
            }
        }
        // Release: a peer that sees READY with acquire also sees everything written above.
        map.atomic_u32(READY_OFFSET).store(READY, Ordering::Release);
    }

    /// The segment as a byte image with the ready word set and zeroed control blocks: what a
    /// peer would copy out of a segment before any handle exists (for tests and tools).
    #[cfg(test)]
    pub(crate) fn image(&self) -> Vec<u8> {
        let mut img = vec![0u8; self.size() as usize];
        self.write_bytes(|offset, bytes| {
            img[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes)
        });
        img[READY_OFFSET as usize..READY_OFFSET as usize + 4].copy_from_slice(&READY.to_le_bytes());
        img
    }
}

/// Records a new creator in the header of a segment it resumes: its pid and start time, for
/// people and tools (whether the creator runs is the creator lock's answer, not these).
pub(crate) fn record_creator(map: &Mapping, pid: u32, token: u64) {
    // Relaxed: informational words, which a peer reads only as part of the header it copies.
    map.atomic_u32(std::mem::offset_of!(Header, creator_pid) as u64)
        .store(pid, Ordering::Relaxed);
    map.atomic_u64(std::mem::offset_of!(Header, creation_token) as u64)
        .store(token, Ordering::Relaxed);
}
