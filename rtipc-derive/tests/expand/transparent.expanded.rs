#[allow(
    unused_lifetimes,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::restriction
)]
const _: () = {
    use ::renamed_rtipc as __rtipc;
    macro_rules! derive_Object_already_implements_Clone_and_Copy__remove_them_from_the_derive_list {
        () => {
            #[automatically_derived] impl __rtipc::__private::core::clone::Clone for
            Meters { #[inline] fn clone(& self) -> Self { * self } }
            #[automatically_derived] impl __rtipc::__private::core::marker::Copy for
            Meters {}
        };
    }
    derive_Object_already_implements_Clone_and_Copy__remove_them_from_the_derive_list!();
    #[automatically_derived]
    unsafe impl __rtipc::Object for Meters {
        const ID: __rtipc::__private::core::primitive::u64 = __rtipc::__private::id_from_name(
            "Meters",
        );
        const SCHEMA: &'static __rtipc::__private::Schema = &__rtipc::__private::Schema {
            name: __rtipc::__private::Cow::Borrowed("Meters"),
            size: __rtipc::__private::core::mem::size_of::<Meters>()
                as __rtipc::__private::core::primitive::u64,
            align: __rtipc::__private::core::mem::align_of::<Meters>()
                as __rtipc::__private::core::primitive::u64,
            fields: __rtipc::__private::Cow::Borrowed(
                &[
                    __rtipc::__private::Field {
                        name: __rtipc::__private::Cow::Borrowed("0"),
                        offset: __rtipc::__private::core::mem::offset_of!(Meters, 0)
                            as __rtipc::__private::core::primitive::u64,
                        size: __rtipc::__private::core::mem::size_of::<f64>()
                            as __rtipc::__private::core::primitive::u64,
                        ty: __rtipc::__private::field_type(
                            <f64 as __rtipc::__private::FieldKind>::TYPE,
                        ),
                        since: 1u32,
                    },
                ],
            ),
            appendable: false,
        };
        const FINGERPRINT: __rtipc::__private::core::primitive::u64 = __rtipc::__private::fingerprint(
            <Self as __rtipc::Object>::SCHEMA,
        );
        fn __rtipc_sealed(_: __rtipc::__private::Sealed) {}
    }
    #[automatically_derived]
    unsafe impl __rtipc::__private::FieldKind for Meters {
        const TYPE: &'static __rtipc::__private::FieldType = &__rtipc::__private::FieldType::Object(
            __rtipc::__private::Link::Static(<Self as __rtipc::Object>::SCHEMA),
        );
    }
    #[automatically_derived]
    unsafe impl __rtipc::__private::RegionField for Meters {
        const TYPE: &'static __rtipc::__private::FieldType = <Self as __rtipc::__private::FieldKind>::TYPE;
    }
    const _: () = __rtipc::__private::core::assert!(
        __rtipc::__private::core::mem::size_of::<Meters>()
            == __rtipc::__private::core::mem::size_of::<f64>(),
        "`#[derive(Object)]` type `Meters` has padding bytes; add explicit padding fields",
    );
};
