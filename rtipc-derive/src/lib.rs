//! `#[derive(Object)]` for rtipc. Use it through the `rtipc` crate, which re-exports it and
//! documents it: see `rtipc::Object`.
//!
//! The derive works in three stages, one module each: `parse` reads the input into a small
//! model, `validate` refuses everything that cannot be an object (reporting every problem at
//! once, each spanned on its token), and `expand` emits the impls together with the trait
//! bounds and `const` assertions through which the compiler proves the rest.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

// Documented on its re-export, `rtipc::Object`, where the examples can use it.
#[proc_macro_derive(Object, attributes(rtipc))]
pub fn derive_object(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    let fallback = expand::fallback(&input);
    match derive(input) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(fallback);
            tokens.into()
        }
    }
}

/// The whole derive: parse, validate, expand.
fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = parse::Errors::default();
    let model = parse::parse(&input, &mut errors);
    validate::validate(&model, &mut errors);
    errors.finish()?;
    Ok(expand::expand(&model))
}

#[cfg(test)]
mod tests {
    use super::derive;
    use syn::parse_quote;

    /// The messages of every error `derive` reports for `input`, in order.
    fn errors(input: syn::DeriveInput) -> Vec<String> {
        match derive(input) {
            Ok(_) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_a_plain_struct() {
        let tokens = derive(parse_quote! {
            #[repr(C, align(8))]
            #[rtipc(id = 7)]
            #[rtipc(name = "Renamed")]
            struct Pose { x: f32, y: [f32; 1], r#type: u64 }
        })
        .unwrap()
        .to_string();
        assert!(tokens.contains("unsafe impl :: rtipc :: Object for Pose"));
        assert!(tokens.contains("7u64"));
        assert!(tokens.contains("\"Renamed\""));
        assert!(tokens.contains("\"type\""));
        assert!(!tokens.contains("id_from_name"));
    }

    #[test]
    fn default_id_hashes_the_type_name() {
        let tokens = derive(parse_quote! {
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
                "unknown key `colour` in `#[rtipc(...)]`; expected `id` or `name`",
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
                "expected `#[rtipc(id = <integer>, name = \"<name>\")]`",
                "`#[rtipc(...)]` is not allowed on a field; put it on the struct",
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
}
