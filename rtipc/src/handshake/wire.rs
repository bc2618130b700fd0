//! The handshake's messages: encoding, and decoding as untrusted input.

use std::borrow::Cow;

use super::{
    PeerCred, Request, RequestedChannel, RequestedObject, KIND_ATTACHED, KIND_REJECT, KIND_REQUEST,
    MAGIC, MAX_NOTIFY_CHANNELS, MAX_REQUEST_LEN, MAX_TEXT, VERSION,
};
use crate::error::{Error, Result, Stage};
use crate::layout::{
    ChannelKind, ChannelSpec, Direction, ObjectSpec, MAX_CHANNELS, MAX_OBJECTS, MAX_USER_META,
};
use crate::schema;
use crate::segment::SegmentBuilder;
use crate::sys::socket::SockError;

/// The error of a socket step that failed at `stage`.
pub(super) fn sock_error(e: SockError, stage: Stage) -> Error {
    match e {
        SockError::TimedOut => Error::Timeout { stage },
        SockError::Closed => Error::Handshake {
            reason: format!("the other side closed the connection ({stage})"),
        },
        SockError::TooLong => Error::Handshake {
            reason: format!("a message was longer than allowed ({stage})"),
        },
        SockError::TooManyFds => Error::Handshake {
            reason: format!("a message carried more file descriptors than expected ({stage})"),
        },
        SockError::Io(e) => Error::Io {
            op: "using the handshake socket",
            error: e,
        },
    }
}

pub(super) fn preamble(kind: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&MAGIC);
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v
}

/// A bounds-checked cursor over an untrusted message.
pub(super) struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!(
                "{what} at byte {} needs {n} bytes, but the message ends at byte {}",
                self.pos,
                self.buf.len()
            ));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(super) fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    pub(super) fn u16(&mut self, what: &str) -> std::result::Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(super) fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(super) fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(super) fn text(&mut self, what: &str) -> std::result::Result<String, String> {
        let len = self.u32(what)? as usize;
        if len > MAX_TEXT {
            return Err(format!("{what} is {len} bytes, more than {MAX_TEXT}"));
        }
        Ok(String::from_utf8_lossy(self.take(len, what)?).into_owned())
    }
    pub(super) fn end(&self) -> std::result::Result<(), String> {
        if self.pos != self.buf.len() {
            return Err(format!(
                "{} unexpected bytes after the message's end at byte {}",
                self.buf.len() - self.pos,
                self.pos
            ));
        }
        Ok(())
    }
    /// Reads the preamble; returns the kind.
    pub(super) fn preamble(&mut self) -> std::result::Result<u16, String> {
        let magic = self.take(4, "the magic")?;
        if magic != MAGIC {
            return Err(format!("bad magic {magic:02x?}: not an rtipc handshake"));
        }
        let version = self.u16("the version")?;
        if version != VERSION {
            return Err(format!(
                "handshake version {version} is not supported (this side speaks version \
                 {VERSION}); use the same rtipc version on both sides"
            ));
        }
        self.u16("the message kind")
    }
}

pub(super) fn encode_request(b: &SegmentBuilder) -> Result<Vec<u8>> {
    b.plan(0, 0)?;
    let notify = b.channels.iter().filter(|c| c.notify).count();
    if notify > MAX_NOTIFY_CHANNELS {
        return Err(Error::InvalidArgument(format!(
            "{notify} notify-enabled channels; a handshake carries at most \
             {MAX_NOTIFY_CHANNELS}"
        )));
    }
    let mut v = preamble(KIND_REQUEST);
    v.extend_from_slice(&b.cache_line.to_le_bytes());
    v.extend_from_slice(&(b.channels.len() as u32).to_le_bytes());
    for c in &b.channels {
        // The plan bounded the name (255), the objects (64) and the metadata (64 KiB).
        v.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
        v.extend_from_slice(c.name.as_bytes());
        v.push(c.kind.code() as u8);
        v.push(c.direction.code() as u8);
        v.push(u8::from(c.notify));
        v.push(0);
        // A record channel has one slot: the field carries its ring's bytes instead (a ring
        // too large for it becomes u32::MAX, which the server refuses).
        let slots = if c.kind == ChannelKind::Record {
            u32::try_from(c.ring).unwrap_or(u32::MAX)
        } else {
            c.slots
        };
        v.extend_from_slice(&slots.to_le_bytes());
        v.extend_from_slice(&(c.user_meta.len() as u32).to_le_bytes());
        v.extend_from_slice(&c.user_meta);
        v.extend_from_slice(&(c.objects.len() as u32).to_le_bytes());
        for o in &c.objects {
            let encoded = schema::encode(&o.schema);
            for w in [o.id, o.fingerprint, o.size, o.align] {
                v.extend_from_slice(&w.to_le_bytes());
            }
            v.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            v.extend_from_slice(&encoded);
        }
        if v.len() > MAX_REQUEST_LEN {
            break;
        }
    }
    if v.len() > MAX_REQUEST_LEN {
        return Err(Error::InvalidArgument(format!(
            "the request is longer than the {MAX_REQUEST_LEN} bytes a handshake allows; use \
             fewer channels or less user metadata"
        )));
    }
    Ok(v)
}

/// Decodes a request; the error says what is wrong, for the client and the listener's log.
pub(super) fn decode_request(buf: &[u8], peer: PeerCred) -> std::result::Result<Request, String> {
    let mut r = Reader { buf, pos: 0 };
    let kind = r.preamble()?;
    if kind != KIND_REQUEST {
        return Err(format!("expected a request (kind 1), got kind {kind}"));
    }
    let cache_line = r.u32("cache_line")?;
    let count = r.u32("channel_count")?;
    if count > MAX_CHANNELS {
        return Err(format!("{count} channels, more than {MAX_CHANNELS}"));
    }
    let mut channels: Vec<RequestedChannel> = Vec::new();
    let mut notify_count = 0;
    for i in 0..count {
        let channel = decode_channel(&mut r, i)?;
        notify_count += usize::from(channel.notify);
        if notify_count > MAX_NOTIFY_CHANNELS {
            return Err(format!(
                "more than {MAX_NOTIFY_CHANNELS} notify-enabled channels"
            ));
        }
        channels.push(channel);
    }
    r.end()?;
    Ok(Request {
        peer,
        cache_line,
        channels,
    })
}

/// Decodes channel `i` of a request.
fn decode_channel(r: &mut Reader<'_>, i: u32) -> std::result::Result<RequestedChannel, String> {
    let name_len = usize::from(r.u16("a channel's name_len")?);
    if !(1..=255).contains(&name_len) {
        return Err(format!(
            "channel {i}: name length {name_len} is not 1 to 255"
        ));
    }
    let name = std::str::from_utf8(r.take(name_len, "a channel name")?)
        .map_err(|_| format!("channel {i}: the name is not UTF-8"))?
        .to_owned();
    let kind = match r.u8("kind")? {
        1 => ChannelKind::State,
        2 => ChannelKind::Queue,
        3 => ChannelKind::Region,
        4 => ChannelKind::Record,
        k => return Err(format!("channel `{name}`: unknown kind {k}")),
    };
    let direction = match r.u8("direction")? {
        1 => Direction::CreatorToPeer,
        2 => Direction::PeerToCreator,
        d => return Err(format!("channel `{name}`: unknown direction {d}")),
    };
    let notify = match r.u8("notify")? {
        0 => false,
        1 => true,
        n => return Err(format!("channel `{name}`: notify flag {n} is not 0 or 1")),
    };
    if r.u8("reserved")? != 0 {
        return Err(format!("channel `{name}`: reserved byte is not 0"));
    }
    let slots = r.u32("slots")?;
    let meta_len = r.u32("user_meta_len")?;
    if u64::from(meta_len) > MAX_USER_META {
        return Err(format!(
            "channel `{name}`: {meta_len} bytes of user metadata, more than 64 KiB"
        ));
    }
    let user_meta = r.take(meta_len as usize, "user metadata")?.to_vec();
    let object_count = r.u32("object_count")?;
    if object_count == 0 || object_count > MAX_OBJECTS {
        return Err(format!(
            "channel `{name}`: {object_count} objects, not 1 to {MAX_OBJECTS}"
        ));
    }
    let objects = (0..object_count)
        .map(|j| decode_object(r, &name, j))
        .collect::<std::result::Result<_, _>>()?;
    Ok(RequestedChannel {
        name,
        kind,
        direction,
        slots,
        notify,
        user_meta,
        objects,
    })
}

/// Decodes object `j` of channel `name`: its facts and its schema, which must agree.
fn decode_object(
    r: &mut Reader<'_>,
    name: &str,
    j: u32,
) -> std::result::Result<RequestedObject, String> {
    let id = r.u64("an object id")?;
    let fingerprint = r.u64("a fingerprint")?;
    let size = r.u64("an object size")?;
    let align = r.u64("an object alignment")?;
    let schema_len = r.u32("schema_len")? as usize;
    let raw = r.take(schema_len, "a schema")?;
    let schema = schema::decode(raw)
        .map_err(|e| format!("channel `{name}` object {j}: malformed schema: {e}"))?;
    if schema::fingerprint(&schema) != fingerprint || schema.size != size || schema.align != align {
        return Err(format!(
            "channel `{name}` object {j}: the fingerprint, size or alignment does not match \
             the schema"
        ));
    }
    Ok(RequestedObject {
        id,
        fingerprint,
        size,
        align,
        schema,
    })
}

pub(super) fn reject_msg(reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_TEXT);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut v = preamble(KIND_REJECT);
    v.extend_from_slice(&(cut as u32).to_le_bytes());
    v.extend_from_slice(&reason.as_bytes()[..cut]);
    v
}

pub(super) fn attached_msg(result: std::result::Result<(), &str>) -> Vec<u8> {
    let (status, text) = match result {
        Ok(()) => (0u32, ""),
        Err(e) => (1, e),
    };
    let mut v = preamble(KIND_ATTACHED);
    v.extend_from_slice(&status.to_le_bytes());
    let mut cut = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    v.extend_from_slice(&(cut as u32).to_le_bytes());
    v.extend_from_slice(&text.as_bytes()[..cut]);
    v
}

/// The segment a request asks for, declared the way a creator declares it.
pub(super) fn builder_from(req: &Request) -> SegmentBuilder {
    let mut b = SegmentBuilder::default().cache_line(req.cache_line);
    for c in &req.channels {
        let mut spec = match c.kind {
            ChannelKind::State => ChannelSpec::state(c.name.clone(), c.direction)
                .consumers(c.slots.saturating_sub(2).max(1)),
            ChannelKind::Queue => {
                ChannelSpec::queue(c.name.clone(), c.direction, c.slots.saturating_sub(2))
            }
            // Zeros: a creator's initial value does not travel in a request.
            ChannelKind::Region => ChannelSpec::region_untyped(c.name.clone()),
            ChannelKind::Record => {
                ChannelSpec::record(c.name.clone(), c.direction, u64::from(c.slots))
            }
        };
        // Keep the slot count as asked, so that a count the kind does not allow is refused
        // by the layout's own check rather than rounded here.
        if c.kind != ChannelKind::Record {
            spec.slots = c.slots;
        }
        spec = spec.notify(c.notify).user_meta(c.user_meta.clone());
        for o in &c.objects {
            spec = spec.object_spec(ObjectSpec {
                id: o.id,
                fingerprint: o.fingerprint,
                size: o.size,
                align: o.align,
                schema: Cow::Owned(o.schema.clone()),
            });
        }
        b = b.channel(spec);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Segment;
    use crate::Object;

    #[derive(Object)]
    #[repr(C)]
    struct Probe {
        a: u64,
        b: [f32; 4],
    }

    fn builder() -> SegmentBuilder {
        Segment::builder()
            .channel(
                ChannelSpec::state("up", Direction::PeerToCreator)
                    .object::<Probe>()
                    .notify(true)
                    .user_meta(*b"hello"),
            )
            .channel(ChannelSpec::state("down", Direction::CreatorToPeer).object::<Probe>())
    }

    const PEER: PeerCred = PeerCred {
        pid: 1,
        uid: 2,
        gid: 3,
    };

    #[test]
    fn request_round_trip() {
        let bytes = encode_request(&builder()).unwrap();
        let req = decode_request(&bytes, PEER).unwrap();
        assert_eq!(req.peer(), PEER);
        assert_eq!(req.channels().len(), 2);
        let up = &req.channels()[0];
        assert_eq!(
            (
                up.name(),
                up.kind(),
                up.direction(),
                up.notify(),
                up.user_meta()
            ),
            (
                "up",
                ChannelKind::State,
                Direction::PeerToCreator,
                true,
                &b"hello"[..]
            )
        );
        assert_eq!(up.objects()[0].fingerprint, <Probe as Object>::FINGERPRINT);
        assert_eq!(&up.objects()[0].schema, <Probe as Object>::SCHEMA);
        // And the server can build it.
        builder_from(&req).create_anonymous().unwrap();
    }

    #[test]
    fn a_record_channel_travels_with_its_ring() {
        let b = SegmentBuilder::default().channel(
            ChannelSpec::record("frames", Direction::PeerToCreator, 100_000).object::<Probe>(),
        );
        let req = decode_request(&encode_request(&b).unwrap(), PEER).unwrap();
        let c = &req.channels()[0];
        assert_eq!((c.kind(), c.slots()), (ChannelKind::Record, 100_000));
        let seg = builder_from(&req).create_anonymous().unwrap();
        let (_, info) = seg.layout().channel("frames").unwrap();
        // Rounded up to whole pairs of cache lines, as for a creator.
        assert_eq!(info.slot_stride, 100_096);
        // A ring the layout does not allow: the client refuses to send it, and a server that
        // gets one anyway (here patched into the bytes) refuses it with its own check.
        let small = SegmentBuilder::default()
            .channel(ChannelSpec::record("frames", Direction::PeerToCreator, 8).object::<Probe>());
        assert!(encode_request(&small).is_err());
        let mut bytes = encode_request(&b).unwrap();
        let at = bytes
            .windows(4)
            .position(|w| w == 100_000u32.to_le_bytes())
            .unwrap();
        bytes[at..at + 4].copy_from_slice(&8u32.to_le_bytes());
        let req = decode_request(&bytes, PEER).unwrap();
        let e = builder_from(&req).create_anonymous().unwrap_err();
        assert!(e.to_string().contains("ring of 96"), "{e}");
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_an_error() {
        let bytes = encode_request(&builder()).unwrap();
        for n in 0..bytes.len() {
            assert!(
                decode_request(&bytes[..n], PEER).is_err(),
                "truncated to {n}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_request(&long, PEER).is_err());
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let bytes = encode_request(&builder()).unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = bytes.clone();
            let at = (x % b.len() as u64) as usize;
            b[at] ^= (x >> 32) as u8 | 1;
            if let Ok(req) = decode_request(&b, PEER) {
                // A flip in a name or in user metadata still decodes; building must then
                // either work or fail cleanly.
                let _ = builder_from(&req).plan(0, 0);
            }
        }
    }
}
