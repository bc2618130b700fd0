//! Named segments in POSIX shared memory (`/dev/shm/NAME`): creating, opening, and the
//! segments of creators that are gone.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::fs::FileExt;

use zerocopy::FromBytes;

use super::{Segment, SegmentBuilder};
use crate::error::{Error, Result};
use crate::layout::{Header, Side, HEADER_SIZE};
use crate::sys::mem::Mapping;
use crate::sys::{proc, shm};

/// Validates a segment name and turns it into the `/name` form that `shm_open` takes.
pub(super) fn shm_name(name: &str) -> Result<CString> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.len() > 250 || bare.contains('/') || bare.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "segment name `{name}` must be 1 to 250 bytes without `/` or NUL"
        )));
    }
    CString::new(format!("/{bare}")).map_err(|_| Error::InvalidArgument(name.to_owned()))
}

/// Whether the process that created a segment (pid + start time) is still running.
pub(super) fn creator_alive(pid: u32, token: u64) -> bool {
    proc::exists(pid) && (token == 0 || proc::start_time(pid) == token)
}

enum Probe {
    Alive,
    Dead(u32),
}

/// Looks at an existing named segment's header to tell whether its creator still runs.
fn probe_creator(name: &CString) -> Probe {
    let Ok(fd) = shm::open_existing(name) else {
        return Probe::Dead(0);
    };
    let file = File::from(fd);
    let Ok(meta) = file.metadata() else {
        return Probe::Dead(0);
    };
    if meta.len() < HEADER_SIZE {
        // A creator that died before sizing it, or a creator still sizing it: treat a
        // just-created file as alive only if it is very young.
        let young = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age.as_secs() < 2);
        return if young { Probe::Alive } else { Probe::Dead(0) };
    }
    let mut buf = [0u8; HEADER_SIZE as usize];
    if file.read_exact_at(&mut buf, 0).is_err() {
        return Probe::Dead(0);
    }
    let h = Header::read_from_bytes(&buf).unwrap_or_default();
    if creator_alive(h.creator_pid, h.creation_token) {
        Probe::Alive
    } else {
        Probe::Dead(h.creator_pid)
    }
}

impl Segment {
    /// Attaches to the named segment `name` created by another process, checking all of it.
    pub fn open(name: &str) -> Result<Segment> {
        let cname = shm_name(name)?;
        let fd = shm::open_existing(&cname).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOENT) {
                Error::NotFound {
                    name: name.to_owned(),
                }
            } else {
                Error::io("opening shm segment", e)
            }
        })?;
        let seg = Self::attach(File::from(fd))?;
        let h = &seg.inner.layout.header;
        if !creator_alive(h.creator_pid, h.creation_token) {
            return Err(Error::Stale {
                name: name.to_owned(),
                pid: h.creator_pid,
            });
        }
        Ok(seg)
    }

    /// Removes the named segment `name` if its creator is no longer running. Returns whether
    /// it removed one; a segment whose creator runs is left alone ([`Error::AlreadyExists`]).
    pub fn remove_stale(name: &str) -> Result<bool> {
        let cname = shm_name(name)?;
        if shm::open_existing(&cname).is_err() {
            return Ok(false);
        }
        match probe_creator(&cname) {
            Probe::Alive => Err(Error::AlreadyExists {
                name: name.to_owned(),
            }),
            Probe::Dead(_) => {
                shm::unlink(&cname);
                Ok(true)
            }
        }
    }
}

impl SegmentBuilder {
    /// Creates a named POSIX shared-memory segment (`/dev/shm/NAME`).
    ///
    /// Fails with [`Error::AlreadyExists`] if the name is taken by a running creator, and with
    /// [`Error::Stale`] if it was left by a dead one (unless [`SegmentBuilder::replace_stale`]).
    pub fn create(&self, name: &str) -> Result<Segment> {
        let cname = shm_name(name)?;
        let pid = std::process::id();
        let plan = self.plan(pid, proc::start_time(pid))?;
        let fd = match shm::open_exclusive(&cname) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => match probe_creator(&cname) {
                Probe::Alive => {
                    return Err(Error::AlreadyExists {
                        name: name.to_owned(),
                    })
                }
                Probe::Dead(dead) if !self.replace_stale => {
                    return Err(Error::Stale {
                        name: name.to_owned(),
                        pid: dead,
                    })
                }
                Probe::Dead(_) => {
                    shm::unlink(&cname);
                    shm::open_exclusive(&cname).map_err(|e| Error::io("creating shm segment", e))?
                }
            },
            Err(e) => return Err(Error::io("creating shm segment", e)),
        };
        let file = File::from(fd);
        let built = (|| {
            file.set_len(plan.size())
                .map_err(|e| Error::io("sizing shm segment", e))?;
            let size = usize::try_from(plan.size())
                .map_err(|_| Error::InvalidArgument("the segment is too large to map".into()))?;
            let mut map =
                Mapping::new(file, size).map_err(|e| Error::io("mapping the segment", e))?;
            if !self.keep {
                map.unlink_on_drop(cname.clone());
            }
            plan.write(&map);
            Segment::from_plan(map, plan, Side::Creator, Vec::new())
        })();
        if built.is_err() {
            shm::unlink(&cname);
        }
        built
    }
}
