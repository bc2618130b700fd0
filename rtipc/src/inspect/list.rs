//! Finding the rtipc segments on the machine: the files in `/dev/shm` that start with the
//! segment magic.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::SegmentFacts;
use crate::error::{Error, Result};
use crate::layout::MAGIC;

/// What [`list`] found under one name.
#[derive(Debug)]
#[non_exhaustive]
pub enum Found {
    /// An rtipc segment whose creator runs.
    Live(SegmentFacts),
    /// An rtipc segment whose creator is gone: a restarted creator resumes it, or
    /// [`crate::Segment::remove_stale`] removes it.
    Stale(SegmentFacts),
    /// An rtipc segment that its creator has not finished writing (or that a creator killed
    /// while writing it left behind).
    NotReady,
    /// An rtipc segment whose header does not pass the checks of an attach: a corrupt one, or
    /// one of another layout version. (`list` reads headers only; [`Inspector::open`](super::Inspector::open) checks
    /// all of a segment.)
    Invalid(Error),
    /// A file this process may not read.
    Unreadable(String),
    /// A file that is not an rtipc segment: it does not start with the segment magic.
    Foreign,
}

/// One rtipc segment in `/dev/shm`.
#[derive(Debug)]
pub struct Listing {
    /// Its name (what [`Inspector::open`](super::Inspector::open) and [`crate::Segment::open`] take).
    pub name: String,
    /// The file's size in bytes.
    pub size: u64,
    /// What it is.
    pub found: Found,
}

/// Every file in `/dev/shm`, sorted by name, with what it is: an rtipc segment (live, stale,
/// not ready or invalid), a file this process cannot read ([`Found::Unreadable`]), or a file
/// that is not rtipc's ([`Found::Foreign`]: no segment magic).
pub fn list() -> Result<Vec<Listing>> {
    let dir = Path::new("/dev/shm");
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading /dev/shm", e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let found = match read_magic(&entry.path()) {
            Ok(false) => Found::Foreign,
            Ok(true) => inspect(&name),
            Err(e) => Found::Unreadable(e.to_string()),
        };
        out.push(Listing {
            name,
            size: meta.len(),
            found,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether the file at `path` starts with the segment magic.
fn read_magic(path: &Path) -> std::io::Result<bool> {
    // Non-blocking: a FIFO swapped in after the directory was read must not block the open.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Ok(false);
    }
    let mut magic = [0u8; 8];
    match f.read_exact(&mut magic) {
        Ok(()) => Ok(u64::from_le_bytes(magic) == MAGIC),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the header of segment `name` says, read without mapping it: a segment truncated
/// under a mapping would kill the lister with `SIGBUS`.
fn inspect(name: &str) -> Found {
    match crate::segment::peek(name) {
        Ok((h, alive)) => {
            let facts = SegmentFacts {
                name: Some(name.to_owned()),
                size: h.segment_size,
                version: h.version,
                cache_line: h.cache_line,
                creator_pid: h.creator_pid,
                creator_alive: alive,
                channels: h.channel_count,
            };
            if alive {
                Found::Live(facts)
            } else {
                Found::Stale(facts)
            }
        }
        Err(Error::NotReady) => Found::NotReady,
        Err(e @ Error::Io { .. }) => Found::Unreadable(e.to_string()),
        Err(e) => Found::Invalid(e),
    }
}
