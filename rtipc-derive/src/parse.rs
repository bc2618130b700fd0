//! Stage 1: read a `DeriveInput` into a small model that borrows the syn nodes.
//!
//! Parsing records what the input says (the `#[repr]` items, the `#[rtipc(...)]` keys, the
//! fields, `Clone` and `Copy` in a later `#[derive]`) and reports only malformed
//! `#[rtipc(...)]` attributes; whether the input is acceptable is decided by
//! [`validate`](crate::validate).

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Fields, Generics, Ident, Lit, LitStr, Member, Meta, Path,
    PathSegment, Token, Type,
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
    /// `Clone` and `Copy` derived by a later `#[derive(...)]` on the same item.
    pub siblings: Vec<SiblingDerive>,
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
    /// `#[rtipc(since = N)]`: the revision that added the field, and where the key is.
    pub since: Option<(u32, Span)>,
}

impl Field<'_> {
    /// Where to report a problem of the field as a whole: its name, or in a tuple struct the
    /// first token of its type.
    pub(crate) fn span(&self) -> Span {
        match &self.member {
            Member::Named(ident) => ident.span(),
            Member::Unnamed(index) => index.span,
        }
    }
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
    /// `crate = path` or `crate = "path"`: the path through which generated code names rtipc.
    pub krate: Option<Path>,
    /// Whether a `crate` key was given with a value that is not a path: then the path of rtipc
    /// is unknown, and nothing that names it may be emitted.
    pub krate_malformed: bool,
    /// `region`: a type for a shared region, whose fields may be atomics (where the key is).
    pub region: Option<Span>,
    /// `appendable`: later revisions may append fields (where the key is).
    pub appendable: Option<Span>,
}

/// `Clone` or `Copy` in a `#[derive(...)]` that follows `#[derive(Object)]`, which implements
/// both itself.
///
/// A derive macro only sees the `#[derive]` attributes after its own: `Clone` and `Copy` in the
/// same list as `Object`, or in an earlier one, are gone from its input.
pub(crate) struct SiblingDerive {
    /// The path as written, such as `Clone` or `core::marker::Copy`, to span errors on.
    pub path: Path,
    pub which: CopyTrait,
}

/// One of the two traits that `#[derive(Object)]` implements besides `Object`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyTrait {
    Clone,
    Copy,
}

impl CopyTrait {
    pub(crate) fn name(self) -> &'static str {
        match self {
            CopyTrait::Clone => "Clone",
            CopyTrait::Copy => "Copy",
        }
    }
}

pub(crate) fn parse<'a>(input: &'a DeriveInput, errors: &mut Errors) -> Input<'a> {
    let shape = match &input.data {
        Data::Struct(data) => Shape::Struct(parse_fields(&data.fields, errors)),
        Data::Enum(data) => Shape::Enum(data.enum_token.span),
        Data::Union(data) => Shape::Union(data.union_token.span),
    };
    Input {
        ident: &input.ident,
        generics: &input.generics,
        shape,
        repr: parse_repr(&input.attrs, errors),
        attrs: parse_attrs(&input.attrs, errors),
        siblings: parse_siblings(&input.attrs),
    }
}

fn parse_fields<'a>(fields: &'a Fields, errors: &mut Errors) -> Vec<Field<'a>> {
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
                since: parse_since(&field.attrs, errors),
            }
        })
        .collect()
}

const FIELD_ATTR_SHAPE: &str = "expected `#[rtipc(since = <revision>)]`, the only key a field \
                                takes (the others go on the struct)";

/// `#[rtipc(since = N)]` on a field: the only key a field takes.
fn parse_since(attrs: &[Attribute], errors: &mut Errors) -> Option<(u32, Span)> {
    let mut since = None;
    for settings in rtipc_settings(attrs, FIELD_ATTR_SHAPE, errors) {
        for setting in settings {
            if !setting.key.is_ident("since") {
                errors.add_spanned(&setting.key, FIELD_ATTR_SHAPE);
                continue;
            }
            if since.is_some() {
                errors.add_spanned(
                    &setting.key,
                    "duplicate key `since` in `#[rtipc(...)]`; give it once",
                );
                continue;
            }
            let value = setting.value.clone().map(ungroup);
            let revision = match value.as_ref().and_then(literal) {
                Some(Lit::Int(int)) if matches!(int.suffix(), "" | "u32") => {
                    int.base10_parse::<u32>().ok().filter(|&n| n >= 1)
                }
                _ => None,
            };
            match revision {
                Some(n) => since = Some((n, setting.key.span())),
                None => errors.add_spanned(
                    &setting.tokens,
                    "`since` is the revision that added the field: an integer from 1, such as \
                     `since = 2`",
                ),
            }
        }
    }
    since
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

const ATTR_SHAPE: &str = "expected `#[rtipc(id = <integer>, name = \"<name>\", crate = <path>)]`";

/// The keys that `#[rtipc(...)]` accepts, each with an example of its value.
const KEYS: [(&str, &str); 5] = [
    ("id", "id = 42"),
    ("name", "name = \"JointState\""),
    ("crate", "crate = my_crate::rtipc"),
    ("region", "region"),
    ("appendable", "appendable"),
];

/// One setting of `#[rtipc(...)]` as written: a key, then `= value` or anything else up to the
/// next top-level comma.
///
/// Values are kept as tokens and read by hand rather than parsed as `syn::Expr`: that needs
/// only syn's default features, and a value of any shape gets the derive's own message.
struct Setting {
    key: Path,
    /// The tokens after `=`, or `None` if the key is not followed by `=`.
    value: Option<TokenStream>,
    /// Everything from the key to the end of the setting, to span errors on.
    tokens: TokenStream,
}

fn parse_settings(input: ParseStream) -> syn::Result<Vec<Setting>> {
    let mut settings = Vec::new();
    while !input.is_empty() {
        let key = parse_key(input)?;
        let mut tokens = key.to_token_stream();
        let value = if input.peek(Token![=]) {
            let eq: Token![=] = input.parse()?;
            let value = tokens_to_comma(input)?;
            tokens.extend(eq.to_token_stream());
            tokens.extend(value.clone());
            Some(value)
        } else {
            tokens.extend(tokens_to_comma(input)?);
            None
        };
        settings.push(Setting { key, value, tokens });
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(settings)
}

/// A key: an identifier or keyword (`crate`), or a path, which is reported as unknown.
fn parse_key(input: ParseStream) -> syn::Result<Path> {
    let mut segments = Punctuated::<PathSegment, Token![::]>::new();
    loop {
        segments.push_value(PathSegment::from(input.call(Ident::parse_any)?));
        if !input.peek(Token![::]) {
            break;
        }
        segments.push_punct(input.parse()?);
    }
    Ok(Path {
        leading_colon: None,
        segments,
    })
}

/// The token trees up to the next top-level comma or the end.
fn tokens_to_comma(input: ParseStream) -> syn::Result<TokenStream> {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        tokens.extend([input.parse::<TokenTree>()?]);
    }
    Ok(tokens)
}

/// The settings of each well-formed `#[rtipc(...)]` among `attrs`, in order; a malformed one
/// is reported (`shape` says what was expected) and skipped.
fn rtipc_settings(attrs: &[Attribute], shape: &str, errors: &mut Errors) -> Vec<Vec<Setting>> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("rtipc")) {
        let Meta::List(_) = &attr.meta else {
            errors.add_spanned(attr, shape);
            continue;
        };
        match attr.parse_args_with(parse_settings) {
            Ok(settings) => out.push(settings),
            Err(error) => errors.push(error),
        }
    }
    out
}

fn parse_attrs(attrs: &[Attribute], errors: &mut Errors) -> Attrs {
    let mut out = Attrs::default();
    // The key of each setting already seen, so that a repeat is reported on the repeat.
    let mut seen: Vec<String> = Vec::new();
    for settings in rtipc_settings(attrs, ATTR_SHAPE, errors) {
        for setting in settings {
            let path = &setting.key;
            let key = path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""));
            let Some(&(_, example)) = KEYS.iter().find(|(name, _)| *name == key) else {
                errors.add_spanned(
                    path,
                    format_args!(
                        "unknown key `{key}` in `#[rtipc(...)]`; expected `id`, `name`, `crate`, `region` or `appendable`"
                    ),
                );
                continue;
            };
            if seen.contains(&key) {
                errors.add_spanned(
                    path,
                    format_args!("duplicate key `{key}` in `#[rtipc(...)]`; give it once"),
                );
                continue;
            }
            seen.push(key.clone());
            if key == "appendable" {
                if setting.value.is_some() {
                    errors.add_spanned(
                        &setting.tokens,
                        "`appendable` takes no value: write `#[rtipc(appendable)]`",
                    );
                }
                out.appendable = Some(path.span());
                continue;
            }
            if key == "region" {
                if setting.value.is_some() {
                    errors.add_spanned(
                        &setting.tokens,
                        "`region` takes no value: write `#[rtipc(region)]`",
                    );
                }
                // A region all the same, so that its atomics add no errors of their own.
                out.region = Some(path.span());
                continue;
            }
            let value = match &setting.value {
                Some(value) if !value.is_empty() => ungroup(value.clone()),
                _ => {
                    if key == "crate" {
                        out.krate_malformed = true;
                    }
                    errors.add_spanned(&setting.tokens, format_args!("expected `{example}`"));
                    continue;
                }
            };
            match key.as_str() {
                "id" => match parse_id(&value) {
                    Ok(id) => out.id = Some(id),
                    Err(error) => errors.push(error),
                },
                "name" => match parse_name(&value) {
                    Ok(name) => out.name = Some(name),
                    Err(error) => errors.push(error),
                },
                _ => match parse_crate(&value) {
                    Ok(path) => out.krate = Some(path),
                    Err(error) => {
                        out.krate_malformed = true;
                        errors.push(error);
                    }
                },
            }
        }
    }
    out
}

/// Looks through the invisible groups that `macro_rules!` puts around captured fragments.
fn ungroup(tokens: TokenStream) -> TokenStream {
    let mut iter = tokens.clone().into_iter();
    match (iter.next(), iter.next()) {
        (Some(TokenTree::Group(group)), None) if group.delimiter() == Delimiter::None => {
            ungroup(group.stream())
        }
        _ => tokens,
    }
}

/// The value as one literal, if it is one.
fn literal(value: &TokenStream) -> Option<Lit> {
    syn::parse2::<Lit>(value.clone()).ok()
}

fn parse_id(value: &TokenStream) -> syn::Result<u64> {
    let Some(Lit::Int(int)) = literal(value) else {
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

fn parse_name(value: &TokenStream) -> syn::Result<LitStr> {
    match literal(value) {
        Some(Lit::Str(name)) if !name.value().is_empty() => Ok(name),
        Some(Lit::Str(name)) => Err(syn::Error::new(name.span(), "`name` must not be empty")),
        _ => Err(syn::Error::new_spanned(
            value,
            "`name` must be a string literal, such as `name = \"JointState\"`",
        )),
    }
}

/// `crate = some::path`, or the same path in a string, as serde accepts it.
fn parse_crate(value: &TokenStream) -> syn::Result<Path> {
    const MESSAGE: &str = "`crate` must be a path to the rtipc crate, such as \
                           `crate = my_crate::rtipc` or `crate = \"my_crate::rtipc\"`";
    let path = match literal(value) {
        Some(Lit::Str(string)) => string.parse_with(Path::parse_mod_style),
        _ => Path::parse_mod_style.parse2(value.clone()),
    };
    path.map_err(|_| syn::Error::new_spanned(value, MESSAGE))
}

/// `Clone` and `Copy` in the `#[derive(...)]` attributes that the derive sees.
fn parse_siblings(attrs: &[Attribute]) -> Vec<SiblingDerive> {
    let mut siblings = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("derive")) {
        // rustc reports a malformed `#[derive]` itself.
        let Ok(paths) = attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
        else {
            continue;
        };
        for path in paths {
            let which = match path.segments.last() {
                Some(last) if last.ident == "Clone" => CopyTrait::Clone,
                Some(last) if last.ident == "Copy" => CopyTrait::Copy,
                _ => continue,
            };
            siblings.push(SiblingDerive { path, which });
        }
    }
    siblings
}
