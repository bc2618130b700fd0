//! Schema evolution: the prefix rule between two revisions of an appendable type, [`prefix`].
//!
//! A type marked `#[rtipc(appendable)]` may gain fields at its end in later revisions
//! (`#[rtipc(since = N)]`). Two builds whose schemas of such a type differ may still share a
//! channel when one schema's fields are an exact prefix of the other's: the same names, types,
//! offsets, sizes and revisions, recursively through nested objects and arrays, which the rule
//! never changes. The older layout is then the first bytes of the newer one, and the side with
//! the shorter type reads or writes those bytes in place.

use std::fmt;

use super::{Field, FieldType, Schema};

/// Two revisions of an appendable type that the prefix rule relates: which side has which
/// revision, and what the longer one has that the shorter lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evolution {
    /// Our revision of the type ([`Schema::revision`]).
    pub ours: u32,
    /// The peer's revision.
    pub theirs: u32,
    /// Our size in bytes.
    pub ours_size: u64,
    /// The peer's size in bytes.
    pub theirs_size: u64,
    /// The fields the longer schema has and the shorter lacks, in order.
    pub appended: Vec<String>,
}

impl Evolution {
    /// Whether our type is the shorter one (a strict prefix of the peer's).
    pub fn ours_is_older(&self) -> bool {
        self.ours_size < self.theirs_size
    }
}

impl fmt::Display for Evolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "revision {} here, {} in the peer's schema",
            self.ours, self.theirs
        )?;
        if !self.appended.is_empty() {
            let whose = if self.ours_is_older() {
                "the peer's"
            } else {
                "ours"
            };
            write!(f, "; only {whose} has ")?;
            for (i, name) in self.appended.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "`{name}`")?;
            }
        }
        Ok(())
    }
}

/// Why the prefix rule does not relate two schemas.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotPrefix {
    /// One side's type is not `#[rtipc(appendable)]`: it matches exactly or not at all.
    NotAppendable {
        /// Whether ours is appendable.
        ours: bool,
        /// Whether the peer's is.
        theirs: bool,
    },
    /// A field that both revisions have differs: the rule only appends whole fields at the
    /// end.
    ChangedField {
        /// Its name in our schema.
        field: String,
        /// Its position among the fields.
        index: usize,
        /// Whether the difference is inside a nested object or array, which the rule never
        /// changes.
        nested: bool,
    },
    /// The two revisions have the same fields but a different size or alignment.
    SameFieldsOtherLayout,
    /// The shorter revision's size is not where the longer one's first appended field
    /// starts.
    TailMismatch {
        /// The shorter revision's size.
        shorter_size: u64,
        /// The offset of the longer revision's first appended field.
        appended_at: u64,
    },
}

impl fmt::Display for NotPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotPrefix::NotAppendable { ours, theirs } => {
                let who = match (ours, theirs) {
                    (false, false) => "neither build's type is",
                    (false, true) => "our type is not",
                    (true, false) => "the peer's type is not",
                    (true, true) => "both types are",
                };
                write!(
                    f,
                    "the prefix rule does not apply: {who} `#[rtipc(appendable)]`, so the \
                     schemas must match exactly"
                )
            }
            NotPrefix::ChangedField {
                field,
                index,
                nested: false,
            } => write!(
                f,
                "the prefix rule does not apply: field `{field}` (number {}) differs, and a \
                 later revision may only append fields at the end",
                index + 1
            ),
            NotPrefix::ChangedField {
                field,
                index,
                nested: true,
            } => write!(
                f,
                "the prefix rule does not apply: field `{field}` (number {}) is a nested \
                 object or array that changed; only whole fields are appended, to the outer \
                 struct",
                index + 1
            ),
            NotPrefix::SameFieldsOtherLayout => f.write_str(
                "the prefix rule does not apply: the same fields with another size or alignment",
            ),
            NotPrefix::TailMismatch {
                shorter_size,
                appended_at,
            } => write!(
                f,
                "the prefix rule does not apply: the shorter revision is {shorter_size} bytes \
                 but the longer one's first appended field is at offset {appended_at}"
            ),
        }
    }
}

/// Relates our schema of a type to the peer's by the prefix rule: `Ok` when both are
/// appendable and one's fields are an exact prefix of the other's (same names, offsets,
/// sizes, types and revisions; nested objects and arrays equal), with the shorter one's size
/// exactly where the longer one's first appended field starts. Equal schemas are related too
/// (nothing appended).
pub fn prefix(ours: &Schema, theirs: &Schema) -> Result<Evolution, NotPrefix> {
    if !ours.appendable || !theirs.appendable {
        return Err(NotPrefix::NotAppendable {
            ours: ours.appendable,
            theirs: theirs.appendable,
        });
    }
    let (a, b) = (ours.fields(), theirs.fields());
    let common = a.len().min(b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate().take(common) {
        if x != y {
            return Err(NotPrefix::ChangedField {
                field: x.name().to_owned(),
                index: i,
                nested: same_place(x, y)
                    && matches!(
                        (&x.ty, &y.ty),
                        (FieldType::Object(_), FieldType::Object(_))
                            | (FieldType::Array { .. }, FieldType::Array { .. })
                    ),
            });
        }
    }
    let (shorter, longer) = if a.len() <= b.len() {
        (ours, theirs)
    } else {
        (theirs, ours)
    };
    let appended: Vec<String> = longer.fields()[common..]
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    match longer.fields().get(common) {
        None if shorter.size != longer.size || shorter.align != longer.align => {
            return Err(NotPrefix::SameFieldsOtherLayout);
        }
        Some(first) if first.offset != shorter.size || shorter.size > longer.size => {
            return Err(NotPrefix::TailMismatch {
                shorter_size: shorter.size,
                appended_at: first.offset,
            });
        }
        _ => {}
    }
    Ok(Evolution {
        ours: ours.revision(),
        theirs: theirs.revision(),
        ours_size: ours.size,
        theirs_size: theirs.size,
        appended,
    })
}

/// Whether two fields have the same name, offset and revision (so what differs is the type).
fn same_place(x: &Field, y: &Field) -> bool {
    x.name() == y.name() && x.offset == y.offset && x.since == y.since
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::schema::{Link, Primitive};

    fn field(name: &'static str, offset: u64, ty: FieldType, since: u32) -> Field {
        Field {
            name: Cow::Borrowed(name),
            offset,
            size: ty.size(),
            ty,
            since,
        }
    }

    fn u64f(name: &'static str, offset: u64, since: u32) -> Field {
        field(name, offset, FieldType::Primitive(Primitive::U64), since)
    }

    fn schema(fields: Vec<Field>, appendable: bool) -> Schema {
        let size = fields.last().map_or(0, |f| f.offset + f.size);
        Schema {
            name: Cow::Borrowed("Pose"),
            size,
            align: 8,
            fields: Cow::Owned(fields),
            appendable,
        }
    }

    fn rev1() -> Schema {
        schema(vec![u64f("x", 0, 1), u64f("y", 8, 1)], true)
    }

    fn rev2() -> Schema {
        schema(
            vec![u64f("x", 0, 1), u64f("y", 8, 1), u64f("z", 16, 2)],
            true,
        )
    }

    #[test]
    fn a_prefix_relates_both_ways() {
        let e = prefix(&rev1(), &rev2()).unwrap();
        assert_eq!(
            (e.ours, e.theirs, e.ours_size, e.theirs_size),
            (1, 2, 16, 24)
        );
        assert!(e.ours_is_older());
        assert_eq!(e.appended, ["z"]);
        assert_eq!(
            e.to_string(),
            "revision 1 here, 2 in the peer's schema; only the peer's has `z`"
        );
        let e = prefix(&rev2(), &rev1()).unwrap();
        assert_eq!((e.ours, e.theirs), (2, 1));
        assert!(!e.ours_is_older());
        assert_eq!(
            e.to_string(),
            "revision 2 here, 1 in the peer's schema; only ours has `z`"
        );
        let same = prefix(&rev2(), &rev2()).unwrap();
        assert!(same.appended.is_empty());
        assert_ne!(rev1().fingerprint(), rev2().fingerprint());
    }

    #[test]
    fn the_rule_applies_only_to_appendable_types() {
        let mut plain = rev1();
        plain.appendable = false;
        assert_eq!(
            prefix(&plain, &rev2()),
            Err(NotPrefix::NotAppendable {
                ours: false,
                theirs: true
            })
        );
        assert_eq!(
            prefix(&rev2(), &plain).unwrap_err().to_string(),
            "the prefix rule does not apply: the peer's type is not `#[rtipc(appendable)]`, \
             so the schemas must match exactly"
        );
        // Being appendable is part of the fingerprint.
        let mut a = rev1();
        a.appendable = false;
        assert_ne!(a.fingerprint(), rev1().fingerprint());
    }

    #[test]
    fn a_change_in_the_middle_is_refused_with_its_reason() {
        let mut changed = rev2();
        changed.fields.to_mut()[1] = field("y", 8, FieldType::Primitive(Primitive::F64), 1);
        let e = prefix(&rev1(), &changed).unwrap_err();
        assert_eq!(
            e,
            NotPrefix::ChangedField {
                field: "y".into(),
                index: 1,
                nested: false
            }
        );
        assert!(
            e.to_string().contains("field `y` (number 2) differs"),
            "{e}"
        );
        let mut renamed = rev2();
        renamed.fields.to_mut()[0].name = Cow::Borrowed("x0");
        assert!(matches!(
            prefix(&rev1(), &renamed),
            Err(NotPrefix::ChangedField { index: 0, .. })
        ));
        // A revision number that differs on a common field is a change too.
        let mut later = rev2();
        later.fields.to_mut()[1].since = 2;
        assert!(prefix(&rev1(), &later).is_err());
    }

    #[test]
    fn a_nested_object_never_changes() {
        static INNER_A: Schema = Schema {
            name: Cow::Borrowed("Inner"),
            size: 8,
            align: 8,
            fields: Cow::Borrowed(&[Field {
                name: Cow::Borrowed("a"),
                offset: 0,
                size: 8,
                ty: FieldType::Primitive(Primitive::U64),
                since: 1,
            }]),
            appendable: true,
        };
        let mut inner_b = INNER_A.clone();
        inner_b.fields.to_mut()[0].ty = FieldType::Primitive(Primitive::I64);
        let obj = |s: Schema| FieldType::Object(Link::Owned(Box::new(s)));
        let a = schema(vec![field("inner", 0, obj(INNER_A.clone()), 1)], true);
        let b = schema(
            vec![field("inner", 0, obj(inner_b), 1), u64f("z", 8, 2)],
            true,
        );
        let e = prefix(&a, &b).unwrap_err();
        assert!(
            matches!(e, NotPrefix::ChangedField { nested: true, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("nested object or array that changed"),
            "{e}"
        );
    }

    #[test]
    fn a_shorter_revision_must_end_where_the_appended_fields_start() {
        let mut gap = rev2();
        gap.fields.to_mut()[2].offset = 24;
        gap.size = 32;
        assert_eq!(
            prefix(&rev1(), &gap),
            Err(NotPrefix::TailMismatch {
                shorter_size: 16,
                appended_at: 24
            })
        );
        let mut bigger = rev1();
        bigger.size = 24;
        assert_eq!(
            prefix(&bigger, &rev1()),
            Err(NotPrefix::SameFieldsOtherLayout)
        );
    }
}
