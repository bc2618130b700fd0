//! rtipc's atomics: the standard ones, `repr(transparent)`, with a schema, so that a region's
//! type can hold them and a peer's build is checked field by field.

use std::borrow::Cow;

use crate::schema::object::RegionField;
use crate::schema::{Field, FieldType, Link, Primitive, Schema};

macro_rules! atomics {
    ($($(#[$doc:meta])* $name:ident($std:ident, $prim:ident, $int:ty, $size:literal);)*) => {$(
        $(#[$doc])*
        ///
        /// Dereferences to the standard atomic, whose methods it has. In a segment, its
        /// schema is an object named after it with one field `value`, so a peer's build that
        /// has a plain integer in its place is refused, field by field.
        #[repr(transparent)]
        #[derive(Default)]
        pub struct $name(std::sync::atomic::$std);

        impl $name {
            /// A new atomic holding `v` (for values built outside a segment).
            pub const fn new(v: $int) -> Self {
                $name(std::sync::atomic::$std::new(v))
            }
        }

        impl std::ops::Deref for $name {
            type Target = std::sync::atomic::$std;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        // SAFETY: `repr(transparent)` over the standard atomic of the same size and alignment
        // as the integer, valid for every bit pattern, no padding; its interior mutability is
        // the atomic's. `TYPE` names an object of that size with one integer field.
        unsafe impl RegionField for $name {
            const TYPE: &'static FieldType = &FieldType::Object(Link::Static(&Schema {
                name: Cow::Borrowed(stringify!($name)),
                size: $size,
                align: $size,
                fields: Cow::Borrowed(&[Field {
                    name: Cow::Borrowed("value"),
                    offset: 0,
                    size: $size,
                    ty: FieldType::Primitive(Primitive::$prim),
                    since: 1,
                }]),
                appendable: false,
            }));
        }

        const _: () = assert!(size_of::<$name>() == $size && align_of::<$name>() == $size);
    )*};
}

atomics! {
    /// An atomic `u32` for a shared region.
    AtomicU32(AtomicU32, U32, u32, 4);
    /// An atomic `u64` for a shared region.
    AtomicU64(AtomicU64, U64, u64, 8);
    /// An atomic `i32` for a shared region.
    AtomicI32(AtomicI32, I32, i32, 4);
    /// An atomic `i64` for a shared region.
    AtomicI64(AtomicI64, I64, i64, 8);
}
