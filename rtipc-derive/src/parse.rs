//! Stage 1: read a `DeriveInput` into a small model that borrows the syn nodes.
//!
//! Parsing records what the input says (the `#[repr]` items, the `#[rtipc(...)]` keys, the
//! fields) and reports only malformed `#[rtipc(...)]` attributes; whether the input is
//! acceptable is decided by [`validate`](crate::validate).

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Expr, Fields, Generics, Ident, Lit, LitStr, Member, Meta, Token,
    Type,
};

/// Every error found so far, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn add(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// An error spanned on all of `tokens`, not only on their first token.
    pub(crate) fn add_spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The derive's input.
pub(crate) struct Input<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub shape: Shape<'a>,
    pub repr: Vec<ReprItem>,
    pub attrs: Attrs,
}

/// What kind of item the derive is on.
pub(crate) enum Shape<'a> {
    /// A struct, with its fields in declaration order.
    Struct(Vec<Field<'a>>),
    /// An enum; the span is the `enum` keyword.
    Enum(Span),
    /// A union; the span is the `union` keyword.
    Union(Span),
}

/// One field of a struct.
pub(crate) struct Field<'a> {
    /// How to name the field in `offset_of!`: an identifier, or an index in a tuple struct.
    pub member: Member,
    /// The field's name in the schema: its identifier, or `"0"`, `"1"`, ...
    pub name: String,
    pub ty: &'a Type,
    /// `#[rtipc(...)]` attributes on the field, which are not allowed.
    pub rtipc_attrs: Vec<&'a Attribute>,
}

/// One item of a `#[repr(...)]` attribute.
pub(crate) struct ReprItem {
    pub kind: ReprKind,
    /// The item as written, such as `packed(2)`, to span errors on.
    pub tokens: TokenStream,
}

pub(crate) enum ReprKind {
    C,
    Transparent,
    Align,
    Packed,
    /// `Rust`, or a primitive integer type such as `u8`: a name, spelt as written.
    Other(String),
}

/// The keys of `#[rtipc(...)]`.
#[derive(Default)]
pub(crate) struct Attrs {
    /// `id = N`.
    pub id: Option<u64>,
    /// `name = "..."`.
    pub name: Option<LitStr>,
}

pub(crate) fn parse<'a>(input: &'a DeriveInput, errors: &mut Errors) -> Input<'a> {
    let shape = match &input.data {
        Data::Struct(data) => Shape::Struct(parse_fields(&data.fields)),
        Data::Enum(data) => Shape::Enum(data.enum_token.span),
        Data::Union(data) => Shape::Union(data.union_token.span),
    };
    Input {
        ident: &input.ident,
        generics: &input.generics,
        shape,
        repr: parse_repr(&input.attrs, errors),
        attrs: parse_attrs(&input.attrs, errors),
    }
}

fn parse_fields(fields: &Fields) -> Vec<Field<'_>> {
    fields
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let member = match &field.ident {
                Some(ident) => Member::Named(ident.clone()),
                None => Member::Unnamed(syn::Index {
                    index: index as u32,
                    span: field.ty.span(),
                }),
            };
            let name = match &member {
                // A raw identifier `r#type` is the field `type`.
                Member::Named(ident) => ident.to_string().trim_start_matches("r#").to_owned(),
                Member::Unnamed(index) => index.index.to_string(),
            };
            Field {
                member,
                name,
                ty: &field.ty,
                rtipc_attrs: field
                    .attrs
                    .iter()
                    .filter(|attr| attr.path().is_ident("rtipc"))
                    .collect(),
            }
        })
        .collect()
}

fn parse_repr(attrs: &[Attribute], errors: &mut Errors) -> Vec<ReprItem> {
    let mut items = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("repr")) {
        // rustc reports a malformed `#[repr]` itself; here it is just not a usable repr.
        let Ok(metas) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        else {
            continue;
        };
        for meta in metas {
            let tokens = meta.to_token_stream();
            let Some(ident) = meta.path().get_ident() else {
                errors.add_spanned(
                    meta.path(),
                    "`#[derive(Object)]` does not understand this `#[repr]` item",
                );
                continue;
            };
            let kind = match ident.to_string().as_str() {
                "C" => ReprKind::C,
                "transparent" => ReprKind::Transparent,
                "align" => ReprKind::Align,
                "packed" => ReprKind::Packed,
                other => ReprKind::Other(other.to_owned()),
            };
            items.push(ReprItem { kind, tokens });
        }
    }
    items
}

const ATTR_SHAPE: &str = "expected `#[rtipc(id = <integer>, name = \"<name>\")]`";

fn parse_attrs(attrs: &[Attribute], errors: &mut Errors) -> Attrs {
    let mut out = Attrs::default();
    // The key of each setting already seen, so that a repeat is reported on the repeat.
    let mut seen: Vec<String> = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("rtipc")) {
        let Meta::List(_) = &attr.meta else {
            errors.add_spanned(attr, ATTR_SHAPE);
            continue;
        };
        let metas = match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => metas,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        for meta in metas {
            let path = meta.path();
            let key = path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""));
            if key != "id" && key != "name" {
                errors.add_spanned(
                    path,
                    format_args!("unknown key `{key}` in `#[rtipc(...)]`; expected `id` or `name`"),
                );
                continue;
            }
            if seen.contains(&key) {
                errors.add_spanned(
                    path,
                    format_args!("duplicate key `{key}` in `#[rtipc(...)]`; give it once"),
                );
                continue;
            }
            seen.push(key.clone());
            let Meta::NameValue(name_value) = &meta else {
                let example = if key == "id" {
                    "id = 42"
                } else {
                    "name = \"JointState\""
                };
                errors.add_spanned(&meta, format_args!("expected `{example}`"));
                continue;
            };
            let value = ungroup(&name_value.value);
            if key == "id" {
                match parse_id(value) {
                    Ok(id) => out.id = Some(id),
                    Err(error) => errors.push(error),
                }
            } else {
                match value {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(name),
                        ..
                    }) if !name.value().is_empty() => out.name = Some(name.clone()),
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(name),
                        ..
                    }) => errors.add(name.span(), "`name` must not be empty"),
                    _ => errors.add_spanned(
                        value,
                        "`name` must be a string literal, such as `name = \"JointState\"`",
                    ),
                }
            }
        }
    }
    out
}

/// Looks through the invisible groups that `macro_rules!` puts around captured expressions.
fn ungroup(mut expr: &Expr) -> &Expr {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    expr
}

fn parse_id(value: &Expr) -> syn::Result<u64> {
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            "`id` must be an integer literal, such as `id = 42`",
        ));
    };
    if !matches!(int.suffix(), "" | "u64") {
        return Err(syn::Error::new(
            int.span(),
            format_args!(
                "`id` is a `u64`: write it without a suffix or with `u64`, not `{}`",
                int.suffix()
            ),
        ));
    }
    int.base10_parse::<u64>()
        .map_err(|_| syn::Error::new(int.span(), "`id` must fit in a `u64`"))
}
