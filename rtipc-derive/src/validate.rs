//! Stage 2: refuse what cannot be an rtipc object, each problem spanned on its token.
//!
//! What can be decided from the syntax is decided here: the item's kind, generics, `#[repr]`,
//! `Clone` or `Copy` derived again, and field types that are never allowed (`bool`, `char`,
//! `usize`, `isize`, references and pointers), even inside arrays. The rest is proven by the
//! compiler from what
//! [`expand`](crate::expand) emits: every field type implements the sealed `FieldKind` trait,
//! and there is no padding before, between or after the fields.

use syn::{GenericParam, Type, TypePath};

use crate::parse::{Errors, Field, Input, ReprKind, Shape};

pub(crate) const NEEDS_REPR: &str =
    "`#[derive(Object)]` requires `#[repr(C)]` or `#[repr(transparent)]`";

pub(crate) fn validate(input: &Input<'_>, errors: &mut Errors) {
    let fields = match &input.shape {
        Shape::Struct(fields) => fields,
        Shape::Enum(span) => {
            errors.add(
                *span,
                "`#[derive(Object)]` does not support enums: a peer may write any value, and \
                 not every value is a valid variant; use a struct with an integer field",
            );
            return;
        }
        Shape::Union(span) => {
            errors.add(
                *span,
                "`#[derive(Object)]` does not support unions: some of their bytes may be \
                 uninitialised; use a struct",
            );
            return;
        }
    };
    validate_generics(input, errors);
    validate_repr(input, errors);
    for sibling in &input.siblings {
        errors.add_spanned(
            &sibling.path,
            format_args!(
                "`#[derive(Object)]` already implements `Clone` and `Copy`; remove `{}` from \
                 this `#[derive]`",
                sibling.which.name()
            ),
        );
    }
    if fields.is_empty() {
        errors.add(
            input.ident.span(),
            "`#[derive(Object)]` requires at least one field",
        );
    }
    for field in fields {
        validate_type(field.ty, errors);
    }
    validate_revisions(input, fields, errors);
}

/// `#[rtipc(since = N)]`: only in an appendable type, never on the first field, and never
/// lower than an earlier field's revision (fields without it are revision 1), so that every
/// revision's fields are a prefix of the next one's. `appendable` and `region` exclude each
/// other: a region is shared in place by every build that maps it.
fn validate_revisions(input: &Input<'_>, fields: &[Field<'_>], errors: &mut Errors) {
    if let (Some(span), Some(_)) = (input.attrs.appendable, input.attrs.region) {
        errors.add(
            span,
            "`appendable` does not apply to a `region` type: every build maps a region whole",
        );
    }
    let mut previous: Option<(u32, &Field<'_>)> = None;
    for (index, field) in fields.iter().enumerate() {
        let since = field.since.map_or(1, |(n, _)| n);
        if let Some((_, span)) = field.since {
            if input.attrs.appendable.is_none() {
                errors.add(
                    span,
                    "`since` needs `#[rtipc(appendable)]` on the struct: only an appendable \
                     type has revisions",
                );
            } else if index == 0 {
                errors.add(
                    span,
                    "the first field belongs to revision 1: a later revision appends fields \
                     after those of revision 1, so `since` cannot be on the first field",
                );
            }
        }
        if let Some((before, prev)) = previous {
            if since < before {
                let span = field.since.map_or_else(|| field.span(), |(_, s)| s);
                errors.add(
                    span,
                    format_args!(
                        "field `{}` is revision {since} but follows `{}` of revision {before}: \
                         revisions only append fields at the end, so `since` never decreases \
                         (a field without `since` is revision 1)",
                        field.name, prev.name
                    ),
                );
            }
        }
        if previous.is_none_or(|(before, _)| since >= before) {
            previous = Some((since, field));
        }
    }
}

fn validate_generics(input: &Input<'_>, errors: &mut Errors) {
    for param in &input.generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => {
                "`#[derive(Object)]` does not support lifetime parameters: an object cannot \
                 borrow anything"
            }
            GenericParam::Type(_) => {
                "`#[derive(Object)]` does not support type parameters: an object's layout must \
                 be fixed; declare one struct per concrete type"
            }
            GenericParam::Const(_) => {
                "`#[derive(Object)]` does not support const parameters: an object's layout must \
                 be fixed; use a named constant for the length instead"
            }
        };
        errors.add_spanned(param, message);
    }
    if let Some(where_clause) = &input.generics.where_clause {
        errors.add_spanned(
            where_clause,
            "`#[derive(Object)]` does not support `where` clauses",
        );
    }
}

fn validate_repr(input: &Input<'_>, errors: &mut Errors) {
    let mut has_layout = false;
    let mut refused_layout = false;
    for item in &input.repr {
        match &item.kind {
            ReprKind::C | ReprKind::Transparent => has_layout = true,
            ReprKind::Align => {}
            ReprKind::Packed => errors.add_spanned(
                &item.tokens,
                "`#[derive(Object)]` does not allow `#[repr(packed)]`: fields must be aligned; \
                 remove it and reorder the fields or add explicit padding fields",
            ),
            ReprKind::Other(name) => {
                refused_layout = true;
                errors.add_spanned(
                    &item.tokens,
                    format_args!("`#[repr({name})]` is not allowed here; {NEEDS_REPR}"),
                );
            }
        }
    }
    if !has_layout && !refused_layout {
        errors.add(
            input.ident.span(),
            format_args!("{NEEDS_REPR}: the default representation may reorder fields"),
        );
    }
}

/// Refuses field types that are never allowed, looking into arrays.
fn validate_type(ty: &Type, errors: &mut Errors) {
    for (ty, message) in type_problems(ty) {
        errors.add_spanned(ty, message);
    }
}

/// The parts of `ty` that are never allowed in an object, each with the reason.
pub(crate) fn type_problems(ty: &Type) -> Vec<(&Type, String)> {
    let mut problems = Vec::new();
    collect_type_problems(ty, &mut problems);
    problems
}

fn collect_type_problems<'t>(ty: &'t Type, problems: &mut Vec<(&'t Type, String)>) {
    const ADDRESS: &str = "an address means nothing in another process; store an index or an \
                           offset instead";
    let message = match ty {
        Type::Array(array) => return collect_type_problems(&array.elem, problems),
        Type::Group(group) => return collect_type_problems(&group.elem, problems),
        Type::Paren(paren) => return collect_type_problems(&paren.elem, problems),
        Type::Reference(_) => {
            format!("references are not allowed in an rtipc object: {ADDRESS}")
        }
        Type::Ptr(_) => format!("raw pointers are not allowed in an rtipc object: {ADDRESS}"),
        Type::BareFn(_) => {
            format!("function pointers are not allowed in an rtipc object: {ADDRESS}")
        }
        Type::Path(path) => {
            let message = match primitive_name(path).as_deref() {
                Some("bool") => {
                    "`bool` is not allowed in an rtipc object: only 0 and 1 are valid, and a \
                     peer may write any byte; use `u8`"
                }
                Some("char") => {
                    "`char` is not allowed in an rtipc object: not every `u32` is a valid \
                     `char`, and a peer may write any value; use `u32`"
                }
                Some("usize") => {
                    "`usize` is not allowed in an rtipc object: its size depends on the \
                     target; use `u32` or `u64`"
                }
                Some("isize") => {
                    "`isize` is not allowed in an rtipc object: its size depends on the \
                     target; use `i32` or `i64`"
                }
                _ => return,
            };
            message.to_owned()
        }
        _ => return,
    };
    problems.push((ty, message));
}

/// The name of the primitive type that `path` names, if it names one the way rtipc recognises:
/// `usize`, or `core::primitive::usize` and the like.
fn primitive_name(path: &TypePath) -> Option<String> {
    if path.qself.is_some() {
        return None;
    }
    let segments = &path.path.segments;
    let last = segments.last()?;
    let primitive = segments.len() == 1 && path.path.leading_colon.is_none()
        || segments.len() >= 2 && segments[segments.len() - 2].ident == "primitive";
    (primitive && last.arguments.is_empty()).then(|| last.ident.to_string())
}

/// Whether `ty` is one of the fixed-width primitives, which implement `FieldKind` (`u8` ...
/// `f64`, or a path such as `core::primitive::u8`), or an array of them.
///
/// Such a field gets no `FieldKind` bound on the impls and no check of its own (its schema
/// entry names `FieldKind` anyway); every other field gets both. If the name is shadowed by a
/// type that is not allowed, the error is only less clear.
pub(crate) fn is_primitive_or_array(ty: &Type) -> bool {
    match ty {
        Type::Array(array) => is_primitive_or_array(&array.elem),
        Type::Group(group) => is_primitive_or_array(&group.elem),
        Type::Paren(paren) => is_primitive_or_array(&paren.elem),
        Type::Path(path) => primitive_name(path).is_some_and(|name| {
            matches!(
                name.as_str(),
                "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "f32" | "f64"
            )
        }),
        _ => false,
    }
}
