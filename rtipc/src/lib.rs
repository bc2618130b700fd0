//! rtipc: zero-copy, wait-free inter-process communication over shared memory, with schemas
//! checked field by field when a peer attaches.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
mod object;
pub mod schema;

pub use error::{Error, Result};
pub use object::Object;
/// Derives [`Object`] for a plain `#[repr(C)]` struct.
pub use rtipc_derive::Object;

#[doc(hidden)]
pub mod __private {
    //! Items used by code that `#[derive(Object)]` generates. Not part of the public API.
    pub use crate::object::FieldKind;
    pub use crate::schema::{fingerprint, id_from_name, Field, FieldType, Link, Schema};
    pub use ::core;
    pub use ::std::borrow::Cow;

    /// The token that seals [`Object`](crate::Object): only generated code names it.
    pub struct Sealed;

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
