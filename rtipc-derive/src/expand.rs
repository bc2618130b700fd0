//! Stage 3: emit the impls for a validated input.
//!
//! Everything is wrapped in `const _: () = { ... };` and every path is absolute, through
//! `::rtipc::__private`, so the output works in any module, even under
//! `#![no_implicit_prelude]`, and the user's crate needs only `rtipc` as a dependency.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput};

use crate::parse::{Input, Shape};
use crate::validate;

pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let Shape::Struct(fields) = &input.shape else {
        unreachable!("validation refuses enums and unions")
    };
    let ident = input.ident;
    let name = match &input.attrs.name {
        Some(name) => name.value(),
        None => ident.to_string().trim_start_matches("r#").to_owned(),
    };
    let id = match input.attrs.id {
        // Spanned on the macro call, not on the user's literal: the value is already checked,
        // and lints about how the literal is written belong to the attribute, not to this one.
        Some(id) => {
            let lit = Literal::u64_suffixed(id);
            quote!(#lit)
        }
        None => quote!(::rtipc::__private::id_from_name(#name)),
    };

    let field_schemas = fields.iter().map(|field| {
        let ty = field.ty;
        let member = &field.member;
        let field_name = &field.name;
        // Spanned on the type, so that a type that is not allowed is underlined by rustc,
        // with `FieldKind`'s `on_unimplemented` message.
        let kind = quote_spanned!(ty.span()=> <#ty as ::rtipc::__private::FieldKind>::TYPE);
        quote! {
            ::rtipc::__private::Field {
                name: ::rtipc::__private::Cow::Borrowed(#field_name),
                offset: ::rtipc::__private::core::mem::offset_of!(#ident, #member)
                    as ::rtipc::__private::core::primitive::u64,
                size: ::rtipc::__private::core::mem::size_of::<#ty>()
                    as ::rtipc::__private::core::primitive::u64,
                ty: ::rtipc::__private::field_type(#kind),
            }
        }
    });

    let field_sizes = fields.iter().map(|field| {
        let ty = field.ty;
        quote!(::rtipc::__private::core::mem::size_of::<#ty>())
    });
    let padding_message = format!(
        "`#[derive(Object)]` type `{ident}` has padding bytes; reorder the fields or add \
         explicit padding fields"
    );
    // Spanned on the struct's name: the padding belongs to the struct, not to one field.
    let no_padding = quote_spanned! {ident.span()=>
        const _: () = ::rtipc::__private::core::assert!(
            ::rtipc::__private::core::mem::size_of::<#ident>() == #(#field_sizes)+*,
            #padding_message
        );
    };

    let copy_impls = copy_impls(ident);
    quote! {
        const _: () = {
            #copy_impls

            // SAFETY: validation refused every construct that is not plain bytes; the
            // `FieldKind` bounds below prove that every field is plain bytes (valid for every
            // bit pattern, no padding, no interior mutability), and the assertion below proves
            // that the struct adds no padding between or after them. `SCHEMA` is built from
            // `offset_of!` and `size_of`, so it describes the layout exactly.
            #[automatically_derived]
            unsafe impl ::rtipc::Object for #ident {
                const ID: ::rtipc::__private::core::primitive::u64 = #id;
                const SCHEMA: &'static ::rtipc::__private::Schema = &::rtipc::__private::Schema {
                    name: ::rtipc::__private::Cow::Borrowed(#name),
                    size: ::rtipc::__private::core::mem::size_of::<#ident>()
                        as ::rtipc::__private::core::primitive::u64,
                    align: ::rtipc::__private::core::mem::align_of::<#ident>()
                        as ::rtipc::__private::core::primitive::u64,
                    fields: ::rtipc::__private::Cow::Borrowed(&[#(#field_schemas),*]),
                };
                const FINGERPRINT: ::rtipc::__private::core::primitive::u64 =
                    ::rtipc::__private::fingerprint(<Self as ::rtipc::Object>::SCHEMA);
                fn __rtipc_sealed(_: ::rtipc::__private::Sealed) {}
            }

            // SAFETY: as for `Object` above; `TYPE` links to `SCHEMA`.
            #[automatically_derived]
            unsafe impl ::rtipc::__private::FieldKind for #ident {
                const TYPE: &'static ::rtipc::__private::FieldType =
                    &::rtipc::__private::FieldType::Object(::rtipc::__private::Link::Static(
                        <Self as ::rtipc::Object>::SCHEMA,
                    ));
            }

            #no_padding
        };
    }
}

/// `Object` requires `Copy`, so the derive provides `Clone` and `Copy`.
fn copy_impls(ident: &syn::Ident) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl ::rtipc::__private::core::clone::Clone for #ident {
            #[inline]
            fn clone(&self) -> Self {
                *self
            }
        }

        #[automatically_derived]
        impl ::rtipc::__private::core::marker::Copy for #ident {}
    }
}

/// What to emit next to the errors when validation fails: an impl of `Object` that satisfies
/// the trait, so that user code naming `T: Object` does not add follow-on errors to the real
/// one. It is never used: the `compile_error!` beside it stops the build.
///
/// Emitted only for a struct without generics and without refused field types; for anything
/// else an impl would add errors of its own.
pub(crate) fn fallback(input: &DeriveInput) -> TokenStream {
    let Data::Struct(data) = &input.data else {
        return TokenStream::new();
    };
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return TokenStream::new();
    }
    // A field that is refused (a `&mut`, a pointer that is not `Send`) could make the impls fail.
    if data
        .fields
        .iter()
        .any(|field| !validate::type_problems(&field.ty).is_empty())
    {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let name = ident.to_string();
    let copy_impls = copy_impls(ident);
    quote! {
        const _: () = {
            #copy_impls

            // SAFETY: never used; the build fails on the `compile_error!` emitted beside it.
            #[automatically_derived]
            unsafe impl ::rtipc::Object for #ident {
                const ID: ::rtipc::__private::core::primitive::u64 = 0;
                const SCHEMA: &'static ::rtipc::__private::Schema = &::rtipc::__private::Schema {
                    name: ::rtipc::__private::Cow::Borrowed(#name),
                    size: 0,
                    align: 1,
                    fields: ::rtipc::__private::Cow::Borrowed(&[]),
                };
                const FINGERPRINT: ::rtipc::__private::core::primitive::u64 = 0;
                fn __rtipc_sealed(_: ::rtipc::__private::Sealed) {}
            }

            // SAFETY: never used, as above.
            #[automatically_derived]
            unsafe impl ::rtipc::__private::FieldKind for #ident {
                const TYPE: &'static ::rtipc::__private::FieldType =
                    &::rtipc::__private::FieldType::Object(::rtipc::__private::Link::Static(
                        <Self as ::rtipc::Object>::SCHEMA,
                    ));
            }
        };
    }
}
