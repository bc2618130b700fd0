//! Stage 3: emit the impls for a validated input.
//!
//! Everything is wrapped in `const _: () = { ... };`, which imports the rtipc crate once as
//! `__rtipc` (from `::rtipc`, or the path given by `#[rtipc(crate = ...)]`), and every other
//! path goes through it and its `__private` module, so the output works in any module, even
//! under `#![no_implicit_prelude]`, and the user's crate needs only `rtipc` as a dependency.
//!
//! Besides the impls, the output makes the compiler prove what the derive cannot see:
//!
//! - every field type implements `FieldKind`, checked once per field that is not a fixed-width
//!   primitive (or an array of them), spanned on its type. The impls carry the same bounds,
//!   written `for<'a> T: FieldKind + Send + Sync` so that rustc does not check them eagerly: a
//!   field type that is not allowed then makes the impls not apply, instead of failing them
//!   with errors of their own (such as "the trait `Copy` cannot be implemented for this type"),
//!   and the check reports it with `FieldKind`'s message.
//! - there is no padding: one `const` check per gap where padding could be, spanned on the
//!   field after it (or on the last field, for the tail), which panics at compile time with a
//!   message naming the struct, the field, the offset, the number of bytes and the field to
//!   insert.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{DeriveInput, Member, Type};

use crate::parse::{self, CopyTrait, Field, Input, ReprKind, Shape};
use crate::validate;

/// The name of the `macro_rules!` that emits the `Clone` and `Copy` impls.
///
/// A derive macro cannot see `Clone` or `Copy` in the same `#[derive(...)]` list, and rustc's
/// error for the conflict (E0119) cannot be changed; but it ends with "this error originates in
/// the macro `...`", naming the innermost macro, so this name is the hint.
const COPY_IMPLS_MACRO: &str =
    "derive_Object_already_implements_Clone_and_Copy__remove_them_from_the_derive_list";

/// The lint levels of the output, whose lints are not the user's to fix: the unused lifetime of
/// the bounds (see [`where_clause`]), and clippy's, restriction lints included, such as those
/// about the arithmetic of the padding checks.
fn lints() -> TokenStream {
    quote! {
        #[allow(
            unused_lifetimes,
            clippy::all,
            clippy::pedantic,
            clippy::nursery,
            clippy::restriction
        )]
    }
}

pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let Shape::Struct(fields) = &input.shape else {
        unreachable!("validation refuses enums and unions")
    };
    if input.attrs.region.is_some() {
        return expand_region(input, fields);
    }
    let import = import_crate(input);
    let krate = quote!(__rtipc);
    let private = quote!(#krate::__private);
    let ident = input.ident;
    let (name, id) = name_and_id(input, &private);
    let field_schemas = field_schemas(&private, ident, fields, &quote!(FieldKind));

    let field_kind_checks = field_kind_checks(&private, fields);
    let where_clause = where_clause(&private, fields);
    let copy_impls = copy_impls(&private, ident, &where_clause, &[]);
    let no_padding = no_padding(input, &private, fields);
    let revisions = revision_checks(input, &private, fields);
    let appendable = input.attrs.appendable.is_some();
    let lints = lints();
    quote! {
        #lints
        const _: () = {
            #import

            #field_kind_checks

            #copy_impls

            // SAFETY: validation refused every construct that is not plain bytes; the
            // `FieldKind` bounds prove that every field is plain bytes (valid for every bit
            // pattern, no padding, no interior mutability), and the checks below prove that the
            // struct adds no padding between or after them. `SCHEMA` is built from `offset_of!`
            // and `size_of`, so it describes the layout exactly.
            #[automatically_derived]
            unsafe impl #krate::Object for #ident #where_clause {
                const ID: #private::core::primitive::u64 = #id;
                const SCHEMA: &'static #private::Schema = &#private::Schema {
                    name: #private::Cow::Borrowed(#name),
                    size: #private::core::mem::size_of::<#ident>()
                        as #private::core::primitive::u64,
                    align: #private::core::mem::align_of::<#ident>()
                        as #private::core::primitive::u64,
                    fields: #private::Cow::Borrowed(&[#(#field_schemas),*]),
                    appendable: #appendable,
                };
                const FINGERPRINT: #private::core::primitive::u64 =
                    #private::fingerprint(<Self as #krate::Object>::SCHEMA);
                fn __rtipc_sealed(_: #private::Sealed) {}
            }

            // SAFETY: as for `Object` above; `TYPE` links to `SCHEMA`.
            #[automatically_derived]
            unsafe impl #private::FieldKind for #ident #where_clause {
                const TYPE: &'static #private::FieldType =
                    &#private::FieldType::Object(#private::Link::Static(
                        <Self as #krate::Object>::SCHEMA,
                    ));
            }

            // SAFETY: as for `FieldKind`: an object may be a field of a region type too.
            #[automatically_derived]
            unsafe impl #private::RegionField for #ident #where_clause {
                const TYPE: &'static #private::FieldType =
                    <Self as #private::FieldKind>::TYPE;
            }

            #no_padding

            #revisions
        };
    }
}

/// For an appendable type, a check at each revision's end: the fields of every earlier
/// revision must end where their alignment allows the struct to end, so that the earlier
/// revision had no padding at its end and its size is where the next revision's fields start.
/// (Padding between fields, an appended field aligned more strictly than the end before it,
/// is refused by the padding checks of the whole struct.)
fn revision_checks(input: &Input<'_>, private: &TokenStream, fields: &[Field<'_>]) -> TokenStream {
    if input.attrs.appendable.is_none() {
        return TokenStream::new();
    }
    let core = quote!(#private::core);
    let ident = input.ident;
    let since = |f: &Field<'_>| f.since.map_or(1, |(n, _)| n);
    let mut checks = Vec::new();
    for index in 1..fields.len() {
        let (last, next) = (&fields[index - 1], &fields[index]);
        if since(next) <= since(last) {
            continue;
        }
        let end = field_end(&core, ident, last);
        let aligns: Vec<TokenStream> = fields[..index]
            .iter()
            .map(|f| {
                let ty = f.ty;
                quote!(#core::mem::align_of::<#ty>())
            })
            .collect();
        let message = format!(
            "revision {} of `{}` would end in padding: its last field `{}` ends at a byte that \
             is not a multiple of its alignment, so `{}` cannot be appended after it; add an \
             explicit padding field to revision {}",
            since(last),
            unraw(ident),
            last.name,
            next.name,
            since(last)
        );
        let span = next.since.map_or_else(|| next.span(), |(_, s)| s);
        checks.push(quote_spanned! {span=>
            const _: () = {
                let mut align = 1;
                #(
                    if #aligns > align {
                        align = #aligns;
                    }
                )*
                #core::assert!((#end) % align == 0, #message);
            };
        });
    }
    quote!(#(#checks)*)
}

/// The impls for a `#[rtipc(region)]` type: `Region` and `RegionField` (so that region types
/// nest), with fields bounded by `RegionField`, which the atomics implement, and no `Clone` or
/// `Copy` (a region is shared in place, never copied).
fn expand_region(input: &Input<'_>, fields: &[Field<'_>]) -> TokenStream {
    let import = import_crate(input);
    let krate = quote!(__rtipc);
    let private = quote!(#krate::__private);
    let ident = input.ident;
    let (name, id) = name_and_id(input, &private);
    let trait_name = quote!(RegionField);
    let field_schemas = field_schemas(&private, ident, fields, &trait_name);
    let checks = field_checks(&private, fields, &trait_name);
    let where_clause = where_clause_for(&private, fields, &trait_name);
    let no_padding = no_padding(input, &private, fields);
    let lints = lints();
    quote! {
        #lints
        const _: () = {
            #import

            #checks

            // SAFETY: validation refused every construct that is not plain bytes or rtipc's
            // atomics; the `RegionField` bounds prove that every field is one of them (valid for
            // every bit pattern, no padding, interior mutability only through atomics), and the
            // checks below prove that the struct adds no padding. `SCHEMA` is built from
            // `offset_of!` and `size_of`, so it describes the layout exactly.
            #[automatically_derived]
            unsafe impl #krate::Region for #ident #where_clause {
                const ID: #private::core::primitive::u64 = #id;
                const SCHEMA: &'static #private::Schema = &#private::Schema {
                    name: #private::Cow::Borrowed(#name),
                    size: #private::core::mem::size_of::<#ident>()
                        as #private::core::primitive::u64,
                    align: #private::core::mem::align_of::<#ident>()
                        as #private::core::primitive::u64,
                    fields: #private::Cow::Borrowed(&[#(#field_schemas),*]),
                    appendable: false,
                };
                const FINGERPRINT: #private::core::primitive::u64 =
                    #private::fingerprint(<Self as #krate::Region>::SCHEMA);
                fn __rtipc_sealed(_: #private::Sealed) {}
            }

            // SAFETY: as for `Region` above; `TYPE` links to `SCHEMA`.
            #[automatically_derived]
            unsafe impl #private::RegionField for #ident #where_clause {
                const TYPE: &'static #private::FieldType =
                    &#private::FieldType::Object(#private::Link::Static(
                        <Self as #krate::Region>::SCHEMA,
                    ));
            }

            #no_padding
        };
    }
}

/// The type's schema name (`#[rtipc(name = ..)]` or its own) and its id
/// (`#[rtipc(id = ..)]` or derived from the name).
fn name_and_id(input: &Input<'_>, private: &TokenStream) -> (String, TokenStream) {
    let name = match &input.attrs.name {
        Some(name) => name.value(),
        None => unraw(input.ident),
    };
    let id = match input.attrs.id {
        // Spanned on the macro call, not on the user's literal: the value is already checked,
        // and lints about how the literal is written belong to the attribute, not to this one.
        Some(id) => {
            let lit = Literal::u64_suffixed(id);
            quote!(#lit)
        }
        None => quote!(#private::id_from_name(#name)),
    };
    (name, id)
}

/// The schema of each field, its type taken from `trait_name`'s `TYPE`.
fn field_schemas(
    private: &TokenStream,
    ident: &Ident,
    fields: &[Field<'_>],
    trait_name: &TokenStream,
) -> Vec<TokenStream> {
    fields
        .iter()
        .map(|field| {
            let ty = field.ty;
            let member = &field.member;
            let field_name = &field.name;
            let since = field.since.map_or(1, |(n, _)| n);
            quote! {
                #private::Field {
                    name: #private::Cow::Borrowed(#field_name),
                    offset: #private::core::mem::offset_of!(#ident, #member)
                        as #private::core::primitive::u64,
                    size: #private::core::mem::size_of::<#ty>()
                        as #private::core::primitive::u64,
                    ty: #private::field_type(<#ty as #private::#trait_name>::TYPE),
                    since: #since,
                }
            }
        })
        .collect()
}

/// What to emit next to the errors when validation fails: an impl of `Object` that satisfies
/// the trait, so that user code naming `T: Object` does not add follow-on errors to the real
/// one. It is never used: the `compile_error!` beside it stops the build. The `FieldKind`
/// checks of the fields come with it, so that a field type that is not allowed is reported
/// together with the other problems.
///
/// Emitted only for a struct without generics and without refused field types, and when the
/// path of rtipc is known; for anything else an impl would add errors of its own.
pub(crate) fn fallback(input: &DeriveInput) -> TokenStream {
    let model = parse::parse(input, &mut parse::Errors::default());
    let Shape::Struct(fields) = &model.shape else {
        return TokenStream::new();
    };
    if !input.generics.params.is_empty()
        || input.generics.where_clause.is_some()
        || model.attrs.krate_malformed
        || model.attrs.region.is_some()
    {
        return TokenStream::new();
    }
    // A field that is refused (a `&mut`, a pointer that is not `Send`) could make the impls fail.
    if fields
        .iter()
        .any(|field| !validate::type_problems(field.ty).is_empty())
    {
        return TokenStream::new();
    }
    let import = import_crate(&model);
    let krate = quote!(__rtipc);
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let name = unraw(ident);
    let field_kind_checks = field_kind_checks(&private, fields);
    // `Clone` or `Copy` derived in a later `#[derive]` is reported; implementing it here too
    // would add a conflict to that error.
    let derived: Vec<CopyTrait> = model.siblings.iter().map(|s| s.which).collect();
    let where_clause = where_clause(&private, fields);
    let copy_impls = copy_impls(&private, ident, &where_clause, &derived);
    let lints = lints();
    quote! {
        #lints
        const _: () = {
            #import

            #field_kind_checks

            #copy_impls

            // SAFETY: never used; the build fails on the `compile_error!` emitted beside it.
            #[automatically_derived]
            unsafe impl #krate::Object for #ident #where_clause {
                const ID: #private::core::primitive::u64 = 0;
                const SCHEMA: &'static #private::Schema = &#private::Schema {
                    name: #private::Cow::Borrowed(#name),
                    size: 0,
                    align: 1,
                    fields: #private::Cow::Borrowed(&[]),
                    appendable: false,
                };
                const FINGERPRINT: #private::core::primitive::u64 = 0;
                fn __rtipc_sealed(_: #private::Sealed) {}
            }

            // SAFETY: never used, as above.
            #[automatically_derived]
            unsafe impl #private::FieldKind for #ident #where_clause {
                const TYPE: &'static #private::FieldType =
                    &#private::FieldType::Object(#private::Link::Static(
                        <Self as #krate::Object>::SCHEMA,
                    ));
            }
        };
    }
}

/// `use <rtipc> as __rtipc;`, with the path of `crate = ...` or `::rtipc`: the rest of the
/// output names rtipc as `__rtipc`. If the path does not resolve, rustc reports it once, on the
/// import, and not on each use.
fn import_crate(input: &Input<'_>) -> TokenStream {
    match &input.attrs.krate {
        // Spanned on the path, where rustc reports it if it does not resolve.
        Some(path) => quote_spanned!(path.span()=> use #path as __rtipc;),
        None => quote! { use ::rtipc as __rtipc; },
    }
}

/// An identifier as the user reads it: `r#type` is `type`.
fn unraw(ident: &Ident) -> String {
    ident.to_string().trim_start_matches("r#").to_owned()
}

/// The fields whose `FieldKind` impl the compiler must find: all but the fixed-width primitives
/// and arrays of them, which always have one.
fn checked_fields<'f, 'a>(fields: &'f [Field<'a>]) -> impl Iterator<Item = &'f Field<'a>> {
    fields
        .iter()
        .filter(|field| !validate::is_primitive_or_array(field.ty))
}

/// One check per field whose type must implement `FieldKind`, spanned on the type, so that a
/// type that is not allowed is underlined with `FieldKind`'s `on_unimplemented` message.
fn field_kind_checks(private: &TokenStream, fields: &[Field<'_>]) -> TokenStream {
    field_checks(private, fields, &quote!(FieldKind))
}

/// [`field_kind_checks`] against `trait_name` (`FieldKind`, or `RegionField` for a region).
fn field_checks(
    private: &TokenStream,
    fields: &[Field<'_>],
    trait_name: &TokenStream,
) -> TokenStream {
    checked_fields(fields)
        .map(|field| {
            let ty = field.ty;
            quote_spanned! {ty.span()=>
                const _: &#private::FieldType = <#ty as #private::#trait_name>::TYPE;
            }
        })
        .collect()
}

/// The `where` clause of every impl: each checked field type implements `FieldKind`, `Send`
/// and `Sync`, each type once. (`Object` requires `Send` and `Sync`; every `FieldKind` type has
/// them, but the compiler does not know it.)
///
/// The bounds are higher-ranked over an unused lifetime, so that rustc treats them as ordinary
/// bounds instead of "trivial" ones that it checks, and refuses, when they do not hold: such an
/// impl does not apply, and the check from [`field_kind_checks`] reports the field.
fn where_clause(private: &TokenStream, fields: &[Field<'_>]) -> TokenStream {
    where_clause_for(private, fields, &quote!(FieldKind))
}

/// [`where_clause`] with `trait_name` (`FieldKind`, or `RegionField` for a region).
fn where_clause_for(
    private: &TokenStream,
    fields: &[Field<'_>],
    trait_name: &TokenStream,
) -> TokenStream {
    let mut types: Vec<(String, &Type)> = Vec::new();
    for field in checked_fields(fields) {
        let key = field.ty.to_token_stream().to_string();
        if !types.iter().any(|(seen, _)| *seen == key) {
            types.push((key, field.ty));
        }
    }
    if types.is_empty() {
        return TokenStream::new();
    }
    let types = types.into_iter().map(|(_, ty)| ty);
    quote! {
        where #(for<'a> #types: #private::#trait_name
            + #private::core::marker::Send
            + #private::core::marker::Sync),*
    }
}

/// `Object` requires `Copy`, so the derive provides `Clone` and `Copy`, except those listed in
/// `skip`. They are emitted by a local `macro_rules!` whose name explains a conflict with a
/// derived `Clone` or `Copy`: see [`COPY_IMPLS_MACRO`].
fn copy_impls(
    private: &TokenStream,
    ident: &Ident,
    where_clause: &TokenStream,
    skip: &[CopyTrait],
) -> TokenStream {
    let clone = (!skip.contains(&CopyTrait::Clone)).then(|| {
        quote! {
            #[automatically_derived]
            impl #private::core::clone::Clone for #ident #where_clause {
                #[inline]
                fn clone(&self) -> Self {
                    *self
                }
            }
        }
    });
    let copy = (!skip.contains(&CopyTrait::Copy)).then(|| {
        quote! {
            #[automatically_derived]
            impl #private::core::marker::Copy for #ident #where_clause {}
        }
    });
    if clone.is_none() && copy.is_none() {
        return TokenStream::new();
    }
    let name = Ident::new(COPY_IMPLS_MACRO, Span::call_site());
    quote! {
        macro_rules! #name {
            () => {
                #clone
                #copy
            };
        }
        #name!();
    }
}

/// The checks that the struct has no padding.
///
/// For `#[repr(C)]`, where the fields are laid out in order, one check per field after the
/// first (the gap between the end of the field before it and its offset) and one for the tail
/// (the gap between the end of the last field and the size). Each calls a generated `const fn`
/// that panics at compile time if there is a gap, with a message that it writes with the
/// numbers that only the compiler knows.
///
/// `#[repr(transparent)]` has the size of its one field that is not zero-sized, so it cannot
/// have padding; a plain assertion keeps that proven.
fn no_padding(input: &Input<'_>, private: &TokenStream, fields: &[Field<'_>]) -> TokenStream {
    let ident = input.ident;
    let core = quote!(#private::core);
    let is_c = input
        .repr
        .iter()
        .any(|item| matches!(item.kind, ReprKind::C));
    if !is_c {
        let sizes = fields.iter().map(|field| {
            let ty = field.ty;
            quote!(#core::mem::size_of::<#ty>())
        });
        let message = format!(
            "`#[derive(Object)]` type `{}` has padding bytes; add explicit padding fields",
            unraw(ident)
        );
        return quote_spanned! {ident.span()=>
            const _: () = #core::assert!(
                #core::mem::size_of::<#ident>() == #(#sizes)+*,
                #message
            );
        };
    }

    let struct_name = format!("`{}`", unraw(ident));
    let mut longest = 0;
    let mut checks = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let end = field_end(&core, ident, field);
        let (next, reported, gap) = match fields.get(index + 1) {
            Some(next) => {
                let member = &next.member;
                (
                    quote!(#core::mem::offset_of!(#ident, #member)),
                    next,
                    Gap::Before,
                )
            }
            None => (quote!(#core::mem::size_of::<#ident>()), field, Gap::After),
        };
        let (place, fix) = gap_words(reported, gap);
        longest = longest.max(place.len() + fix.len());
        let named = matches!(reported.member, Member::Named(_));
        // The call is spanned on the field, so that rustc underlines it: the function is
        // `#[track_caller]`, so its panic is reported at the call.
        let check = quote_spanned! {reported.span()=>
            __rtipc_padding::check(#struct_name, #end, #next, #place, #named, #fix)
        };
        checks.push(quote!(const _: () = #check;));
    }
    // The fixed words of the message, two numbers of up to 20 digits written twice each, and
    // the names.
    let capacity = 100 + 4 * 20 + struct_name.len() + longest;
    let module = padding_module(capacity);
    quote! {
        #module
        #(#checks)*
    }
}

/// The module of the padding checks: `check`, and the message it writes, in a buffer of
/// `capacity` bytes.
fn padding_module(capacity: usize) -> TokenStream {
    // In a module of its own, whose scope holds none of the user's items: a constant of the
    // user's cannot turn a binding of the code below into a pattern. For the same reason it
    // names `core` directly, as `::core`, not through the import of rtipc.
    quote! {
        mod __rtipc_padding {
            struct Message {
                buf: [u8; #capacity],
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
                let message = Message { buf: [0; #capacity], len: 0 }
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
    }
}

/// `offset_of!(Struct, field) + size_of::<Type>()`: where the field ends.
fn field_end(core: &TokenStream, ident: &Ident, field: &Field<'_>) -> TokenStream {
    let member = &field.member;
    let ty = field.ty;
    quote!(#core::mem::offset_of!(#ident, #member) + #core::mem::size_of::<#ty>())
}

/// Where a gap is, relative to the field it is reported on.
#[derive(Clone, Copy)]
enum Gap {
    /// Before the field, after the one before it.
    Before,
    /// After the field, which is the last.
    After,
}

/// The words of a padding message that name the place of the gap (`before field `x``) and
/// where to insert the padding field (`before `x``).
fn gap_words(field: &Field<'_>, gap: Gap) -> (String, String) {
    let name = &field.name;
    // A tuple struct's fields are numbers: "field `1`" says what the number is.
    let field_word = match field.member {
        Member::Named(_) => "",
        Member::Unnamed(_) => "field ",
    };
    match gap {
        Gap::Before => (
            format!("before field `{name}`"),
            format!("before {field_word}`{name}`"),
        ),
        Gap::After => (
            format!("after the last field `{name}`"),
            format!("after {field_word}`{name}`"),
        ),
    }
}
