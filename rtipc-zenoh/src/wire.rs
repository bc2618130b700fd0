//! What the bridge puts on the network beside rtipc's own bytes: the attachment of each sample
//! and the description of a channel, both little-endian, versioned, and decoded as untrusted
//! input (every length checked against the bytes present; nothing allocated beyond them).

use rtipc::schema::{self, Schema};

/// The first byte of every attachment and description.
pub const MAGIC: u8 = 0xB7;
/// The version of both formats.
pub const VERSION: u8 = 1;

/// What travels beside each sample's payload: which layout it has, its number, and how many
/// the exporting side missed before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The fingerprint of the object the payload is.
    pub fingerprint: u64,
    /// The update's or message's sequence number on the exporting side.
    pub seq: u64,
    /// How many the exporting side's reader missed before it.
    pub missed: u64,
}

/// Why bytes from the network were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

impl Attachment {
    /// The attachment's 26 bytes.
    pub fn encode(&self) -> [u8; 26] {
        let mut out = [0; 26];
        out[0] = MAGIC;
        out[1] = VERSION;
        out[2..10].copy_from_slice(&self.fingerprint.to_le_bytes());
        out[10..18].copy_from_slice(&self.seq.to_le_bytes());
        out[18..26].copy_from_slice(&self.missed.to_le_bytes());
        out
    }

    /// Decodes an attachment, refusing anything but exactly one of this version.
    pub fn decode(bytes: &[u8]) -> Result<Attachment, WireError> {
        let b: &[u8; 26] = bytes
            .try_into()
            .map_err(|_| WireError(format!("an attachment is 26 bytes, not {}", bytes.len())))?;
        check_head(b[0], b[1])?;
        let word = |i: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Ok(Attachment {
            fingerprint: word(2),
            seq: word(10),
            missed: word(18),
        })
    }
}

fn check_head(magic: u8, version: u8) -> Result<(), WireError> {
    if magic != MAGIC {
        return Err(WireError(format!(
            "not an rtipc bridge message (first byte {magic:#04x})"
        )));
    }
    if version != VERSION {
        return Err(WireError(format!(
            "bridge format version {version}; this build reads {VERSION}"
        )));
    }
    Ok(())
}

/// The kind of a described channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A state channel: the newest value.
    State,
    /// A queue: every message, in order.
    Queue,
    /// A record channel: variable-length records of one element type, in order.
    Record,
}

/// One object of a described channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedObject {
    /// The object's id.
    pub id: u64,
    /// Its schema, decoded (and so checked) from rtipc's own encoding.
    pub schema: Schema,
}

/// What the exporting side says of a channel: enough to declare the same channel locally and
/// to check a local peer's type before a byte of data is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// State or queue.
    pub kind: Kind,
    /// The queue's capacity in messages, the record channel's ring in bytes (1 for a state
    /// channel).
    pub capacity: u32,
    /// The channel's objects, in slot order.
    pub objects: Vec<DescribedObject>,
}

/// The most objects a description may carry.
pub const MAX_OBJECTS: usize = 64;

impl Description {
    /// The description's bytes: magic, version, kind, capacity, object count, then per object
    /// its id and its schema in rtipc's encoding, length-prefixed.
    pub fn encode(&self) -> Vec<u8> {
        let kind = match self.kind {
            Kind::State => 0,
            Kind::Queue => 1,
            Kind::Record => 2,
        };
        let mut out = vec![MAGIC, VERSION, kind];
        out.extend_from_slice(&self.capacity.to_le_bytes());
        out.extend_from_slice(&(self.objects.len() as u32).to_le_bytes());
        for o in &self.objects {
            out.extend_from_slice(&o.id.to_le_bytes());
            let s = schema::encode(&o.schema);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(&s);
        }
        out
    }

    /// Decodes a description from the network: every length checked against the bytes
    /// present, every schema decoded by rtipc's untrusted-input decoder.
    pub fn decode(bytes: &[u8]) -> Result<Description, WireError> {
        let mut r = Reader(bytes);
        let head = r.take(3, "the header")?;
        check_head(head[0], head[1])?;
        let kind = match head[2] {
            0 => Kind::State,
            1 => Kind::Queue,
            2 => Kind::Record,
            k => return Err(WireError(format!("unknown channel kind {k}"))),
        };
        let capacity = r.u32("the capacity")?;
        let count = r.u32("the object count")? as usize;
        if count == 0 || count > MAX_OBJECTS {
            return Err(WireError(format!(
                "a channel of {count} objects (from 1 to {MAX_OBJECTS})"
            )));
        }
        let mut objects = Vec::with_capacity(count);
        for j in 0..count {
            let id = r.u64("an object id")?;
            let len = r.u32("a schema's length")? as usize;
            let raw = r.take(len, "a schema")?;
            let schema = schema::decode(raw)
                .map_err(|e| WireError(format!("object {j}: malformed schema: {e}")))?;
            objects.push(DescribedObject { id, schema });
        }
        if !r.0.is_empty() {
            return Err(WireError(format!(
                "{} bytes after the description",
                r.0.len()
            )));
        }
        Ok(Description {
            kind,
            capacity,
            objects,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError(format!(
                "the description is cut short in {what}: {n} bytes wanted, {} left",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self, what: &str) -> Result<u32, WireError> {
        let mut w = [0; 4];
        w.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(w))
    }

    fn u64(&mut self, what: &str) -> Result<u64, WireError> {
        let mut w = [0; 8];
        w.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtipc::Object;

    #[derive(Object)]
    #[repr(C)]
    struct Pose {
        x: f64,
        y: f64,
    }

    fn description() -> Description {
        Description {
            kind: Kind::Queue,
            capacity: 64,
            objects: vec![DescribedObject {
                id: <Pose as Object>::ID,
                schema: <Pose as Object>::SCHEMA.clone(),
            }],
        }
    }

    #[test]
    fn attachments_round_trip_and_refuse_other_bytes() {
        let a = Attachment {
            fingerprint: <Pose as Object>::FINGERPRINT,
            seq: 7,
            missed: 2,
        };
        assert_eq!(Attachment::decode(&a.encode()), Ok(a));
        assert!(Attachment::decode(&a.encode()[..25]).is_err());
        let mut b = a.encode();
        b[0] = 0;
        assert!(Attachment::decode(&b)
            .unwrap_err()
            .0
            .contains("not an rtipc bridge"));
        let mut b = a.encode();
        b[1] = 9;
        assert!(Attachment::decode(&b).unwrap_err().0.contains("version 9"));
    }

    #[test]
    fn descriptions_round_trip() {
        for (kind, capacity) in [(Kind::State, 1), (Kind::Queue, 64), (Kind::Record, 1 << 20)] {
            let d = Description {
                kind,
                capacity,
                ..description()
            };
            assert_eq!(Description::decode(&d.encode()).unwrap(), d);
        }
        let mut unknown = description().encode();
        unknown[2] = 3;
        let e = Description::decode(&unknown).unwrap_err();
        assert!(e.0.contains("unknown channel kind 3"), "{e}");
        let d = description();
        let back = Description::decode(&d.encode()).unwrap();
        assert_eq!(back, d);
        assert_eq!(
            back.objects[0].schema.fingerprint(),
            <Pose as Object>::FINGERPRINT
        );
    }

    #[test]
    fn every_truncation_and_mutation_is_an_error_never_a_panic() {
        let bytes = description().encode();
        for len in 0..bytes.len() {
            assert!(Description::decode(&bytes[..len]).is_err(), "{len}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Description::decode(&extra).is_err());
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut m = bytes.clone();
                m[i] = v;
                let _ = Description::decode(&m);
            }
        }
        // A huge claimed count allocates nothing in proportion.
        let mut huge = bytes;
        huge[7..11].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Description::decode(&huge)
            .unwrap_err()
            .0
            .contains("objects"));
    }
}
