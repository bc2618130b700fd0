//! The shared-memory segment: creating it, attaching to it, and claiming its channels.
//!
//! A segment is created by one process, the **creator**, with a [`SegmentBuilder`] that declares
//! its channels, and attached by another, the **peer**, which checks everything in it before
//! use (see [`layout`](crate::layout) for what is checked). Two backends, both real shared
//! memory:
//!
//! * **Named** ([`SegmentBuilder::create`], [`Segment::open`]): POSIX shared memory, created
//!   exclusively (`O_EXCL`) with mode `0600`. The creator unlinks the name when its last handle
//!   on the segment is dropped, unless [`SegmentBuilder::keep`] was set. A segment whose creator
//!   has died is reported as [`Error::Stale`]; remove it with [`Segment::remove_stale`] or create
//!   over it with [`SegmentBuilder::replace_stale`].
//! * **Anonymous** ([`SegmentBuilder::create_anonymous`], [`Segment::from_fd`]): a memfd sealed
//!   against growing and shrinking, handed to the peer as a file descriptor (inherited, or
//!   passed over a unix socket). The peer checks the seals and the size. Each notify-enabled
//!   channel has an eventfd, which travels with the memfd ([`Segment::event_fds`],
//!   [`Segment::from_fds`]); the [`handshake`](crate::handshake) module does all of it over a
//!   unix socket.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use zerocopy::IntoBytes;

use crate::error::{Error, Result};
use crate::layout::{
    align_up, ChannelEntry, ChannelInfo, Direction, Header, Kind, Layout, ObjectDesc, HEADER_SIZE,
    MAGIC, MAX_CACHE_LINE, MAX_CHANNELS, MAX_CHANNEL_NAME, MAX_OBJECTS, MAX_SLOTS, MAX_USER_META,
    READY, READY_OFFSET, VERSION,
};
use crate::schema::{self, Schema};
use crate::Object;

/// The cache-line size this build lays segments out with by default.
///
/// 128 bytes on x86-64 and aarch64: modern x86 prefetches cache lines in pairs, and Apple
/// and some Arm cores have 128-byte lines, so 128 keeps producer-written and consumer-written
/// words from false sharing on every supported machine. A peer never uses its own value: it
/// follows the one recorded in the segment's header.
pub const DEFAULT_CACHE_LINE: u32 = 128;

/// Which side of a segment a process is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The process that created the segment.
    Creator,
    /// The process that attached to it.
    Peer,
}

/// Which end of a channel a handle holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Producer,
    Consumer,
}

impl End {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            End::Producer => "producer",
            End::Consumer => "consumer",
        }
    }
}

/// A mapped segment. Handles keep it alive through an `Arc`; the last one unmaps it and, for a
/// named segment whose creator did not ask to keep it, unlinks the name.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    _map: memmap2::MmapRaw,
    fd: OwnedFd,
    unlink: Option<CString>,
}

// SAFETY: `Mapping` owns a shared mapping that lives until it is dropped; the raw pointer is
// only an address into it. Access to the memory goes through atomics or through handles whose
// claims make each end single-owner, so sharing the address between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: see `Send`; `&Mapping` gives out nothing but the address and length.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(name) = &self.unlink {
            // SAFETY: `name` is a valid NUL-terminated string.
            unsafe { libc::shm_unlink(name.as_ptr()) };
        }
    }
}

impl Mapping {
    fn new(file: File, len: usize, unlink: Option<CString>) -> Result<Mapping> {
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|e| Error::io("mapping the segment", e))?;
        let ptr = NonNull::new(map.as_mut_ptr())
            .ok_or_else(|| Error::InvalidArgument("mmap returned a null pointer".into()))?;
        Ok(Mapping {
            ptr,
            len,
            _map: map,
            fd: OwnedFd::from(file),
            unlink,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A pointer to byte `offset` of the mapping.
    ///
    /// # Panics
    ///
    /// Panics if `offset + len` exceeds the mapping: callers pass ranges that
    /// [`Layout::parse`] validated, so this is an internal invariant, not a peer-controlled
    /// condition.
    pub(crate) fn ptr(&self, offset: u64, len: u64) -> *mut u8 {
        let end = offset.checked_add(len).expect("range overflow");
        assert!(end <= self.len as u64, "range outside the mapping");
        // SAFETY: `offset <= self.len`, so the result is inside (or one past) the mapping.
        unsafe { self.ptr.as_ptr().add(offset as usize) }
    }

    /// The atomic word at `offset`, which must be 8-aligned and inside the mapping.
    pub(crate) fn atomic_u64(&self, offset: u64) -> &AtomicU64 {
        let p = self.ptr(offset, 8);
        assert!((p as usize).is_multiple_of(8), "misaligned atomic");
        // SAFETY: `p` is inside the mapping, 8-aligned, and lives as long as `self`; every
        // process accesses this word only atomically.
        unsafe { &*(p as *const AtomicU64) }
    }

    /// The atomic word at `offset`, which must be 4-aligned and inside the mapping.
    pub(crate) fn atomic_u32(&self, offset: u64) -> &AtomicU32 {
        let p = self.ptr(offset, 4);
        assert!((p as usize).is_multiple_of(4), "misaligned atomic");
        // SAFETY: as for `atomic_u64`, with 4-byte alignment.
        unsafe { &*(p as *const AtomicU32) }
    }

    /// Copies the bytes `offset..offset + len`, clamped to the mapping, into `out`.
    fn copy_out(&self, offset: u64, len: u64, out: &mut [u8]) {
        let start = offset.min(self.len as u64);
        let end = offset.saturating_add(len).min(self.len as u64);
        if start >= end {
            return;
        }
        // SAFETY: `start..end` lies inside both the mapping and `out` (whose length is the
        // mapping's). The bytes are plain data that this function treats as untrusted; a
        // concurrently writing peer can only make the copy wrong, which validation catches.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(start as usize),
                out.as_mut_ptr().add(start as usize),
                (end - start) as usize,
            )
        };
    }

    /// A copy of the header, table and metadata at their positions; buffers are left zero.
    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.len];
        if (self.len as u64) < HEADER_SIZE {
            return Ok(out);
        }
        // Acquire pairs with the creator's release store of `READY`: everything it wrote before
        // is visible to the copies below.
        let ready = self.atomic_u32(READY_OFFSET as u64).load(Ordering::Acquire);
        if ready != READY {
            return Err(Error::NotReady);
        }
        self.copy_out(0, HEADER_SIZE, &mut out);
        let h = Header::read_from_prefix_copy(&out);
        let table_len = u64::from(h.channel_count).saturating_mul(u64::from(h.entry_size));
        self.copy_out(h.table_offset, table_len, &mut out);
        self.copy_out(h.metadata_offset, h.metadata_len, &mut out);
        Ok(out)
    }
}

impl Header {
    fn read_from_prefix_copy(bytes: &[u8]) -> Header {
        use zerocopy::FromBytes;
        Header::read_from_prefix(bytes)
            .map(|(h, _)| h)
            .unwrap_or_default()
    }
}

/// Declares one channel for [`SegmentBuilder::channel`].
///
/// ```
/// # use rtipc::{ChannelSpec, Direction, Object};
/// #[derive(Object)]
/// #[repr(C)]
/// struct Pose { x: f64, y: f64 }
/// #[derive(Object)]
/// #[repr(C)]
/// struct Battery { volts: f32, amps: f32 }
///
/// let spec = ChannelSpec::state("robot", Direction::CreatorToPeer)
///     .object::<Pose>()
///     .object::<Battery>();
/// ```
#[derive(Clone, Debug)]
pub struct ChannelSpec {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) direction: Direction,
    pub(crate) slots: u32,
    pub(crate) objects: Vec<ObjectSpec>,
    pub(crate) notify: bool,
    pub(crate) user_meta: Vec<u8>,
}

#[derive(Clone, Debug)]
pub(crate) struct ObjectSpec {
    pub id: u64,
    pub fingerprint: u64,
    pub size: u64,
    pub align: u64,
    /// `Cow::Owned` for a schema decoded from a handshake request.
    pub schema: std::borrow::Cow<'static, Schema>,
}

impl ChannelSpec {
    /// A state channel (latest value, triple buffered) called `name`. Add its objects with
    /// [`ChannelSpec::object`].
    pub fn state(name: impl Into<String>, direction: Direction) -> ChannelSpec {
        ChannelSpec {
            name: name.into(),
            kind: Kind::State,
            direction,
            slots: crate::state::SLOTS,
            objects: Vec::new(),
            notify: false,
            user_meta: Vec::new(),
        }
    }

    /// A queue channel called `name` holding up to `capacity` unread messages (1 to 2^20) of
    /// one object type, added with [`ChannelSpec::object`].
    pub fn queue(name: impl Into<String>, direction: Direction, capacity: u32) -> ChannelSpec {
        ChannelSpec {
            name: name.into(),
            kind: Kind::Queue,
            direction,
            // Two more slots than the capacity: the producer's and the consumer's.
            slots: capacity.saturating_add(2),
            objects: Vec::new(),
            notify: false,
            user_meta: Vec::new(),
        }
    }

    /// Adds an object to the channel's slot, after the objects added before it.
    pub fn object<T: Object>(mut self) -> ChannelSpec {
        self.objects.push(ObjectSpec {
            id: T::ID,
            fingerprint: T::FINGERPRINT,
            size: size_of::<T>() as u64,
            align: align_of::<T>() as u64,
            schema: std::borrow::Cow::Borrowed(T::SCHEMA),
        });
        self
    }

    /// Lets the consumer wait for data (default: off): see [`notify`](crate::notify). In an
    /// anonymous segment the channel gets an eventfd that the peer must receive too.
    pub fn notify(mut self, on: bool) -> ChannelSpec {
        self.notify = on;
        self
    }

    /// Attaches opaque user metadata (at most 64 KiB) that the peer can read with
    /// [`Segment::user_meta`].
    pub fn user_meta(mut self, bytes: impl Into<Vec<u8>>) -> ChannelSpec {
        self.user_meta = bytes.into();
        self
    }
}

/// Builds and creates a segment. Obtain one with [`Segment::builder`].
#[derive(Clone, Debug)]
pub struct SegmentBuilder {
    pub(crate) channels: Vec<ChannelSpec>,
    pub(crate) cache_line: u32,
    keep: bool,
    replace_stale: bool,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        SegmentBuilder {
            channels: Vec::new(),
            cache_line: DEFAULT_CACHE_LINE,
            keep: false,
            replace_stale: false,
        }
    }
}

impl SegmentBuilder {
    /// Declares a state channel carrying one object of type `T`.
    pub fn state<T: Object>(self, name: impl Into<String>, direction: Direction) -> Self {
        self.channel(ChannelSpec::state(name, direction).object::<T>())
    }

    /// Declares a queue channel of `capacity` messages of type `T`.
    pub fn queue<T: Object>(
        self,
        name: impl Into<String>,
        direction: Direction,
        capacity: u32,
    ) -> Self {
        self.channel(ChannelSpec::queue(name, direction, capacity).object::<T>())
    }

    /// Declares a channel.
    pub fn channel(mut self, spec: ChannelSpec) -> Self {
        self.channels.push(spec);
        self
    }

    /// Sets the cache-line size that the layout aligns to (a power of two from 16 to 4096;
    /// default [`DEFAULT_CACHE_LINE`]).
    pub fn cache_line(mut self, bytes: u32) -> Self {
        self.cache_line = bytes;
        self
    }

    /// Keeps a named segment in `/dev/shm` after the creator drops it (default: unlink it).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Replaces a named segment left behind by a creator that is no longer running, instead of
    /// failing with [`Error::Stale`] (default: fail).
    pub fn replace_stale(mut self, replace: bool) -> Self {
        self.replace_stale = replace;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !self.cache_line.is_power_of_two() || !(16..=MAX_CACHE_LINE).contains(&self.cache_line) {
            return bad(format!(
                "cache line {} must be a power of two between 16 and 4096",
                self.cache_line
            ));
        }
        if self.channels.len() > MAX_CHANNELS as usize {
            return bad(format!("more than {MAX_CHANNELS} channels"));
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.channels {
            if c.name.is_empty() || c.name.len() > MAX_CHANNEL_NAME as usize {
                return bad(format!(
                    "channel name `{}` must be between 1 and 255 bytes",
                    c.name
                ));
            }
            if !names.insert(&c.name) {
                return bad(format!("channel `{}` is declared twice", c.name));
            }
            if c.objects.is_empty() {
                return bad(format!("channel `{}` has no objects", c.name));
            }
            if c.objects.len() > MAX_OBJECTS as usize {
                return bad(format!("channel `{}` has more than 64 objects", c.name));
            }
            if c.user_meta.len() as u64 > MAX_USER_META {
                return bad(format!(
                    "channel `{}` has more than 64 KiB of user metadata",
                    c.name
                ));
            }
            if c.kind == Kind::Queue {
                if !(3..=MAX_SLOTS + 2).contains(&c.slots) {
                    return bad(format!(
                        "queue `{}` must have a capacity between 1 and {MAX_SLOTS}, not {}",
                        c.name,
                        i64::from(c.slots) - 2
                    ));
                }
                if c.objects.len() != 1 {
                    return bad(format!(
                        "queue `{}` must carry exactly one object type, not {}",
                        c.name,
                        c.objects.len()
                    ));
                }
            }
            for (i, o) in c.objects.iter().enumerate() {
                if o.align > u64::from(self.cache_line) {
                    return bad(format!(
                        "object `{}` in channel `{}` is aligned to {} bytes, more than the \
                         cache line of {}",
                        o.schema.name, c.name, o.align, self.cache_line
                    ));
                }
                if c.objects[..i].iter().any(|p| p.id == o.id) {
                    return bad(format!(
                        "object `{}` is declared twice in channel `{}`",
                        o.schema.name, c.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Lays the segment out into a byte image (without the ready word set).
    fn image(&self, creator_pid: u32, creation_token: u64) -> Result<Vec<u8>> {
        self.validate()?;
        let cl = u64::from(self.cache_line);
        let too_big = || Error::InvalidArgument("segment size overflows".into());
        let up = |v: u64| align_up(v, cl).ok_or_else(too_big);
        let entry_size = up(size_of::<ChannelEntry>() as u64)?;
        let table_offset = up(HEADER_SIZE)?;
        let table_len = entry_size * self.channels.len() as u64;

        // Buffers: per channel its control block, then its slots.
        let buffers_offset = up(table_offset + table_len)?;
        let mut cursor = buffers_offset;
        let mut entries = Vec::with_capacity(self.channels.len());
        let mut slot_layouts = Vec::with_capacity(self.channels.len());
        for c in &self.channels {
            let ctrl_len = c.kind.ctrl_len(c.slots, cl);
            let ctrl_offset = cursor;
            let mut slot_size = 0u64;
            let mut offsets = Vec::with_capacity(c.objects.len());
            for o in &c.objects {
                let off = align_up(slot_size, o.align).ok_or_else(too_big)?;
                offsets.push(off);
                slot_size = off.checked_add(o.size).ok_or_else(too_big)?;
            }
            let slot_stride = up(slot_size)?;
            let buffer_offset = ctrl_offset + ctrl_len;
            let buffer_len = slot_stride
                .checked_mul(c.slots.into())
                .ok_or_else(too_big)?;
            cursor = buffer_offset.checked_add(buffer_len).ok_or_else(too_big)?;
            entries.push(ChannelEntry {
                kind: c.kind.code(),
                direction: c.direction.code(),
                slot_count: c.slots,
                object_count: c.objects.len() as u32,
                slot_size,
                slot_stride,
                buffer_offset,
                buffer_len,
                ctrl_offset,
                ctrl_len,
                notify: u32::from(c.notify),
                ..ChannelEntry::default()
            });
            slot_layouts.push(offsets);
        }
        let buffers_len = cursor - buffers_offset;

        // Metadata: object descriptors, schemas, names, user metadata.
        let metadata_offset = up(cursor)?;
        let mut meta: Vec<u8> = Vec::new();
        for (c, (e, offsets)) in self
            .channels
            .iter()
            .zip(entries.iter_mut().zip(&slot_layouts))
        {
            e.objects_offset = metadata_offset + meta.len() as u64;
            let descs_at = meta.len();
            meta.resize(descs_at + c.objects.len() * size_of::<ObjectDesc>(), 0);
            let mut descs = Vec::with_capacity(c.objects.len());
            for (o, &off) in c.objects.iter().zip(offsets) {
                let encoded = schema::encode(&o.schema);
                descs.push(ObjectDesc {
                    id: o.id,
                    fingerprint: o.fingerprint,
                    offset: off,
                    size: o.size,
                    align: o.align,
                    schema_offset: metadata_offset + meta.len() as u64,
                    schema_len: encoded.len() as u64,
                    reserved: 0,
                });
                meta.extend_from_slice(&encoded);
                pad8(&mut meta);
            }
            meta[descs_at..descs_at + descs.len() * size_of::<ObjectDesc>()]
                .copy_from_slice(descs.as_bytes());
            e.name_offset = metadata_offset + meta.len() as u64;
            e.name_len = c.name.len() as u32;
            meta.extend_from_slice(c.name.as_bytes());
            pad8(&mut meta);
            if !c.user_meta.is_empty() {
                e.user_meta_offset = metadata_offset + meta.len() as u64;
                e.user_meta_len = c.user_meta.len() as u64;
                meta.extend_from_slice(&c.user_meta);
                pad8(&mut meta);
            }
        }
        let metadata_len = meta.len() as u64;
        let segment_size = align_up(metadata_offset + metadata_len, 4096).ok_or_else(too_big)?;
        let header = Header {
            magic: MAGIC,
            version: VERSION,
            header_size: HEADER_SIZE as u32,
            ready: 0,
            cache_line: self.cache_line,
            segment_size,
            channel_count: self.channels.len() as u32,
            entry_size: entry_size as u32,
            table_offset,
            buffers_offset,
            buffers_len,
            metadata_offset,
            metadata_len,
            creator_pid,
            flags: 0,
            creation_token,
            reserved: [0; 4],
        };
        let size = usize::try_from(segment_size).map_err(|_| too_big())?;
        let mut img = vec![0u8; size];
        img[..HEADER_SIZE as usize].copy_from_slice(header.as_bytes());
        for (i, e) in entries.iter().enumerate() {
            let at = (table_offset + i as u64 * entry_size) as usize;
            img[at..at + size_of::<ChannelEntry>()].copy_from_slice(e.as_bytes());
        }
        let m = metadata_offset as usize;
        img[m..m + meta.len()].copy_from_slice(&meta);
        Ok(img)
    }

    /// Writes the image into a freshly mapped, zeroed segment, initialises every channel's
    /// control block, and publishes the ready word.
    fn finish(
        &self,
        map: Mapping,
        img: &[u8],
        side: Side,
        eventfds: Vec<Option<Arc<OwnedFd>>>,
    ) -> Result<Segment> {
        // The parse doubles as a self-check of what this builder laid out.
        let mut ready_img = img.to_vec();
        ready_img[READY_OFFSET..READY_OFFSET + 4].copy_from_slice(&READY.to_le_bytes());
        let layout = Layout::parse(&ready_img)?;
        // Copy everything but the buffers (which are zero in a fresh mapping).
        let h = &layout.header;
        let map = Arc::new(map);
        let write = |off: u64, len: u64| {
            let dst = map.ptr(off, len);
            // SAFETY: `dst..dst + len` is inside the mapping (checked by `ptr`) and the
            // segment is not yet visible to any other process (ready is 0, or it is an
            // unshared memfd), so nothing accesses it concurrently.
            unsafe {
                std::ptr::copy_nonoverlapping(img.as_ptr().add(off as usize), dst, len as usize)
            };
        };
        write(0, h.buffers_offset);
        write(h.metadata_offset, h.metadata_len);
        for c in &layout.channels {
            match c.kind {
                Kind::State => crate::state::init_ctrl(&map, c, u64::from(h.cache_line)),
                Kind::Queue => crate::queue::init_ctrl(&map, c, u64::from(h.cache_line)),
            }
        }
        // Release: a peer that sees READY with acquire also sees everything written above.
        map.atomic_u32(READY_OFFSET as u64)
            .store(READY, Ordering::Release);
        Ok(Segment {
            inner: Arc::new(Inner {
                map,
                layout,
                side,
                eventfds,
            }),
        })
    }

    /// Creates a named POSIX shared-memory segment (`/dev/shm/NAME`).
    ///
    /// Fails with [`Error::AlreadyExists`] if the name is taken by a running creator, and with
    /// [`Error::Stale`] if it was left by a dead one (unless [`SegmentBuilder::replace_stale`]).
    pub fn create(&self, name: &str) -> Result<Segment> {
        let cname = shm_name(name)?;
        let (pid, token) = (std::process::id(), process_token(std::process::id()));
        let img = self.image(pid, token)?;
        let fd = match shm_open_excl(&cname) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                match probe_creator(&cname) {
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
                        // SAFETY: `cname` is a valid NUL-terminated string.
                        unsafe { libc::shm_unlink(cname.as_ptr()) };
                        shm_open_excl(&cname).map_err(|e| Error::io("creating shm segment", e))?
                    }
                }
            }
            Err(e) => return Err(Error::io("creating shm segment", e)),
        };
        let unlink = (!self.keep).then(|| cname.clone());
        let file = File::from(fd);
        let built = (|| {
            file.set_len(img.len() as u64)
                .map_err(|e| Error::io("sizing shm segment", e))?;
            let map = Mapping::new(file, img.len(), unlink.clone())?;
            // Named segments wake with a futex only.
            self.finish(map, &img, Side::Creator, vec![None; self.channels.len()])
        })();
        if built.is_err() {
            // SAFETY: `cname` is a valid NUL-terminated string.
            unsafe { libc::shm_unlink(cname.as_ptr()) };
        }
        built
    }

    /// Creates an anonymous segment in a memfd sealed against growing and shrinking, and an
    /// eventfd for each notify-enabled channel. Hand its file descriptor ([`Segment::as_fd`])
    /// to the peer, which attaches with [`Segment::from_fd`], or, if it has notify-enabled
    /// channels, hand it with their eventfds ([`Segment::event_fds`]) to
    /// [`Segment::from_fds`]. The [`handshake`](crate::handshake) does this over a socket.
    pub fn create_anonymous(&self) -> Result<Segment> {
        let img = self.image(std::process::id(), process_token(std::process::id()))?;
        // SAFETY: the name is a valid NUL-terminated string; the flags are valid.
        let raw = unsafe {
            libc::memfd_create(
                c"rtipc".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(Error::last_os("creating memfd"));
        }
        // SAFETY: `raw` is a new file descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(raw) };
        file.set_len(img.len() as u64)
            .map_err(|e| Error::io("sizing memfd", e))?;
        let seals = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a valid fd with an integer argument.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(Error::last_os("sealing memfd"));
        }
        let map = Mapping::new(file, img.len(), None)?;
        let eventfds = (self.channels.iter())
            .map(|c| c.notify.then(crate::notify::new_eventfd).transpose())
            .map(|fd| fd.map(|fd| fd.map(Arc::new)))
            .collect::<Result<_>>()?;
        self.finish(map, &img, Side::Creator, eventfds)
    }
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

/// Validates a segment name and turns it into the `/name` form that `shm_open` takes.
fn shm_name(name: &str) -> Result<CString> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.len() > 250 || bare.contains('/') || bare.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "segment name `{name}` must be 1 to 250 bytes without `/` or NUL"
        )));
    }
    CString::new(format!("/{bare}")).map_err(|_| Error::InvalidArgument(name.to_owned()))
}

fn shm_open_excl(name: &CString) -> std::io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the flags and mode are valid.
    let fd = unsafe {
        libc::shm_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn shm_open_existing(name: &CString) -> std::io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::shm_open(name.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The start time of process `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`),
/// or 0 if it cannot be read. Together with the pid it identifies a process even after the pid
/// is reused.
fn process_token(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    rest.split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Whether the process that created a segment (pid + token) is still running.
pub(crate) fn creator_alive(pid: u32, token: u64) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    if !pid_alive(pid) {
        return false;
    }
    token == 0 || process_token(pid) == token
}

/// Whether a process with this pid exists.
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

enum Probe {
    Alive,
    Dead(u32),
}

/// Looks at an existing named segment's header to tell whether its creator still runs.
fn probe_creator(name: &CString) -> Probe {
    let Ok(fd) = shm_open_existing(name) else {
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
    use std::os::unix::fs::FileExt;
    if file.read_exact_at(&mut buf, 0).is_err() {
        return Probe::Dead(0);
    }
    let h = Header::read_from_prefix_copy(&buf);
    if h.magic != MAGIC {
        return Probe::Dead(h.creator_pid);
    }
    if creator_alive(h.creator_pid, h.creation_token) {
        Probe::Alive
    } else {
        Probe::Dead(h.creator_pid)
    }
}

struct Inner {
    map: Arc<Mapping>,
    layout: Layout,
    side: Side,
    /// Per channel, in table order: its eventfd (notify-enabled channels of anonymous
    /// segments).
    eventfds: Vec<Option<Arc<OwnedFd>>>,
}

/// A shared-memory segment, on either side. Cheap to clone; handles taken from it keep the
/// mapping alive.
#[derive(Clone)]
pub struct Segment {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("side", &self.inner.side)
            .field("size", &self.inner.map.len())
            .field("channels", &self.channel_names())
            .finish()
    }
}

impl Segment {
    /// Starts declaring a new segment.
    pub fn builder() -> SegmentBuilder {
        SegmentBuilder::default()
    }

    /// Attaches to the named segment `name` created by another process, checking all of it.
    pub fn open(name: &str) -> Result<Segment> {
        let cname = shm_name(name)?;
        let fd = shm_open_existing(&cname).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOENT) {
                Error::NotFound {
                    name: name.to_owned(),
                }
            } else {
                Error::io("opening shm segment", e)
            }
        })?;
        let file = File::from(fd);
        let seg = Self::attach(file)?;
        let h = &seg.inner.layout.header;
        if !creator_alive(h.creator_pid, h.creation_token) {
            return Err(Error::Stale {
                name: name.to_owned(),
                pid: h.creator_pid,
            });
        }
        Ok(seg)
    }

    /// Attaches to an anonymous segment from its memfd, checking its seals, its size and all of
    /// its contents. Takes ownership of `fd`. A segment with notify-enabled channels needs
    /// their eventfds too: use [`Segment::from_fds`].
    pub fn from_fd(fd: OwnedFd) -> Result<Segment> {
        Self::from_fds(fd, Vec::new())
    }

    /// Attaches to an anonymous segment from its memfd and the eventfds of its notify-enabled
    /// channels, in table order (as [`Segment::event_fds`] gives them). Checks the memfd as
    /// [`Segment::from_fd`] does, that there is exactly one eventfd per notify-enabled channel,
    /// and that each is an eventfd. Takes ownership of all the descriptors; they are closed on
    /// error.
    pub fn from_fds(fd: OwnedFd, eventfds: Vec<OwnedFd>) -> Result<Segment> {
        let seg = Self::from_memfd(fd)?;
        let notify: Vec<usize> = (seg.inner.layout.channels.iter().enumerate())
            .filter(|(_, c)| c.notify)
            .map(|(i, _)| i)
            .collect();
        if eventfds.len() != notify.len() {
            return Err(Error::InvalidArgument(format!(
                "the segment has {} notify-enabled channels but {} eventfds were given; pass \
                 one per notify-enabled channel, in table order",
                notify.len(),
                eventfds.len()
            )));
        }
        let mut per_channel = vec![None; seg.inner.layout.channels.len()];
        for (k, (i, fd)) in notify.into_iter().zip(eventfds).enumerate() {
            crate::notify::check_eventfd(&fd, k)?;
            per_channel[i] = Some(Arc::new(fd));
        }
        let Inner {
            map, layout, side, ..
        } = Arc::into_inner(seg.inner).expect("a new segment has one handle");
        Ok(Segment {
            inner: Arc::new(Inner {
                map,
                layout,
                side,
                eventfds: per_channel,
            }),
        })
    }

    /// The eventfds of the notify-enabled channels, in table order: hand them to the peer of
    /// an anonymous segment with the memfd ([`Segment::as_fd`]), for [`Segment::from_fds`].
    /// Empty for named segments, which wake with a futex only.
    pub fn event_fds(&self) -> Vec<BorrowedFd<'_>> {
        (self.inner.eventfds.iter())
            .flatten()
            .map(|fd| fd.as_fd())
            .collect()
    }

    fn from_memfd(fd: OwnedFd) -> Result<Segment> {
        // SAFETY: fcntl on a valid fd.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 {
            return Err(Error::InvalidArgument(
                "the file descriptor is not a sealable memfd".into(),
            ));
        }
        let need = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK;
        if seals & need != need {
            return Err(Error::InvalidArgument(format!(
                "the memfd is not sealed against growing and shrinking (seals {seals:#x})"
            )));
        }
        Self::attach(File::from(fd))
    }

    fn attach(file: File) -> Result<Segment> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading segment size", e))?
            .len();
        if len < HEADER_SIZE {
            return Err(Error::corrupt(
                "segment size",
                len,
                format!("smaller than the {HEADER_SIZE}-byte header"),
            ));
        }
        let len = usize::try_from(len)
            .map_err(|_| Error::corrupt("segment size", len, "too large to map"))?;
        let map = Mapping::new(file, len, None)?;
        let snapshot = map.snapshot()?;
        let layout = Layout::parse(&snapshot)?;
        Ok(Segment {
            inner: Arc::new(Inner {
                map: Arc::new(map),
                eventfds: vec![None; layout.channels.len()],
                layout,
                side: Side::Peer,
            }),
        })
    }

    /// Removes the named segment `name` if its creator is no longer running. Returns whether
    /// it removed one; a segment whose creator runs is left alone ([`Error::AlreadyExists`]).
    pub fn remove_stale(name: &str) -> Result<bool> {
        let cname = shm_name(name)?;
        if shm_open_existing(&cname).is_err() {
            return Ok(false);
        }
        match probe_creator(&cname) {
            Probe::Alive => Err(Error::AlreadyExists {
                name: name.to_owned(),
            }),
            Probe::Dead(_) => {
                // SAFETY: `cname` is a valid NUL-terminated string.
                unsafe { libc::shm_unlink(cname.as_ptr()) };
                Ok(true)
            }
        }
    }

    /// Which side of the segment this process is on.
    pub fn side(&self) -> Side {
        self.inner.side
    }

    /// The names of the segment's channels, in declaration order.
    pub fn channel_names(&self) -> Vec<&str> {
        self.inner
            .layout
            .channels
            .iter()
            .map(|c| c.name.as_str())
            .collect()
    }

    /// The user metadata of channel `name` (empty if none was given).
    pub fn user_meta(&self, name: &str) -> Result<&[u8]> {
        Ok(&self.inner.layout.channel(name)?.user_meta)
    }

    /// The process id of the segment's creator, as recorded in its header.
    pub fn creator_pid(&self) -> u32 {
        self.inner.layout.header.creator_pid
    }

    /// Whether the creator process is still running (always true on the creator's side).
    pub fn creator_alive(&self) -> bool {
        let h = &self.inner.layout.header;
        self.inner.side == Side::Creator || creator_alive(h.creator_pid, h.creation_token)
    }

    /// The validated channel `name`, checked to be of `kind` and to be produced (or consumed)
    /// by this side.
    pub(crate) fn channel(&self, name: &str, kind: Kind, end: End) -> Result<ChannelRef> {
        let c = self.inner.layout.channel(name)?;
        let eventfd = (self.inner.layout.channels.iter())
            .position(|x| std::ptr::eq(x, c))
            .and_then(|i| self.inner.eventfds[i].clone());
        let producer_side = match c.direction {
            Direction::CreatorToPeer => Side::Creator,
            Direction::PeerToCreator => Side::Peer,
        };
        let ours = (end == End::Producer) == (producer_side == self.inner.side);
        if c.kind != kind || !ours {
            let kind_name = |k: Kind| match k {
                Kind::State => "state",
                Kind::Queue => "queue",
            };
            let dir = match c.direction {
                Direction::CreatorToPeer => "from creator to peer",
                Direction::PeerToCreator => "from peer to creator",
            };
            let side = match self.inner.side {
                Side::Creator => "the creator",
                Side::Peer => "the peer",
            };
            return Err(Error::WrongChannel {
                channel: name.to_owned(),
                wanted: format!("a {} {} for {side}", kind_name(kind), end.name()),
                found: format!("a {} channel {dir}", kind_name(c.kind)),
            });
        }
        Ok(ChannelRef {
            map: Arc::clone(&self.inner.map),
            info: Arc::new(c.clone()),
            cache_line: u64::from(self.inner.layout.header.cache_line),
            eventfd,
        })
    }
}

impl AsFd for Segment {
    /// The segment's file descriptor: pass it to the peer of an anonymous segment.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.map.fd.as_fd()
    }
}

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
    /// The offset of line `n` of the control block.
    pub fn ctrl_line(&self, n: u64) -> u64 {
        self.info.ctrl_offset + n * self.cache_line
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

    /// Takes the claim on `end`; released by [`Claim`]'s drop.
    pub fn claim(&self, end: End) -> Result<Claim> {
        let word = self.ctrl_line(0) + if end == End::Producer { 0 } else { 8 };
        let me = u64::from(std::process::id());
        let atom = self.map.atomic_u64(word);
        // Acquire on success: whatever the previous holder wrote before releasing its claim
        // (its private protocol state) is visible to us. Relaxed on failure: we only look at
        // the holder's pid.
        let mut current = 0;
        loop {
            match atom.compare_exchange(current, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    return Ok(Claim {
                        map: Arc::clone(&self.map),
                        word,
                        me,
                    })
                }
                Err(holder) => {
                    let dead = holder != me
                        && (holder > u64::from(i32::MAX as u32) || !pid_alive(holder as u32));
                    if holder != 0 && !dead {
                        return Err(Error::AlreadyClaimed {
                            channel: self.info.name.clone(),
                            end: end.name(),
                        });
                    }
                    // Free, or held by a process that no longer exists: take it over.
                    current = holder;
                }
            }
        }
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

impl ChannelRef {
    /// Claims `end` of the channel for a new handle.
    pub fn claim_end(self, end: End) -> Result<EndHandle> {
        let claim = self.claim(end)?;
        Ok(EndHandle {
            ch: self,
            _claim: claim,
            poisoned: false,
        })
    }
}

impl EndHandle {
    /// Refuses use once a corrupt word was found. On every publish, fetch, push and pop.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn poisoned_error(&self) -> Error {
        Error::corrupt(
            format!("channel `{}`", self.ch.info.name),
            0,
            "an earlier operation found a corrupt word in shared memory; take a new handle",
        )
    }

    /// Records that `word`, read from the channel's `what`, breaks the protocol, and describes
    /// it. The handle refuses further use.
    #[cold]
    #[inline(never)]
    pub fn corrupt(&mut self, what: &str, word: u64, reason: &str) -> Error {
        self.poisoned = true;
        Error::corrupt(
            format!("channel `{}` {what}", self.ch.info.name),
            word,
            reason.to_owned(),
        )
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
