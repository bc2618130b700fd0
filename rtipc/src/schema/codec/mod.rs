//! The stable binary encoding of a [`Schema`], as stored in segment metadata: [`encode`]
//! documents the format, [`decode`] the checks it makes on untrusted input.

use std::collections::HashSet;
use std::fmt;

use super::{Field, FieldType, Link, Primitive, Schema};
use std::borrow::Cow;

/// Deepest nesting of arrays and objects that [`decode`] accepts.
///
/// The fields of the top-level schema are at depth 0; each array or nested object a type goes
/// through adds one. `[[u8; 4]; 2]` is at depth 2, an object's `[f32; 3]` field inside a
/// top-level field is at depth 2 as well.
pub const MAX_DEPTH: u32 = 16;
/// Most fields per schema (each nested object counted on its own) that [`decode`] accepts.
pub const MAX_FIELDS: u32 = 1024;
/// Longest type or field name, in bytes, that [`decode`] accepts.
pub const MAX_NAME_LEN: u32 = 255;
/// Longest encoding, in bytes, that [`decode`] accepts.
pub const MAX_ENCODED_LEN: usize = 1 << 20;

/// The four bytes every encoding starts with.
pub const MAGIC: [u8; 4] = *b"RTSC";
/// The newest format version that [`encode`] writes and [`decode`] reads: 2, which carries
/// the revisions of appendable types. [`encode`] writes version 1 for every schema without an
/// appendable type in it, so that builds that read only version 1 still read those.
pub const FORMAT_VERSION: u16 = 2;

/// The flags byte of a schema in format version 2: the type is `#[rtipc(appendable)]`.
const FLAG_APPENDABLE: u8 = 1;

/// The type tag of an array.
const TAG_ARRAY: u8 = 0x40;
/// The type tag of a nested object.
const TAG_OBJECT: u8 = 0x80;

/// The fewest bytes a field can take: an empty name's length, offset, size and a type tag.
/// Used to bound allocations by the bytes actually present.
const MIN_FIELD_LEN: usize = 4 + 8 + 8 + 1;

/// What kind of problem a [`DecodeError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends before the encoding does.
    Truncated,
    /// The input does not start with [`MAGIC`]: it is not an encoded schema.
    BadMagic,
    /// The input is in a format version this build does not read.
    UnsupportedVersion,
    /// The input continues after the end of the schema.
    TrailingBytes,
    /// A length, count or nesting depth is beyond the decoder's limits.
    LimitExceeded,
    /// A name is not valid UTF-8.
    InvalidUtf8,
    /// A type tag is none of the known ones.
    UnknownTag,
    /// The schema describes a layout that cannot exist, such as a field past the end.
    InvalidLayout,
}

/// Why an encoded schema could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeError {
    /// Byte offset in the encoding where the problem was found.
    pub offset: u64,
    /// What kind of problem it is.
    pub kind: DecodeErrorKind,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// Encodes a schema in rtipc's stable schema format.
///
/// The encoding is part of the segment format: a program in any language can read it with the
/// description below. All integers are little-endian and unaligned; there is no padding
/// anywhere.
///
/// ```text
/// encoding := magic version schema
/// magic    := "RTSC"                      4 bytes: 0x52 0x54 0x53 0x43
/// version  := u16                         1, or 2 when any type in it is appendable
///
/// schema   := name                        the type's name
///             size:  u64                  size_of the type, in bytes
///             align: u64                  align_of the type, in bytes
///             flags: u8                   version 2 only: bit 0 set for an appendable type,
///                                         the other bits zero
///             count: u32                  number of fields
///             field * count               in declaration order
///
/// field    := name                        the field's name ("0", "1", ... for tuple structs)
///             offset: u64                 byte offset from the start of the object
///             size:   u64                 size of the field, in bytes
///             type
///             since: u32                  version 2 only: the revision that added the field
///                                         (1 for every field of a type not appendable; never
///                                         less than the previous field's; 1 for the first)
///
/// name     := len: u32, len bytes of UTF-8 (no terminating NUL)
///
/// type     := tag: u8, then by tag:
///             1..=10  a primitive, no payload:
///                     1 u8, 2 u16, 3 u32, 4 u64, 5 i8, 6 i16, 7 i32, 8 i64, 9 f32, 10 f64
///             0x40    an array:  len: u64 (number of elements), then the element's type
///             0x80    an object: a nested schema
/// ```
///
/// The encoding ends exactly where the top-level schema ends: [`decode`] rejects trailing
/// bytes. It covers everything that [`fingerprint`](super::fingerprint) covers plus the type
/// names, so a decoded schema has the same fingerprint as the one encoded.
///
/// Any schema can be encoded; [`decode`] accepts the encoding when the schema is within its
/// limits ([`MAX_NAME_LEN`], [`MAX_FIELDS`], [`MAX_DEPTH`], [`MAX_ENCODED_LEN`]) and describes
/// a possible layout, which every schema emitted by `#[derive(Object)]` does as long as its
/// names are at most [`MAX_NAME_LEN`] bytes.
///
/// # Panics
///
/// If a name is 4 GiB or longer or a schema has 2³² fields or more.
pub fn encode(schema: &Schema) -> Vec<u8> {
    let v2 = has_revisions(schema);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(if v2 { 2u16 } else { 1 }).to_le_bytes());
    encode_schema(&mut out, schema, v2);
    out
}

/// Whether a schema needs format version 2: an appendable type, or a field of a revision
/// other than 1, anywhere in it.
fn has_revisions(schema: &Schema) -> bool {
    fn ty(t: &FieldType) -> bool {
        match t {
            FieldType::Primitive(_) => false,
            FieldType::Array { elem, .. } => ty(elem),
            FieldType::Object(s) => has_revisions(s),
        }
    }
    schema.appendable || schema.fields().iter().any(|f| f.since != 1 || ty(&f.ty))
}

fn encode_schema(out: &mut Vec<u8>, schema: &Schema, v2: bool) {
    encode_name(out, schema.name());
    out.extend_from_slice(&schema.size.to_le_bytes());
    out.extend_from_slice(&schema.align.to_le_bytes());
    if v2 {
        out.push(if schema.appendable {
            FLAG_APPENDABLE
        } else {
            0
        });
    }
    let fields = schema.fields();
    let count = u32::try_from(fields.len()).expect("a schema has fewer than 2^32 fields");
    out.extend_from_slice(&count.to_le_bytes());
    for field in fields {
        encode_name(out, field.name());
        out.extend_from_slice(&field.offset.to_le_bytes());
        out.extend_from_slice(&field.size.to_le_bytes());
        encode_type(out, &field.ty, v2);
        if v2 {
            out.extend_from_slice(&field.since.to_le_bytes());
        }
    }
}

fn encode_type(out: &mut Vec<u8>, ty: &FieldType, v2: bool) {
    match ty {
        FieldType::Primitive(p) => out.push(p.tag()),
        FieldType::Array { elem, len } => {
            out.push(TAG_ARRAY);
            out.extend_from_slice(&len.to_le_bytes());
            encode_type(out, elem, v2);
        }
        FieldType::Object(schema) => {
            out.push(TAG_OBJECT);
            encode_schema(out, schema, v2);
        }
    }
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    let len = u32::try_from(name.len()).expect("a name is shorter than 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
}

/// Decodes a schema encoded by [`encode`], treating `bytes` as untrusted.
///
/// Returns a schema made of owned values ([`Cow::Owned`], [`Link::Owned`]), or a
/// [`DecodeError`] for every input that is not the encoding of a possible layout.
///
/// For every input it returns `Ok` or `Err`, never panics, allocates memory proportional to
/// the input's length at most, and runs in time linear in the input's length. It rejects, with a [`DecodeError`] naming the byte offset and
/// the problem:
///
/// - inputs longer than [`MAX_ENCODED_LEN`], a wrong magic, a version other than 1 and
///   [`FORMAT_VERSION`], inputs that end early and trailing bytes after the schema;
/// - unknown flags, revision 0, a revision other than 1 in a type that is not appendable or
///   for the first field, a revision lower than the previous field's, and a version-2
///   encoding of a schema that version 1 can encode (each schema has one encoding);
/// - names longer than [`MAX_NAME_LEN`] bytes or not valid UTF-8, schemas with more than
///   [`MAX_FIELDS`] fields, and types nested deeper than [`MAX_DEPTH`] arrays and objects;
/// - unknown type tags;
/// - layouts that cannot exist: an alignment that is not a power of two; a size that is not a
///   multiple of the alignment; a field whose recorded size differs from its type's size (an
///   array's size being its element's size times its length, computed without overflow); a
///   field that does not fit in the object (`offset + size > object size`, computed without
///   overflow); a field offset that is not a multiple of the field type's alignment; a field
///   type aligned more strictly than the object; two fields that overlap; an empty or
///   duplicated field name. Nested object schemas are checked by the same rules.
pub fn decode(bytes: &[u8]) -> Result<Schema, DecodeError> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(DecodeError {
            offset: MAX_ENCODED_LEN as u64,
            kind: DecodeErrorKind::LimitExceeded,
            reason: format!(
                "the encoding is {} bytes long, more than the {MAX_ENCODED_LEN} bytes a schema \
                 may take",
                bytes.len()
            ),
        });
    }
    let mut r = Reader {
        bytes,
        pos: 0,
        v2: false,
    };

    let head = &bytes[..bytes.len().min(MAGIC.len())];
    if head != &MAGIC[..head.len()] {
        return Err(r.error(
            0,
            DecodeErrorKind::BadMagic,
            format!(
                "the input starts with {head:02x?}, not the magic \"RTSC\": it is not an \
                 encoded rtipc schema"
            ),
        ));
    }
    r.take(MAGIC.len(), format_args!("magic"))?;
    let version_at = r.pos;
    let version = r.u16(format_args!("format version"))?;
    if version != 1 && version != 2 {
        return Err(r.error(
            version_at,
            DecodeErrorKind::UnsupportedVersion,
            format!(
                "schema format version {version} is not supported (this build reads versions \
                 1 and {FORMAT_VERSION}); build both sides with compatible rtipc versions"
            ),
        ));
    }
    r.v2 = version == 2;

    let schema = r.schema(0)?;
    // One encoding per schema: version 2 only where version 1 cannot say it.
    if r.v2 && !has_revisions(&schema) {
        return Err(r.error(
            version_at,
            DecodeErrorKind::InvalidLayout,
            "format version 2 without an appendable type or a revision: such a schema is \
             encoded as version 1"
                .to_owned(),
        ));
    }
    if r.pos != bytes.len() {
        return Err(r.error(
            r.pos,
            DecodeErrorKind::TrailingBytes,
            format!(
                "the schema ends here but {} more bytes follow; the recorded length of the \
                 encoding is wrong",
                bytes.len() - r.pos
            ),
        ));
    }
    Ok(schema)
}

/// A cursor over untrusted bytes. Every read is bounds-checked and reports what it was
/// reading when the input ends.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Format version 2: schemas carry flags and fields their revisions.
    v2: bool,
}

impl<'a> Reader<'a> {
    fn error(&self, at: usize, kind: DecodeErrorKind, reason: String) -> DecodeError {
        DecodeError {
            offset: at as u64,
            kind,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: fmt::Arguments<'_>) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error(
                self.pos,
                DecodeErrorKind::Truncated,
                format!(
                    "the encoding is cut short: the {what} takes {n} bytes here, {} remain",
                    self.remaining()
                ),
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: fmt::Arguments<'_>) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: fmt::Arguments<'_>) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: fmt::Arguments<'_>) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: fmt::Arguments<'_>) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: fmt::Arguments<'_>) -> Result<u64, DecodeError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed UTF-8 name, borrowed from the input.
    fn name(&mut self, what: fmt::Arguments<'_>) -> Result<&'a str, DecodeError> {
        let len_at = self.pos;
        let len = self.u32(format_args!("length of the {what}"))?;
        if len > MAX_NAME_LEN {
            return Err(self.error(
                len_at,
                DecodeErrorKind::LimitExceeded,
                format!("the {what} is {len} bytes long, more than the limit of {MAX_NAME_LEN}"),
            ));
        }
        let at = self.pos;
        // `len <= MAX_NAME_LEN`, so the conversion cannot truncate.
        let raw = self.take(len as usize, what)?;
        std::str::from_utf8(raw).map_err(|e| {
            self.error(
                at + e.valid_up_to(),
                DecodeErrorKind::InvalidUtf8,
                format!("the {what} is not valid UTF-8"),
            )
        })
    }

    /// Field `index` of the schema `name` (`size` bytes, aligned to `align`), whose fields
    /// are at nesting depth `depth`: the field, and its span `(offset, end, position of its
    /// encoding)` for the overlap check.
    fn field(
        &mut self,
        depth: u32,
        name: &str,
        size: u64,
        align: u64,
        index: usize,
        names: &mut HashSet<&'a str>,
    ) -> Result<(Field, (u64, u64, usize)), DecodeError> {
        let field_at = self.pos;
        let field_name = self.name(format_args!("name of field {index} of `{name}`"))?;
        if field_name.is_empty() {
            return Err(self.error(
                field_at,
                DecodeErrorKind::InvalidLayout,
                format!("field {index} of `{name}` has an empty name"),
            ));
        }
        if !names.insert(field_name) {
            return Err(self.error(
                field_at,
                DecodeErrorKind::InvalidLayout,
                format!("`{name}` has two fields named `{field_name}`"),
            ));
        }
        let offset_at = self.pos;
        let offset = self.u64(format_args!("offset of field `{field_name}`"))?;
        let fsize_at = self.pos;
        let fsize = self.u64(format_args!("size of field `{field_name}`"))?;
        let decoded = self.ty(depth, field_name)?;
        let since_at = self.pos;
        let since = if self.v2 {
            self.u32(format_args!("revision of field `{field_name}`"))?
        } else {
            1
        };
        if since == 0 {
            return Err(self.error(
                since_at,
                DecodeErrorKind::InvalidLayout,
                format!("field `{field_name}` has revision 0; revisions start at 1"),
            ));
        }

        if fsize != decoded.size {
            return Err(self.error(
                fsize_at,
                DecodeErrorKind::InvalidLayout,
                format!(
                    "field `{field_name}` is recorded as {fsize} bytes but its type {} is \
                     {} bytes",
                    decoded.ty, decoded.size
                ),
            ));
        }
        let end = offset.checked_add(fsize).filter(|&end| end <= size);
        let Some(end) = end else {
            return Err(self.error(
                offset_at,
                DecodeErrorKind::InvalidLayout,
                format!(
                    "field `{field_name}` ({fsize} bytes at offset {offset}) does not fit \
                     in `{name}`, which is {size} bytes"
                ),
            ));
        };
        if offset % decoded.align != 0 {
            return Err(self.error(
                offset_at,
                DecodeErrorKind::InvalidLayout,
                format!(
                    "field `{field_name}` is at offset {offset}, not a multiple of its \
                     type's alignment {}",
                    decoded.align
                ),
            ));
        }
        if decoded.align > align {
            return Err(self.error(
                offset_at,
                DecodeErrorKind::InvalidLayout,
                format!(
                    "field `{field_name}` needs alignment {} but `{name}` is only aligned \
                     to {align}",
                    decoded.align
                ),
            ));
        }
        let field = Field {
            name: Cow::Owned(field_name.to_owned()),
            offset,
            size: fsize,
            ty: decoded.ty,
            since,
        };
        Ok((field, (offset, end, field_at)))
    }

    /// Checks a field's revision: 1 throughout a type that is not appendable; in an
    /// appendable one, 1 for the first field and never lower than the previous field's.
    fn revision(
        &self,
        name: &str,
        appendable: bool,
        previous: Option<&Field>,
        field: &Field,
        at: usize,
    ) -> Result<(), DecodeError> {
        let before = previous.map_or(1, |f| f.since);
        if ((!appendable || previous.is_none()) && field.since != 1) || field.since < before {
            return Err(self.error(
                at,
                DecodeErrorKind::InvalidLayout,
                format!(
                    "field `{}` of `{name}` has revision {} after revision {before}{}",
                    field.name,
                    field.since,
                    if appendable {
                        ""
                    } else {
                        " in a type that is not appendable"
                    }
                ),
            ));
        }
        Ok(())
    }

    /// A schema whose fields are at nesting depth `depth`.
    fn schema(&mut self, depth: u32) -> Result<Schema, DecodeError> {
        let name = self.name(format_args!("type name"))?;
        let size_at = self.pos;
        let size = self.u64(format_args!("size of `{name}`"))?;
        let align_at = self.pos;
        let align = self.u64(format_args!("alignment of `{name}`"))?;
        if !align.is_power_of_two() {
            return Err(self.error(
                align_at,
                DecodeErrorKind::InvalidLayout,
                format!("`{name}` has alignment {align}, which is not a power of two"),
            ));
        }
        if size % align != 0 {
            return Err(self.error(
                size_at,
                DecodeErrorKind::InvalidLayout,
                format!("`{name}` is {size} bytes, not a multiple of its alignment {align}"),
            ));
        }
        let flags_at = self.pos;
        let flags = if self.v2 {
            self.u8(format_args!("flags of `{name}`"))?
        } else {
            0
        };
        if flags & !FLAG_APPENDABLE != 0 {
            return Err(self.error(
                flags_at,
                DecodeErrorKind::InvalidLayout,
                format!("`{name}` has flags {flags:#04x}; only bit 0 (appendable) is defined"),
            ));
        }
        let appendable = flags & FLAG_APPENDABLE != 0;
        let count_at = self.pos;
        let count = self.u32(format_args!("field count of `{name}`"))?;
        if count > MAX_FIELDS {
            return Err(self.error(
                count_at,
                DecodeErrorKind::LimitExceeded,
                format!("`{name}` has {count} fields, more than the limit of {MAX_FIELDS}"),
            ));
        }
        // `count <= MAX_FIELDS`, so the conversion cannot truncate.
        let count = count as usize;
        if count > self.remaining() / MIN_FIELD_LEN {
            return Err(self.error(
                count_at,
                DecodeErrorKind::Truncated,
                format!(
                    "`{name}` declares {count} fields but only {} bytes remain, too few for \
                     them; the schema was cut short",
                    self.remaining()
                ),
            ));
        }

        // Bounded by the bytes present (checked above), not only by the untrusted count.
        let mut fields = Vec::with_capacity(count);
        let mut names = HashSet::with_capacity(count);
        // (offset, end, position of the field's encoding, index) for the overlap check.
        let mut spans = Vec::with_capacity(count);
        for index in 0..count {
            let (field, span) = self.field(depth, name, size, align, index, &mut names)?;
            self.revision(name, appendable, fields.last(), &field, span.2)?;
            spans.push((span.0, span.1, span.2, index));
            fields.push(field);
        }

        // Zero-sized fields occupy no bytes and overlap nothing.
        spans.retain(|&(offset, end, _, _)| end > offset);
        spans.sort_unstable();
        for pair in spans.windows(2) {
            let (_, prev_end, _, prev) = pair[0];
            let (offset, _, at, this) = pair[1];
            if offset < prev_end {
                return Err(self.error(
                    at,
                    DecodeErrorKind::InvalidLayout,
                    format!(
                        "fields `{}` and `{}` of `{name}` overlap",
                        fields[prev].name, fields[this].name
                    ),
                ));
            }
        }

        Ok(Schema {
            name: Cow::Owned(name.to_owned()),
            size,
            align,
            fields: Cow::Owned(fields),
            appendable,
        })
    }

    /// The type of field `field`, which sits at nesting depth `depth`.
    fn ty(&mut self, depth: u32, field: &str) -> Result<Decoded, DecodeError> {
        let tag_at = self.pos;
        let tag = self.u8(format_args!("type of field `{field}`"))?;
        if let Some(p) = Primitive::from_tag(tag) {
            return Ok(Decoded {
                ty: FieldType::Primitive(p),
                size: p.size(),
                align: p.size(),
            });
        }
        if tag != TAG_ARRAY && tag != TAG_OBJECT {
            return Err(self.error(
                tag_at,
                DecodeErrorKind::UnknownTag,
                format!(
                    "the type of field `{field}` has tag {tag:#04x}, which is none of the \
                     primitives 1..=10, array {TAG_ARRAY:#04x} or object {TAG_OBJECT:#04x}"
                ),
            ));
        }
        if depth >= MAX_DEPTH {
            return Err(self.error(
                tag_at,
                DecodeErrorKind::LimitExceeded,
                format!(
                    "the type of field `{field}` nests arrays and objects more than \
                     {MAX_DEPTH} deep"
                ),
            ));
        }
        if tag == TAG_ARRAY {
            let len_at = self.pos;
            let len = self.u64(format_args!("array length of field `{field}`"))?;
            let elem = self.ty(depth + 1, field)?;
            let Some(size) = elem.size.checked_mul(len) else {
                return Err(self.error(
                    len_at,
                    DecodeErrorKind::InvalidLayout,
                    format!(
                        "field `{field}` is an array of {len} elements of {} bytes, larger \
                         than any possible type",
                        elem.size
                    ),
                ));
            };
            Ok(Decoded {
                ty: FieldType::Array {
                    elem: Link::Owned(Box::new(elem.ty)),
                    len,
                },
                size,
                align: elem.align,
            })
        } else {
            let schema = self.schema(depth + 1)?;
            Ok(Decoded {
                size: schema.size,
                align: schema.align,
                ty: FieldType::Object(Link::Owned(Box::new(schema))),
            })
        }
    }
}

/// A decoded type with its size and alignment, computed without overflow.
struct Decoded {
    ty: FieldType,
    size: u64,
    align: u64,
}

#[cfg(test)]
mod tests;
