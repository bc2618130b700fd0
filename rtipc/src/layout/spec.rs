//! What a creator declares: channels and their objects, checked before anything is laid out.

use std::borrow::Cow;
use std::collections::HashSet;

use super::{
    ChannelKind, Ctrl, Direction, FormatError, ShapeError, MAX_CACHE_LINE, MAX_CHANNELS,
    MAX_CHANNEL_NAME, MAX_OBJECTS, MAX_USER_META, MIN_CACHE_LINE,
};
use crate::schema::{Object, Schema};

/// Writes the initial words of a fresh channel's control block (its kind's lines: the
/// segment's common lines start zeroed), for `slot_count` slots.
pub(crate) type InitCtrl = fn(ctrl: Ctrl<'_>, slot_count: u32);

/// Makes the initial bytes of a channel's slot 0 (a region's object), which the creator
/// writes before the segment is published.
pub(crate) type InitData = std::sync::Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

/// Declares one channel for [`SegmentBuilder::channel`](crate::SegmentBuilder::channel).
///
/// Made by [`ChannelSpec::state`] or [`ChannelSpec::queue`]; add objects with
/// [`ChannelSpec::object`].
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
///     .object::<Battery>()
///     .notify(true);
/// ```
#[derive(Clone)]
pub struct ChannelSpec {
    pub(crate) name: String,
    pub(crate) kind: ChannelKind,
    pub(crate) direction: Direction,
    pub(crate) slots: u32,
    /// How many consumer ends (see [`ChannelSpec::consumers`]).
    pub(crate) consumers: u32,
    pub(crate) objects: Vec<ObjectSpec>,
    pub(crate) notify: bool,
    pub(crate) user_meta: Vec<u8>,
    /// The kind's protocol's initial words, supplied by the kind's constructor.
    pub(crate) init: InitCtrl,
    /// The initial bytes of slot 0 (a region's object), if not zeros.
    pub(crate) data: Option<InitData>,
    /// A record channel's ring, in bytes as declared (the plan rounds it up).
    pub(crate) ring: u64,
}

impl std::fmt::Debug for ChannelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("direction", &self.direction)
            .field("slots", &self.slots)
            .field("objects", &self.objects)
            .field("notify", &self.notify)
            .field("user_meta_len", &self.user_meta.len())
            .finish()
    }
}

/// One object of a [`ChannelSpec`].
#[derive(Clone, Debug)]
pub(crate) struct ObjectSpec {
    pub id: u64,
    pub fingerprint: u64,
    pub size: u64,
    pub align: u64,
    /// `Cow::Owned` for a schema decoded from a handshake request.
    pub schema: Cow<'static, Schema>,
}

impl ChannelSpec {
    /// A channel of `kind` with `slots` slots and no objects; the kinds' constructors build on
    /// it.
    pub(crate) fn new(
        name: String,
        kind: ChannelKind,
        direction: Direction,
        slots: u32,
        init: InitCtrl,
    ) -> ChannelSpec {
        ChannelSpec {
            name,
            kind,
            direction,
            slots,
            consumers: 1,
            objects: Vec::new(),
            notify: false,
            user_meta: Vec::new(),
            init,
            data: None,
            ring: 0,
        }
    }

    /// Adds an object to the channel's slot, after the objects added before it.
    pub fn object<T: Object>(mut self) -> ChannelSpec {
        self.objects.push(ObjectSpec {
            id: T::ID,
            fingerprint: T::FINGERPRINT,
            size: size_of::<T>() as u64,
            align: align_of::<T>() as u64,
            schema: Cow::Borrowed(T::SCHEMA),
        });
        self
    }

    /// Adds an object described by a schema rather than a Rust type: for a tool or a bridge
    /// that declares, on another machine or in another language, a channel whose schema it
    /// received ([`schema::decode`](crate::schema::decode)). `id` is the object's id
    /// ([`schema::id_from_name`](crate::schema::id_from_name) of its name, unless the type set
    /// one). The schema must describe a possible layout (as [`schema::decode`](crate::schema::decode) checks it);
    /// otherwise [`Error::InvalidArgument`](crate::Error::InvalidArgument) says what is wrong.
    /// A peer built with the Rust type attaches to the channel as to any other.
    pub fn object_schema(self, id: u64, schema: Schema) -> crate::Result<ChannelSpec> {
        // Checked as an untrusted encoding is: the same rules, the same messages.
        let bytes = crate::schema::encode(&schema);
        let schema = crate::schema::decode(&bytes).map_err(|e| {
            crate::Error::InvalidArgument(format!(
                "the schema of object `{}` (id {id:#x}) describes no possible layout: {e}",
                schema.name()
            ))
        })?;
        Ok(self.object_spec(ObjectSpec {
            id,
            fingerprint: crate::schema::fingerprint(&schema),
            size: schema.size,
            align: schema.align,
            schema: Cow::Owned(schema),
        }))
    }

    /// Adds an object described by a schema that was decoded from a request.
    pub(crate) fn object_spec(mut self, object: ObjectSpec) -> ChannelSpec {
        self.objects.push(object);
        self
    }

    /// Gives a state channel `n` consumer ends, from 1 (the default) to
    /// [`MAX_FANOUT_CONSUMERS`](crate::layout::MAX_FANOUT_CONSUMERS): a *fan-out* channel.
    /// The producer writes each update once; each consumer claims its own end
    /// ([`StateConsumer::new`](crate::StateConsumer::new) takes the first free one) and fetches
    /// the newest update without waiting for the others. It has `n + 2` slots. A queue has one
    /// consumer; an observer ([`QueueObserver`](crate::QueueObserver)) can watch any channel without a consumer end.
    pub fn consumers(mut self, n: u32) -> ChannelSpec {
        self.consumers = n;
        if self.kind == ChannelKind::State {
            self.slots = if n == 1 { 3 } else { n.saturating_add(2) };
        }
        self
    }

    /// Lets the consumer wait for data (default: off): see [`notify`](crate::notify). In an
    /// anonymous segment the channel gets an eventfd that the peer must receive too.
    pub fn notify(mut self, on: bool) -> ChannelSpec {
        self.notify = on;
        self
    }

    /// Attaches opaque user metadata (at most 64 KiB) that the peer can read with
    /// [`Segment::user_meta`](crate::Segment::user_meta).
    pub fn user_meta(mut self, bytes: impl Into<Vec<u8>>) -> ChannelSpec {
        self.user_meta = bytes.into();
        self
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }
}

/// The smallest ring of a record channel of elements of `size` bytes aligned to `align`: two
/// records of one element each (the largest record takes at most half the ring).
pub(crate) fn record_min_ring(size: u64, align: u64) -> u64 {
    let a = super::record_align(align);
    2 * (a + size.div_ceil(a).saturating_mul(a))
}

/// The rules of each kind about consumers and rings.
fn check_kind(c: &ChannelSpec) -> Result<(), FormatError> {
    if c.kind == ChannelKind::Queue && c.consumers != 1 {
        return Err(FormatError::Invalid(format!(
            "queue `{}` has one consumer, not {}; to follow it from more processes, \
             use observers (`QueueObserver`)",
            c.name, c.consumers
        )));
    }
    if c.kind == ChannelKind::Record && c.consumers != 1 {
        return Err(FormatError::Invalid(format!(
            "record channel `{}` has one consumer, not {}",
            c.name, c.consumers
        )));
    }
    if let (ChannelKind::Record, [o]) = (c.kind, c.objects.as_slice()) {
        let min = record_min_ring(o.size, o.align);
        if c.ring < min || c.ring > super::MAX_RECORD_RING {
            return Err(FormatError::Invalid(format!(
                "record channel `{}` must have a ring of {min} to {} bytes (two records of \
                 one `{}` at least), not {}",
                c.name,
                super::MAX_RECORD_RING,
                o.schema.name(),
                c.ring
            )));
        }
    }
    if c.kind == ChannelKind::State && !(1..=super::MAX_FANOUT_CONSUMERS).contains(&c.consumers) {
        return Err(FormatError::Invalid(format!(
            "state channel `{}` must have between 1 and {} consumers, not {}",
            c.name,
            super::MAX_FANOUT_CONSUMERS,
            c.consumers
        )));
    }
    Ok(())
}

/// Checks a declaration: the cache line, and every channel's name, objects, slots and
/// metadata. The error names the channel and what to change.
pub(crate) fn validate(channels: &[ChannelSpec], cache_line: u32) -> Result<(), FormatError> {
    let bad = |m: String| Err(FormatError::Invalid(m));
    if !cache_line.is_power_of_two() || !(MIN_CACHE_LINE..=MAX_CACHE_LINE).contains(&cache_line) {
        return bad(format!(
            "cache line {cache_line} must be a power of two between 32 and 4096"
        ));
    }
    if channels.len() > MAX_CHANNELS as usize {
        return bad(format!("more than {MAX_CHANNELS} channels"));
    }
    let mut names = HashSet::new();
    for c in channels {
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
        check_kind(c)?;
        match c.kind.check_shape(c.slots, c.objects.len() as u32) {
            Ok(()) => {}
            Err(ShapeError::Slots(_)) if c.kind == ChannelKind::Queue => {
                return bad(format!(
                    "queue `{}` must have a capacity between 1 and {}, not {}",
                    c.name,
                    super::MAX_QUEUE_CAPACITY,
                    i64::from(c.slots) - 2
                ))
            }
            Err(ShapeError::Objects(_)) if c.kind == ChannelKind::Queue => {
                return bad(format!(
                    "queue `{}` must carry exactly one object type, not {}",
                    c.name,
                    c.objects.len()
                ))
            }
            Err(ShapeError::Slots(rule) | ShapeError::Objects(rule)) => {
                return bad(format!("channel `{}`: {rule}", c.name))
            }
        }
        for (i, o) in c.objects.iter().enumerate() {
            if !o.align.is_power_of_two() || o.size == 0 {
                return bad(format!(
                    "object `{}` in channel `{}` has size {} and alignment {}",
                    o.schema.name(),
                    c.name,
                    o.size,
                    o.align
                ));
            }
            if o.align > u64::from(cache_line) {
                return bad(format!(
                    "object `{}` in channel `{}` is aligned to {} bytes, more than the cache \
                     line of {cache_line}",
                    o.schema.name(),
                    c.name,
                    o.align
                ));
            }
            if c.objects[..i].iter().any(|p| p.id == o.id) {
                return bad(format!(
                    "object `{}` is declared twice in channel `{}`",
                    o.schema.name(),
                    c.name
                ));
            }
        }
    }
    Ok(())
}
