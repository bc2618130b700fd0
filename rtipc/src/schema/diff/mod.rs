//! Field-by-field comparison of two schemas: [`diff`].

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{Field, FieldType, Schema};

/// One difference between our schema and the peer's.
///
/// Field paths join nested field names with `.` and mark the element of an array with `[]`:
/// `pose.x`, `joints[].angle`. An object path is empty for the top-level object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// The object's size differs.
    Size {
        /// Path of the object; empty for the top-level one.
        object: String,
        /// Our size in bytes.
        ours: u64,
        /// The peer's size in bytes.
        theirs: u64,
    },
    /// The object's alignment differs.
    Align {
        /// Path of the object; empty for the top-level one.
        object: String,
        /// Our alignment in bytes.
        ours: u64,
        /// The peer's alignment in bytes.
        theirs: u64,
    },
    /// The fields both schemas have are declared in a different order.
    Reordered {
        /// Path of the object; empty for the top-level one.
        object: String,
        /// The names of the common fields in our order.
        ours: Vec<String>,
        /// The names of the common fields in the peer's order.
        theirs: Vec<String>,
    },
    /// A field of ours is missing from the peer's schema.
    Missing {
        /// Path of the field.
        field: String,
        /// Its type in our schema.
        ty: FieldType,
        /// Its offset in our schema.
        offset: u64,
    },
    /// The peer's schema has a field that ours does not.
    Extra {
        /// Path of the field.
        field: String,
        /// Its type in the peer's schema.
        ty: FieldType,
        /// Its offset in the peer's schema.
        offset: u64,
    },
    /// A field's type or offset differs.
    ///
    /// When both types are objects or arrays with the same kind of element, the details are
    /// reported as further differences inside the field (`pose.x`, [`Difference::ArrayLen`]),
    /// and this variant only appears when the offset differs.
    Changed {
        /// Path of the field.
        field: String,
        /// Its type in our schema.
        ours: FieldType,
        /// Its offset in our schema.
        ours_offset: u64,
        /// Its type in the peer's schema.
        theirs: FieldType,
        /// Its offset in the peer's schema.
        theirs_offset: u64,
    },
    /// An array's length differs.
    ArrayLen {
        /// Path of the array field; ends in `[]` for an array nested in an array.
        field: String,
        /// Our number of elements.
        ours: u64,
        /// The peer's number of elements.
        theirs: u64,
    },
    /// One side's type is `#[rtipc(appendable)]` and the other's is not.
    Appendable {
        /// Path of the object; empty for the top-level one.
        object: String,
        /// Whether ours is appendable.
        ours: bool,
        /// Whether the peer's is.
        theirs: bool,
    },
    /// A field was added in another revision here than in the peer's schema.
    Revision {
        /// Path of the field.
        field: String,
        /// Its revision in our schema.
        ours: u32,
        /// Its revision in the peer's schema.
        theirs: u32,
    },
    /// Why the prefix rule of appendable types does not make the two schemas compatible
    /// (see [`prefix`](super::prefix)); always the last difference.
    Rule {
        /// The reason, in words.
        reason: String,
    },
    /// The type names differ. A [note](SchemaDiff::notes) only: names are not part of the
    /// layout.
    TypeName {
        /// Path of the object; empty for the top-level one.
        object: String,
        /// Our type name.
        ours: String,
        /// The peer's type name.
        theirs: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Size {
                object,
                ours,
                theirs,
            } => {
                write_subject(f, "size", object)?;
                write!(
                    f,
                    " is {ours} bytes here, {theirs} bytes in the peer's schema"
                )
            }
            Difference::Align {
                object,
                ours,
                theirs,
            } => {
                write_subject(f, "alignment", object)?;
                write!(
                    f,
                    " is {ours} bytes here, {theirs} bytes in the peer's schema"
                )
            }
            Difference::Reordered {
                object,
                ours,
                theirs,
            } => {
                write_subject(f, "fields", object)?;
                f.write_str(" are in a different order: ")?;
                write_names(f, ours)?;
                f.write_str(" here, ")?;
                write_names(f, theirs)?;
                f.write_str(" in the peer's schema")
            }
            Difference::Missing { field, ty, offset } => write!(
                f,
                "field `{field}` ({ty} at offset {offset}) is missing from the peer's schema"
            ),
            Difference::Extra { field, ty, offset } => write!(
                f,
                "the peer's schema has an extra field `{field}` ({ty} at offset {offset})"
            ),
            Difference::Changed {
                field,
                ours,
                ours_offset,
                theirs,
                theirs_offset,
            } => write!(
                f,
                "field `{field}`: {ours} at offset {ours_offset} here, {theirs} at offset \
                 {theirs_offset} in the peer's schema"
            ),
            Difference::ArrayLen {
                field,
                ours,
                theirs,
            } => write!(
                f,
                "field `{field}`: array of {ours} elements here, {theirs} in the peer's schema"
            ),
            Difference::Appendable { .. }
            | Difference::Revision { .. }
            | Difference::Rule { .. } => self.fmt_evolution(f),
            Difference::TypeName {
                object,
                ours,
                theirs,
            } => {
                write_object(f, object)?;
                write!(
                    f,
                    " is named `{ours}` here, `{theirs}` in the peer's schema"
                )
            }
        }
    }
}

impl Difference {
    /// The differences about revisions of appendable types.
    fn fmt_evolution(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Appendable {
                object,
                ours,
                theirs,
            } => {
                write_object(f, object)?;
                let is = |a: &bool| if *a { "is" } else { "is not" };
                write!(
                    f,
                    " {} appendable here and {} in the peer's schema",
                    is(ours),
                    is(theirs)
                )
            }
            Difference::Revision {
                field,
                ours,
                theirs,
            } => write!(
                f,
                "field `{field}`: revision {ours} here, {theirs} in the peer's schema"
            ),
            Difference::Rule { reason } => f.write_str(reason),
            _ => unreachable!("only the differences about revisions"),
        }
    }
}

/// "the type" for the top-level object, "`pose`" for a nested one.
fn write_object(f: &mut fmt::Formatter<'_>, object: &str) -> fmt::Result {
    if object.is_empty() {
        f.write_str("the type")
    } else {
        write!(f, "`{object}`")
    }
}

/// "size" for the top-level object, "size of `pose`" for a nested one.
fn write_subject(f: &mut fmt::Formatter<'_>, what: &str, object: &str) -> fmt::Result {
    if object.is_empty() {
        f.write_str(what)
    } else {
        write!(f, "{what} of `{object}`")
    }
}

/// At most this many names of a reordered field list are shown.
const MAX_SHOWN_NAMES: usize = 8;

fn write_names(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    for (i, name) in names.iter().take(MAX_SHOWN_NAMES).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "`{name}`")?;
    }
    if names.len() > MAX_SHOWN_NAMES {
        write!(f, ", ... ({} more)", names.len() - MAX_SHOWN_NAMES)?;
    }
    Ok(())
}

/// The differences between our schema and the peer's, as found by [`diff`].
///
/// `Display` joins the differences with `"; "`, followed by the [notes](SchemaDiff::notes)
/// if there are differences, and reads "the schemas are identical" when there are none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    differences: Vec<Difference>,
    notes: Vec<Difference>,
}

impl SchemaDiff {
    /// `true` when the two schemas describe the same layout (type names aside).
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty()
    }

    /// The number of layout differences.
    pub fn len(&self) -> usize {
        self.differences.len()
    }

    /// The layout differences, in order: the object's size, alignment and field order, then
    /// its fields in our order (each followed by the differences inside it), then the peer's
    /// extra fields.
    pub fn differences(&self) -> &[Difference] {
        &self.differences
    }

    /// Iterates over the layout differences.
    pub fn iter(&self) -> std::slice::Iter<'_, Difference> {
        self.differences.iter()
    }

    /// Differences that do not affect the layout: differing type names
    /// ([`Difference::TypeName`]).
    pub fn notes(&self) -> &[Difference] {
        &self.notes
    }

    /// Why the schemas are not compatible by the prefix rule of appendable types (see
    /// [`prefix`](super::prefix)), when either is appendable: the rule's reason (a field
    /// changed in the middle, a nested object changed), or the use that the rule does not
    /// allow (a consumer built with a later revision than the segment's).
    pub fn reason(&self) -> Option<&str> {
        self.differences.iter().find_map(|d| match d {
            Difference::Rule { reason } => Some(reason.as_str()),
            _ => None,
        })
    }

    /// The diff with `reason` in place of the prefix rule's own, last.
    pub(crate) fn with_reason(mut self, reason: String) -> SchemaDiff {
        self.differences
            .retain(|d| !matches!(d, Difference::Rule { .. }));
        self.differences.push(Difference::Rule { reason });
        self
    }
}

impl<'a> IntoIterator for &'a SchemaDiff {
    type Item = &'a Difference;
    type IntoIter = std::slice::Iter<'a, Difference>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.differences.is_empty() {
            return f.write_str("the schemas are identical");
        }
        for (i, d) in self.differences.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{d}")?;
        }
        for note in &self.notes {
            write!(f, "; note: {note}")?;
        }
        Ok(())
    }
}

/// Compares our schema with the peer's, field by field.
///
/// Fields are matched by name. The result reports, for our schema against the peer's: size and
/// alignment changes of the object, fields missing from the peer's schema, extra fields in it,
/// fields whose type or offset changed, array length changes, fields in a different order, and
/// the same recursively inside nested objects (`pose.x`) and arrays of objects (`joints[].q`).
/// Offsets are relative to the object that holds the field. The result is empty exactly when
/// both schemas have the same [`fingerprint`](super::fingerprint), that is the same layout.
///
/// The type's own name, and the names of nested object types, are not part of the layout (the
/// fingerprint ignores them): a differing name is recorded as a [note](SchemaDiff::notes), not
/// a difference, and does not make the result non-empty.
///
/// ```
/// use std::borrow::Cow;
/// use rtipc::schema::{diff, Field, FieldType, Primitive, Schema};
///
/// let field = |name, offset, p| Field {
///     name: Cow::Borrowed(name),
///     offset,
///     size: Primitive::size(p),
///     ty: FieldType::Primitive(p),
///     since: 1,
/// };
/// let ours = Schema {
///     name: Cow::Borrowed("Joint"),
///     size: 8,
///     align: 4,
///     fields: Cow::Owned(vec![field("angle", 0, Primitive::F32), field("torque", 4, Primitive::F32)]),
///     appendable: false,
/// };
/// let theirs = Schema {
///     name: Cow::Borrowed("Joint"),
///     size: 16,
///     align: 8,
///     fields: Cow::Owned(vec![field("angle", 0, Primitive::F32), field("torque", 8, Primitive::F64)]),
///     appendable: false,
/// };
/// assert_eq!(
///     diff(&ours, &theirs).to_string(),
///     "size is 8 bytes here, 16 bytes in the peer's schema; \
///      alignment is 4 bytes here, 8 bytes in the peer's schema; \
///      field `torque`: f32 at offset 4 here, f64 at offset 8 in the peer's schema",
/// );
/// ```
pub fn diff(ours: &Schema, theirs: &Schema) -> SchemaDiff {
    let mut out = SchemaDiff::default();
    compare_schema(&mut out, "", ours, theirs);
    if ours.appendable || theirs.appendable {
        if let Err(e) = super::prefix(ours, theirs) {
            out.differences.push(Difference::Rule {
                reason: e.to_string(),
            });
        }
    }
    out
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn compare_schema(out: &mut SchemaDiff, path: &str, ours: &Schema, theirs: &Schema) {
    if ours.name() != theirs.name() {
        out.notes.push(Difference::TypeName {
            object: path.to_owned(),
            ours: ours.name().to_owned(),
            theirs: theirs.name().to_owned(),
        });
    }
    if ours.size != theirs.size {
        out.differences.push(Difference::Size {
            object: path.to_owned(),
            ours: ours.size,
            theirs: theirs.size,
        });
    }
    if ours.align != theirs.align {
        out.differences.push(Difference::Align {
            object: path.to_owned(),
            ours: ours.align,
            theirs: theirs.align,
        });
    }
    if ours.appendable != theirs.appendable {
        out.differences.push(Difference::Appendable {
            object: path.to_owned(),
            ours: ours.appendable,
            theirs: theirs.appendable,
        });
    }

    // By name; the first of duplicate names wins (decoded schemas have none).
    let mut their_fields: HashMap<&str, &Field> = HashMap::new();
    for field in theirs.fields() {
        their_fields.entry(field.name()).or_insert(field);
    }
    let our_names: HashSet<&str> = ours.fields().iter().map(Field::name).collect();

    let ours_common: Vec<&str> = ours
        .fields()
        .iter()
        .map(Field::name)
        .filter(|n| their_fields.contains_key(n))
        .collect();
    let theirs_common: Vec<&str> = theirs
        .fields()
        .iter()
        .map(Field::name)
        .filter(|n| our_names.contains(n))
        .collect();
    if ours_common != theirs_common {
        out.differences.push(Difference::Reordered {
            object: path.to_owned(),
            ours: ours_common.iter().map(|n| (*n).to_owned()).collect(),
            theirs: theirs_common.iter().map(|n| (*n).to_owned()).collect(),
        });
    }

    for field in ours.fields() {
        let field_path = join(path, field.name());
        match their_fields.get(field.name()) {
            Some(their) => compare_field(out, &field_path, field, their),
            None => out.differences.push(Difference::Missing {
                field: field_path,
                ty: field.ty.clone(),
                offset: field.offset,
            }),
        }
    }
    for field in theirs.fields() {
        if !our_names.contains(field.name()) {
            out.differences.push(Difference::Extra {
                field: join(path, field.name()),
                ty: field.ty.clone(),
                offset: field.offset,
            });
        }
    }
}

fn compare_field(out: &mut SchemaDiff, path: &str, ours: &Field, theirs: &Field) {
    if ours.since != theirs.since {
        out.differences.push(Difference::Revision {
            field: path.to_owned(),
            ours: ours.since,
            theirs: theirs.since,
        });
    }
    let at = out.differences.len();
    let comparable = compare_type(out, path, &ours.ty, &theirs.ty);
    if !comparable || ours.offset != theirs.offset {
        // Before the details found inside the field, so that they read in order.
        out.differences.insert(
            at,
            Difference::Changed {
                field: path.to_owned(),
                ours: ours.ty.clone(),
                ours_offset: ours.offset,
                theirs: theirs.ty.clone(),
                theirs_offset: theirs.offset,
            },
        );
    }
}

/// Compares two types found at the same place, reporting the differences inside objects and
/// arrays. Returns `false`, having reported nothing, when the types differ in a way only a
/// comparison of the whole types can show (`f32` against `u32`, an array against an object).
fn compare_type(out: &mut SchemaDiff, path: &str, ours: &FieldType, theirs: &FieldType) -> bool {
    match (ours, theirs) {
        (FieldType::Primitive(a), FieldType::Primitive(b)) => a == b,
        (
            FieldType::Array {
                elem: ours_elem,
                len: ours_len,
            },
            FieldType::Array {
                elem: theirs_elem,
                len: theirs_len,
            },
        ) => {
            let at = out.differences.len();
            if !compare_type(out, &format!("{path}[]"), ours_elem, theirs_elem) {
                return false;
            }
            if ours_len != theirs_len {
                out.differences.insert(
                    at,
                    Difference::ArrayLen {
                        field: path.to_owned(),
                        ours: *ours_len,
                        theirs: *theirs_len,
                    },
                );
            }
            true
        }
        (FieldType::Object(a), FieldType::Object(b)) => {
            compare_schema(out, path, a, b);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
