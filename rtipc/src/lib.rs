//! rtipc: zero-copy, wait-free inter-process communication over shared memory, with schemas
//! checked field by field when a peer attaches.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
#[cfg(not(loom))]
pub mod layout;
mod object;
pub mod schema;
#[cfg(not(loom))]
pub mod segment;
pub mod state;
mod sync;

pub use error::{Error, Result};
#[cfg(not(loom))]
pub use layout::{Direction, Kind};
pub use object::Object;
/// Derives [`Object`] for a plain `#[repr(C)]` struct.
pub use rtipc_derive::Object;
#[cfg(not(loom))]
pub use segment::{ChannelSpec, Segment, SegmentBuilder, Side};
#[cfg(not(loom))]
pub use state::{
    Draft, ObjectKey, Sample, Snapshot, StateConsumer, StateProducer, StateReader, StateWriter,
    WriteGuard,
};

#[doc(hidden)]
pub mod __private {
    //! Items used by code that `#[derive(Object)]` generates. Not part of the public API.
    pub use crate::object::FieldKind;
    pub use crate::schema::{fingerprint, id_from_name, Field, FieldType, Link, Schema};
    pub use ::core;
    pub use ::std::borrow::Cow;

    /// The token that seals [`Object`](crate::Object): only generated code names it.
    pub struct Sealed;
}
