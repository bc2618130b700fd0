//! Unit tests of the derive: the errors it reports, called directly on a `DeriveInput`.

use super::derive;
use syn::parse_quote;

/// The messages of every error `derive` reports for `input`, in order.
fn errors(input: syn::DeriveInput) -> Vec<String> {
    match derive(&input) {
        Ok(_) => Vec::new(),
        Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn accepts_a_plain_struct() {
    let tokens = derive(&parse_quote! {
        #[repr(C, align(8))]
        #[rtipc(id = 7)]
        #[rtipc(name = "Renamed")]
        struct Pose { x: f32, y: [f32; 1], r#type: u64 }
    })
    .unwrap()
    .to_string();
    assert!(tokens.contains("use :: rtipc as __rtipc ;"));
    assert!(tokens.contains("unsafe impl __rtipc :: Object for Pose"));
    assert!(tokens.contains("7u64"));
    assert!(tokens.contains("\"Renamed\""));
    assert!(tokens.contains("\"type\""));
    assert!(!tokens.contains("id_from_name"));
}

#[test]
fn default_id_hashes_the_type_name() {
    let tokens = derive(&parse_quote! {
        #[repr(transparent)]
        struct Meters(f64);
    })
    .unwrap()
    .to_string();
    assert!(tokens.contains("id_from_name (\"Meters\")"));
    assert!(tokens.contains("offset_of ! (Meters , 0)"));
}

#[test]
fn missing_repr() {
    assert_eq!(
        errors(parse_quote!(
            struct A {
                x: u32,
            }
        )),
        [
            "`#[derive(Object)]` requires `#[repr(C)]` or `#[repr(transparent)]`: the default \
          representation may reorder fields"
        ]
    );
}

#[test]
fn refused_repr_items() {
    assert_eq!(
        errors(parse_quote! {
            #[repr(C, packed)]
            struct A { x: u32 }
        }),
        [
            "`#[derive(Object)]` does not allow `#[repr(packed)]`: fields must be aligned; \
          remove it and reorder the fields or add explicit padding fields"
        ]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(u8)]
            struct A { x: u8 }
        }),
        [
            "`#[repr(u8)]` is not allowed here; `#[derive(Object)]` requires `#[repr(C)]` or \
          `#[repr(transparent)]`"
        ]
    );
}

#[test]
fn enums_and_unions() {
    let enum_errors = errors(parse_quote! {
        #[repr(u8)]
        enum E { A }
    });
    assert_eq!(enum_errors.len(), 1);
    assert!(enum_errors[0].starts_with("`#[derive(Object)]` does not support enums"));
    let union_errors = errors(parse_quote! {
        #[repr(C)]
        union U { a: u32 }
    });
    assert_eq!(union_errors.len(), 1);
    assert!(union_errors[0].starts_with("`#[derive(Object)]` does not support unions"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let all = errors(parse_quote! {
        #[rtipc(id = "x", colour = 3)]
        #[rtipc(id = 1)]
        struct A<'a, T, const N: usize> {
            a: bool,
            b: [[usize; 2]; N],
            c: &'a T,
            d: *const u8,
            e: char,
            f: ::core::primitive::isize,
        }
    });
    let expected = [
        "`#[derive(Object)]` does not support lifetime parameters",
        "`#[derive(Object)]` does not support type parameters",
        "`#[derive(Object)]` does not support const parameters",
        "`#[derive(Object)]` requires `#[repr(C)]`",
        "`bool` is not allowed",
        "`usize` is not allowed",
        "references are not allowed",
        "raw pointers are not allowed",
        "`char` is not allowed",
        "`isize` is not allowed",
    ];
    // Attribute errors come first, from parsing.
    assert_eq!(
        all[..3],
        [
            "`id` must be an integer literal, such as `id = 42`",
            "unknown key `colour` in `#[rtipc(...)]`; expected `id`, `name`, `crate`, `region` or `appendable`",
            "duplicate key `id` in `#[rtipc(...)]`; give it once",
        ]
    );
    assert_eq!(all.len(), 3 + expected.len(), "{all:#?}");
    for (message, start) in all[3..].iter().zip(expected) {
        assert!(
            message.starts_with(start),
            "{message:?} should start with {start:?}"
        );
    }
}

#[test]
fn attribute_values() {
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(id = 1 + 2, name = Foo)]
            struct A { x: u32 }
        }),
        [
            "`id` must be an integer literal, such as `id = 42`",
            "`name` must be a string literal, such as `name = \"JointState\"`",
        ]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(id = 18446744073709551616)]
            struct A { x: u32 }
        }),
        ["`id` must fit in a `u64`"]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(id = 5u32)]
            struct A { x: u32 }
        }),
        ["`id` is a `u64`: write it without a suffix or with `u64`, not `u32`"]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(name = "", id)]
            struct A { x: u32 }
        }),
        ["`name` must not be empty", "expected `id = 42`"]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc]
            struct A { #[rtipc(id = 1)] x: u32 }
        }),
        [
            "expected `#[rtipc(since = <revision>)]`, the only key a field takes (the others go \
             on the struct)",
            "expected `#[rtipc(id = <integer>, name = \"<name>\", crate = <path>)]`",
        ]
    );
}

#[test]
fn no_fields() {
    for input in [
        parse_quote!(
            #[repr(C)]
            struct A;
        ),
        parse_quote!(
            #[repr(C)]
            struct A {}
        ),
    ] {
        assert_eq!(
            errors(input),
            ["`#[derive(Object)]` requires at least one field"]
        );
    }
}

/// The `use` that names rtipc in the expansion of `input`.
fn crate_import(input: syn::DeriveInput) -> String {
    let tokens = derive(&input).unwrap().to_string();
    let start = tokens.find("use ").expect("an import");
    let end = start + tokens[start..].find(';').unwrap();
    tokens[start..=end].to_owned()
}

#[test]
fn crate_path() {
    assert_eq!(
        crate_import(parse_quote! {
            #[repr(C)]
            struct A { x: u32 }
        }),
        "use :: rtipc as __rtipc ;"
    );
    assert_eq!(
        crate_import(parse_quote! {
            #[repr(C)]
            #[rtipc(crate = re::inner)]
            struct A { x: u32 }
        }),
        "use re :: inner as __rtipc ;"
    );
    assert_eq!(
        crate_import(parse_quote! {
            #[repr(C)]
            #[rtipc(id = 1, crate = "::my_crate::rtipc")]
            struct A { x: u32 }
        }),
        "use :: my_crate :: rtipc as __rtipc ;"
    );
    assert_eq!(
        crate_import(parse_quote! {
            #[repr(C)]
            #[rtipc(crate = crate::reexports::rtipc)]
            struct A { x: u32 }
        }),
        "use crate :: reexports :: rtipc as __rtipc ;"
    );
}

#[test]
fn malformed_crate_paths() {
    const NOT_A_PATH: &str = "`crate` must be a path to the rtipc crate, such as \
                              `crate = my_crate::rtipc` or `crate = \"my_crate::rtipc\"`";
    for input in [
        parse_quote! {
            #[repr(C)]
            #[rtipc(crate = 42)]
            struct A { x: u32 }
        },
        parse_quote! {
            #[repr(C)]
            #[rtipc(crate = "not a path")]
            struct A { x: u32 }
        },
        parse_quote! {
            #[repr(C)]
            #[rtipc(crate = rtipc::Vec<u8>)]
            struct A { x: u32 }
        },
        parse_quote! {
            #[repr(C)]
            #[rtipc(crate = [rtipc])]
            struct A { x: u32 }
        },
    ] {
        assert_eq!(errors(input), [NOT_A_PATH]);
    }
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(crate, crate = ::rtipc)]
            struct A { x: u32 }
        }),
        [
            "expected `crate = my_crate::rtipc`",
            "duplicate key `crate` in `#[rtipc(...)]`; give it once",
        ]
    );
}

#[test]
fn values_of_any_shape_get_the_derive_messages() {
    // Values are not parsed as expressions, so that syn's default features suffice and no
    // message of syn's about its features reaches the user.
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(id = [1], name = if x { "a" } else { "b" }, id(2))]
            struct A { x: u32 }
        }),
        [
            "`id` must be an integer literal, such as `id = 42`",
            "`name` must be a string literal, such as `name = \"JointState\"`",
            "duplicate key `id` in `#[rtipc(...)]`; give it once",
        ]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(name(Foo), id = x::y, r#type = 3, a::b = 4)]
            struct A { x: u32 }
        }),
        [
            "expected `name = \"JointState\"`",
            "`id` must be an integer literal, such as `id = 42`",
            "unknown key `r#type` in `#[rtipc(...)]`; expected `id`, `name`, `crate`, `region` or `appendable`",
            "unknown key `a::b` in `#[rtipc(...)]`; expected `id`, `name`, `crate`, `region` or `appendable`",
        ]
    );
}

#[test]
fn clone_and_copy_derived_after_object() {
    assert_eq!(
        errors(parse_quote! {
            #[derive(Debug, Clone)]
            #[derive(::core::marker::Copy, PartialEq)]
            #[repr(C)]
            struct A { x: u32 }
        }),
        [
            "`#[derive(Object)]` already implements `Clone` and `Copy`; remove `Clone` from \
             this `#[derive]`",
            "`#[derive(Object)]` already implements `Clone` and `Copy`; remove `Copy` from \
             this `#[derive]`",
        ]
    );
    // Other derives are left alone.
    assert!(errors(parse_quote! {
        #[derive(Debug, PartialEq)]
        #[repr(C)]
        struct A { x: u32 }
    })
    .is_empty());
}

#[test]
fn field_kind_bounds_only_for_types_that_are_not_primitives() {
    let tokens = derive(&parse_quote! {
        #[repr(C)]
        struct A {
            a: u64,
            b: [[core::primitive::f32; 2]; 3],
            c: Inner,
            d: [Inner; 2],
            e: Inner,
        }
    })
    .unwrap()
    .to_string();
    let bound = |ty: &str| format!("for < 'a > {ty} : __rtipc :: __private :: FieldKind");
    assert!(tokens.contains(&bound("Inner")));
    assert!(tokens.contains(&bound("[Inner ; 2]")));
    assert!(!tokens.contains(&bound("u64")));
    assert!(!tokens.contains(&bound("[[core :: primitive :: f32 ; 2] ; 3]")));
    // One bound per type, in every impl: `Clone`, `Copy`, `Object`, `FieldKind` and
    // `RegionField`.
    assert_eq!(tokens.matches(&bound("Inner")).count(), 5);
    // One check per field.
    let check = "const _ : & __rtipc :: __private :: FieldType = < Inner as";
    assert_eq!(tokens.matches(check).count(), 2);
}

#[test]
fn revisions() {
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            struct A { x: u64, #[rtipc(since = 2)] y: u64 }
        }),
        [
            "`since` needs `#[rtipc(appendable)]` on the struct: only an appendable type has \
          revisions"
        ]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(appendable)]
            struct A { x: u64, #[rtipc(since = 2)] y: u64, z: u64 }
        }),
        [
            "field `z` is revision 1 but follows `y` of revision 2: revisions only append fields \
          at the end, so `since` never decreases (a field without `since` is revision 1)"
        ]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(appendable)]
            struct A { #[rtipc(since = 2)] x: u64 }
        }),
        [
            "the first field belongs to revision 1: a later revision appends fields after those \
          of revision 1, so `since` cannot be on the first field"
        ]
    );
    assert_eq!(
        errors(parse_quote! {
            #[repr(C)]
            #[rtipc(appendable = 1, region)]
            struct A { x: u64, #[rtipc(since = 0)] y: u64, #[rtipc(since = 2, since = 3)] z: u64 }
        }),
        [
            "`since` is the revision that added the field: an integer from 1, such as \
             `since = 2`",
            "duplicate key `since` in `#[rtipc(...)]`; give it once",
            "`appendable` takes no value: write `#[rtipc(appendable)]`",
            "`appendable` does not apply to a `region` type: every build maps a region whole",
        ]
    );
    assert!(errors(parse_quote! {
        #[repr(C)]
        #[rtipc(appendable)]
        struct A { x: u64, #[rtipc(since = 2)] y: u64, #[rtipc(since = 2)] z: u64, #[rtipc(since = 5)] w: u64 }
    })
    .is_empty());
}
