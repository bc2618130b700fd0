#[allow(
    unused_lifetimes,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::restriction
)]
const _: () = {
    use ::rtipc as __rtipc;
    macro_rules! derive_Object_already_implements_Clone_and_Copy__remove_them_from_the_derive_list {
        () => {
            #[automatically_derived] impl __rtipc::__private::core::clone::Clone for Pose
            { #[inline] fn clone(& self) -> Self { * self } } #[automatically_derived]
            impl __rtipc::__private::core::marker::Copy for Pose {}
        };
    }
    derive_Object_already_implements_Clone_and_Copy__remove_them_from_the_derive_list!();
    #[automatically_derived]
    unsafe impl __rtipc::Object for Pose {
        const ID: __rtipc::__private::core::primitive::u64 = __rtipc::__private::id_from_name(
            "Pose",
        );
        const SCHEMA: &'static __rtipc::__private::Schema = &__rtipc::__private::Schema {
            name: __rtipc::__private::Cow::Borrowed("Pose"),
            size: __rtipc::__private::core::mem::size_of::<Pose>()
                as __rtipc::__private::core::primitive::u64,
            align: __rtipc::__private::core::mem::align_of::<Pose>()
                as __rtipc::__private::core::primitive::u64,
            fields: __rtipc::__private::Cow::Borrowed(
                &[
                    __rtipc::__private::Field {
                        name: __rtipc::__private::Cow::Borrowed("x"),
                        offset: __rtipc::__private::core::mem::offset_of!(Pose, x)
                            as __rtipc::__private::core::primitive::u64,
                        size: __rtipc::__private::core::mem::size_of::<u32>()
                            as __rtipc::__private::core::primitive::u64,
                        ty: __rtipc::__private::field_type(
                            <u32 as __rtipc::__private::FieldKind>::TYPE,
                        ),
                        since: 1u32,
                    },
                    __rtipc::__private::Field {
                        name: __rtipc::__private::Cow::Borrowed("y"),
                        offset: __rtipc::__private::core::mem::offset_of!(Pose, y)
                            as __rtipc::__private::core::primitive::u64,
                        size: __rtipc::__private::core::mem::size_of::<u32>()
                            as __rtipc::__private::core::primitive::u64,
                        ty: __rtipc::__private::field_type(
                            <u32 as __rtipc::__private::FieldKind>::TYPE,
                        ),
                        since: 1u32,
                    },
                    __rtipc::__private::Field {
                        name: __rtipc::__private::Cow::Borrowed("heading"),
                        offset: __rtipc::__private::core::mem::offset_of!(Pose, heading)
                            as __rtipc::__private::core::primitive::u64,
                        size: __rtipc::__private::core::mem::size_of::<u64>()
                            as __rtipc::__private::core::primitive::u64,
                        ty: __rtipc::__private::field_type(
                            <u64 as __rtipc::__private::FieldKind>::TYPE,
                        ),
                        since: 2u32,
                    },
                ],
            ),
            appendable: true,
        };
        const FINGERPRINT: __rtipc::__private::core::primitive::u64 = __rtipc::__private::fingerprint(
            <Self as __rtipc::Object>::SCHEMA,
        );
        fn __rtipc_sealed(_: __rtipc::__private::Sealed) {}
    }
    #[automatically_derived]
    unsafe impl __rtipc::__private::FieldKind for Pose {
        const TYPE: &'static __rtipc::__private::FieldType = &__rtipc::__private::FieldType::Object(
            __rtipc::__private::Link::Static(<Self as __rtipc::Object>::SCHEMA),
        );
    }
    #[automatically_derived]
    unsafe impl __rtipc::__private::RegionField for Pose {
        const TYPE: &'static __rtipc::__private::FieldType = <Self as __rtipc::__private::FieldKind>::TYPE;
    }
    mod __rtipc_padding {
        struct Message {
            buf: [u8; 231usize],
            len: usize,
        }
        impl Message {
            const fn str(mut self, s: &str) -> Self {
                let s = s.as_bytes();
                let mut i = 0;
                while i < s.len() {
                    self.buf[self.len] = s[i];
                    self.len += 1;
                    i += 1;
                }
                self
            }
            const fn num(mut self, mut n: usize) -> Self {
                let mut digits = [0; 20];
                let mut count = 0;
                loop {
                    digits[count] = b'0' + (n % 10) as u8;
                    count += 1;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                while count > 0 {
                    count -= 1;
                    self.buf[self.len] = digits[count];
                    self.len += 1;
                }
                self
            }
            const fn as_str(&self) -> &str {
                match ::core::str::from_utf8(self.buf.split_at(self.len).0) {
                    ::core::result::Result::Ok(message) => message,
                    ::core::result::Result::Err(_) => "padding",
                }
            }
        }
        /// Panics if `end`, where a field ends, is not `next`, where the next one starts
        /// (or the struct ends), with a message of `name`, `place` and `fix`.
        #[track_caller]
        pub(super) const fn check(
            name: &str,
            end: usize,
            next: usize,
            place: &str,
            named: bool,
            fix: &str,
        ) {
            let bytes = next - end;
            if bytes == 0 {
                return;
            }
            let message = Message {
                buf: [0; 231usize],
                len: 0,
            }
                .str(name)
                .str(" has ")
                .num(bytes)
                .str(if bytes == 1 { " byte" } else { " bytes" })
                .str(" of padding ")
                .str(place)
                .str(" (at offset ")
                .num(end)
                .str("): insert `");
            let message = if named {
                message.str("_pad").num(end).str(": ")
            } else {
                message
            };
            let message = message.str("[u8; ").num(bytes).str("]` ").str(fix);
            ::core::panic!("{}", message.as_str())
        }
    }
    const _: () = __rtipc_padding::check(
        "`Pose`",
        __rtipc::__private::core::mem::offset_of!(Pose, x)
            + __rtipc::__private::core::mem::size_of::<u32>(),
        __rtipc::__private::core::mem::offset_of!(Pose, y),
        "before field `y`",
        true,
        "before `y`",
    );
    const _: () = __rtipc_padding::check(
        "`Pose`",
        __rtipc::__private::core::mem::offset_of!(Pose, y)
            + __rtipc::__private::core::mem::size_of::<u32>(),
        __rtipc::__private::core::mem::offset_of!(Pose, heading),
        "before field `heading`",
        true,
        "before `heading`",
    );
    const _: () = __rtipc_padding::check(
        "`Pose`",
        __rtipc::__private::core::mem::offset_of!(Pose, heading)
            + __rtipc::__private::core::mem::size_of::<u64>(),
        __rtipc::__private::core::mem::size_of::<Pose>(),
        "after the last field `heading`",
        true,
        "after `heading`",
    );
    const _: () = {
        let mut align = 1;
        if __rtipc::__private::core::mem::align_of::<u32>() > align {
            align = __rtipc::__private::core::mem::align_of::<u32>();
        }
        if __rtipc::__private::core::mem::align_of::<u32>() > align {
            align = __rtipc::__private::core::mem::align_of::<u32>();
        }
        __rtipc::__private::core::assert!(
            (__rtipc::__private::core::mem::offset_of!(Pose, y)
                + __rtipc::__private::core::mem::size_of::<u32>()) % align == 0,
            "revision 1 of `Pose` would end in padding: its last field `y` ends at a byte that is not a multiple of its alignment, so `heading` cannot be appended after it; add an explicit padding field to revision 1",
        );
    };
};
