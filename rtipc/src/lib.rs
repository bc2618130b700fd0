#![doc = include_str!("../README.md")]
//!
//! # The crate
//!
//! * [`derive@Object`] turns a `#[repr(C)]` struct into a channel object with a compile-time
//!   [`schema`], id and fingerprint.
//! * [`Segment`] creates (with [`Segment::builder`]) or attaches to ([`Segment::open`],
//!   [`Segment::from_fd`]) a shared-memory segment; [`layout`] documents its bytes.
//! * [`StateProducer`] / [`StateConsumer`] are the two ends of a state channel (the newest
//!   value, triple buffered); [`MultiStateProducer`] / [`MultiStateConsumer`] are the same ends
//!   for a channel carrying several objects, read and written through [`ObjectKey`]s.
//! * [`QueueProducer`] / [`QueueConsumer`] are the two ends of a queue channel (messages in
//!   order, overwriting the oldest when full if asked to).
//! * Views follow one scheme: `...Mut` is a slot being written in place ([`StateMut`],
//!   [`MultiStateMut`], [`MessageMut`]), `...Ref` one being read in place ([`StateRef`],
//!   [`MultiStateRef`], [`MessageRef`]); updates or messages a consumer did not see are
//!   *missed*, and each view tells how many.
//! * [`notify`]: a consumer can block until data arrives ([`StateConsumer::wait`]) or poll an
//!   eventfd ([`notify::Pollable`]), with no system call on the producer's fast path.
//! * [`handshake`]: a [`Listener`](handshake::Listener) on a unix socket creates a segment for
//!   each client that [`connect`](handshake::connect)s with the channels it wants, and hands it
//!   over with its eventfds; the listener's filter accepts or rejects each request.
//! * Setup returns [`Result`]`<_, `[`Error`]`>`; the data path (`publish`, `fetch`, `push`,
//!   `pop`) returns the small, `Copy` [`DataError`]. Nothing a peer writes into the segment
//!   makes rtipc panic or read out of bounds.
//!
//! # Platform
//!
//! Linux only (x86-64 and aarch64 are the tested targets): rtipc uses POSIX shared memory in
//! `/dev/shm`, `memfd_create` with file seals (Linux 3.17), `eventfd`, `futex`, `SOCK_SEQPACKET`
//! unix sockets with `SCM_RIGHTS` and `SO_PEERCRED`, and `/proc`. Other targets fail to compile
//! with a message saying so.
//!
//! # Trust model
//!
//! The peer is a cooperating program that may be buggy or built from another version. Nothing
//! it writes into the segment can make this process read out of bounds, see an invalid value
//! (every object is valid for any bit pattern), panic or hang: the header, table and schemas are
//! validated once at attach and never read again, and every index word is validated on every
//! fetch and publish. A peer that ignores the protocol (writing into a slot it does not own) can
//! only make the data it shares wrong.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(loom, allow(dead_code, unused_imports))]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "rtipc supports Linux only: it is built on POSIX shared memory, memfd seals, eventfd, futex \
     and unix sockets with SCM_RIGHTS"
);

// Lets unit tests use `#[derive(Object)]`, whose output names `::rtipc`.
#[cfg(all(test, not(loom)))]
extern crate self as rtipc;

// The layers, lowest first; each imports only from the ones above it in this list
// (ARCHITECTURE.md; `tests/layers.rs` checks it).
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
pub mod layout;
pub mod schema;
#[cfg(not(loom))]
mod segment;
mod sync;
#[cfg(not(loom))]
mod sys;
#[cfg(loom)]
mod segment {
    //! Under loom only the wake-up protocol of this layer is compiled and model-checked.
    pub(crate) mod wake {
        pub(crate) mod protocol;
    }
}
#[cfg(not(loom))]
pub mod handshake;
#[cfg(not(loom))]
pub mod inspect;
pub mod notify;
#[cfg(not(loom))]
mod observe;
mod queue;
mod record;
pub mod region;
mod state;

pub use crate::schema::object::{Object, Region};
pub use crate::sync::CorruptWord;
#[cfg(not(loom))]
pub use crate::{
    error::{DataError, Error, Result, Stage},
    layout::names::{ChannelKind, Direction, End, Side},
    layout::spec::ChannelSpec,
    observe::{ObjectLayout, Observed, QueueObserver, RawObserver, StateObserver},
    queue::{
        MessageMut, MessageRef, QueueConsumer, QueueCopier, QueueProducer, RawMessage,
        RawQueueConsumer, RawQueueProducer,
    },
    record::{
        CopiedRecord, RawRecord, RawRecordConsumer, RawRecordProducer, RecordConsumer,
        RecordCopier, RecordMut, RecordProducer, RecordRef, RecordSender,
    },
    segment::{lock_all_memory, Segment, SegmentBuilder, SysvKey},
    state::{
        Copied, MultiStateConsumer, MultiStateMut, MultiStateProducer, MultiStateRef, ObjectKey,
        RawStateProducer, StateConsumer, StateCopier, StateMut, StateProducer, StateRef,
    },
};
/// Derives [`Object`](trait@Object) for a plain struct, with its schema, id and fingerprint.
///
/// ```
/// use rtipc::Object;
///
/// #[derive(Object)]
/// #[repr(C)]
/// struct JointState {
///     position: [f64; 6],
///     effort: [f32; 6],
///     sequence: u32,
///     mode: u16,
///     _reserved: [u8; 2],
/// }
///
/// #[derive(Object)]
/// #[repr(C)]
/// #[rtipc(id = 0x10, name = "arm.Command")]
/// struct Command {
///     target: JointState,
///     deadline_ns: u64,
/// }
///
/// // Everything is computed at compile time.
/// const JOINT_STATE: u64 = <JointState as Object>::FINGERPRINT;
///
/// let schema = <JointState as Object>::SCHEMA;
/// assert_eq!(schema.size, 80);
/// assert_eq!(schema.fields()[2].name(), "sequence");
/// assert_eq!(schema.fields()[2].offset, 72);
/// assert_eq!(<JointState as Object>::ID, rtipc::schema::id_from_name("JointState"));
/// assert_eq!(<Command as Object>::ID, 0x10);
/// assert_eq!(<Command as Object>::SCHEMA.name(), "arm.Command");
/// assert_ne!(<Command as Object>::FINGERPRINT, JOINT_STATE);
///
/// // `Object` implies `Copy`, and the derive implements it.
/// let state = JointState::zeroed();
/// let copy = state;
/// assert_eq!(copy.as_bytes(), state.as_bytes());
/// ```
///
/// # What it accepts
///
/// - A struct with at least one field, named or tuple (whose fields are named `"0"`, `"1"`, ...
///   in the schema).
/// - `#[repr(C)]` or `#[repr(transparent)]`, optionally with `align(N)`.
/// - Fields of the fixed-width primitives `u8`, `u16`, `u32`, `u64`, `i8`, `i16`, `i32`,
///   `i64`, `f32` and `f64`, of arrays `[T; N]` of allowed types (arrays of arrays too), and of
///   other types that derive `Object`.
/// - No padding: the fields must fill the struct, including the tail that `align(N)` adds.
///   Order the fields from the largest alignment to the smallest, or add explicit fields such
///   as `_reserved: [u8; 2]` where the compiler would pad.
///
/// Together these make every object plain bytes: valid for every bit pattern a peer may write,
/// with no uninitialised bytes and no interior mutability, laid out the same in every build
/// and on every target. The compiler proves the field types and the absence of padding: the
/// derive emits the bounds and `const` assertions, so an error names the offending field type
/// or struct.
///
/// The derive also implements [`Clone`] and [`Copy`], which [`Object`](trait@Object) requires:
/// do not derive them as well. A `#[derive(Clone)]` written after `#[derive(Object)]` gets
/// rtipc's own error saying so; in the same list, `#[derive(Clone, Copy, Object)]` gets rustc's
/// "conflicting implementations" error, which a derive cannot change, with a note naming the
/// fix.
///
/// # Attributes
///
/// `#[rtipc(id = N, name = "...", crate = path)]`, every key optional, in one attribute or
/// several; each key may be given once.
///
/// - `id = N`, an integer literal that fits in a `u64`, sets [`Object::ID`]. Without it, the id
///   is [`schema::id_from_name`] of the type's name: a stable 64-bit hash of the name alone,
///   not of its module path, so the same declaration in two crates gets the same id. Two
///   object types of the same name that share a channel need an explicit `id` or `name`.
/// - `name = "..."` sets the name in the [`Schema`](schema::Schema) (and so the default id);
///   without it, the name is the struct's identifier.
/// - `crate = path` (or `crate = "path"`) is the path through which the generated code reaches
///   rtipc, for a crate that uses it through a re-export: `#[rtipc(crate = my_sdk::rtipc)]`.
///   Without it, `::rtipc`.
///
/// The [fingerprint](schema::fingerprint) covers the size, the alignment and, for every field,
/// its name, offset, size and type, recursing into arrays and nested objects; it does not
/// cover the type's name. Renaming the struct keeps the fingerprint (but changes the default
/// id); renaming, reordering or retyping a field, or changing an array's length, changes it.
///
/// # What it refuses
///
/// Each of these is a compile error spanned on what is wrong, and all of them are reported at
/// once.
///
/// A struct without `#[repr(C)]` or `#[repr(transparent)]`, whose field order the compiler may
/// change (`#[repr(packed)]`, `#[repr(Rust)]` and `#[repr(u8)]` and the like are refused too):
///
/// ```compile_fail
/// #[derive(rtipc::Object)]
/// struct Pose {
///     x: f32,
///     y: f32,
/// }
/// ```
///
/// `bool` and `char`, which are not valid for every bit pattern:
///
/// ```compile_fail
/// #[derive(rtipc::Object)]
/// #[repr(C)]
/// struct Flags {
///     enabled: bool,
///     level: u8,
/// }
/// ```
///
/// `usize` and `isize`, whose size differs between a 32-bit and a 64-bit peer, also inside
/// arrays:
///
/// ```compile_fail
/// #[derive(rtipc::Object)]
/// #[repr(C)]
/// struct Counts {
///     per_bucket: [usize; 4],
/// }
/// ```
///
/// References, raw pointers and function pointers, which mean nothing in another process:
///
/// ```compile_fail
/// #[derive(rtipc::Object)]
/// #[repr(C)]
/// struct Named {
///     name: &'static str,
/// }
/// ```
///
/// Any other field type that is not one of the allowed ones, such as `String` or a struct that
/// does not derive `Object`:
///
/// ```compile_fail,E0277
/// #[derive(rtipc::Object)]
/// #[repr(C)]
/// struct Message {
///     text: String,
/// }
/// ```
///
/// Padding bytes, which would be uninitialised; here 3 bytes after `flag`. The error names the
/// struct, the field after the gap, the offset and the exact field to insert (here
/// `` insert `_pad1: [u8; 3]` before `value` ``):
///
/// ```compile_fail,E0080
/// #[derive(rtipc::Object)]
/// #[repr(C)]
/// struct Sample {
///     flag: u8,
///     value: u32,
/// }
/// ```
///
/// Type, const and lifetime parameters, since an object's layout is fixed:
///
/// ```compile_fail
/// #[derive(rtipc::Object)]
/// #[repr(C)]
/// struct Sample<T> {
///     value: T,
/// }
/// ```
///
/// Enums and unions, structs without fields, and unknown, repeated or malformed `#[rtipc]`
/// keys:
///
/// ```compile_fail
/// #[derive(rtipc::Object)]
/// #[repr(u8)]
/// enum Mode {
///     Idle,
///     Running,
/// }
/// ```
///
/// ```compile_fail
/// #[derive(rtipc::Object)]
/// #[repr(C)]
/// #[rtipc(id = "pose", version = 2)]
/// struct Pose {
///     x: f32,
/// }
/// ```
pub use rtipc_derive::Object;

#[doc(hidden)]
pub mod __private {
    //! Items used by code that `#[derive(Object)]` generates. Not part of the public API.
    pub use crate::schema::object::{FieldKind, RegionField, Sealed};
    pub use crate::schema::{fingerprint, id_from_name, Field, FieldType, Link, Schema};
    pub use ::core;
    pub use ::std::borrow::Cow;

    /// `ty` by value, for the `ty` of a [`Field`] in a generated schema.
    ///
    /// [`FieldType`] is not `Copy` (a decoded schema owns its links), so a generated schema cannot
    /// copy `<T as FieldKind>::TYPE` out of its reference. A `'static` field type can be rebuilt
    /// instead, linking to the same `'static` sub-types, in safe `const` code.
    pub const fn field_type(ty: &'static FieldType) -> FieldType {
        match ty {
            FieldType::Primitive(p) => FieldType::Primitive(*p),
            FieldType::Array { elem, len } => FieldType::Array {
                elem: Link::Static(elem.get()),
                len: *len,
            },
            FieldType::Object(schema) => FieldType::Object(Link::Static(schema.get())),
        }
    }
}
