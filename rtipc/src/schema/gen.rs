//! Generators: object schemas as a C header ([`c_header`]), a Rust declaration
//! ([`rust_declaration`]) and a JSON document ([`json`]).
//!
//! All three start from the same table of types, built by [`Table::new`]: every object type
//! reachable from the given schemas, each once, nested types before the types that use them.
//! The schemas may have been decoded from an untrusted segment, so nothing here trusts a value
//! in them: arithmetic saturates, names are sanitised before they become identifiers, and the
//! walk over nested objects is a loop over an explicit stack that stops at [`MAX_DEPTH`], never
//! a recursion as deep as the schema.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use super::{encode, fingerprint, id_from_name, Field, FieldType, Primitive, Schema, MAX_DEPTH};

/// Appends formatted text to a `String`, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt(&mut *$out, format_args!($($arg)*));
    }};
}

// ---------------------------------------------------------------------------------------------
// The table of types
// ---------------------------------------------------------------------------------------------

/// The innermost type of a field, under all of its arrays.
#[derive(Clone, Copy)]
enum Leaf<'s> {
    Prim(Primitive),
    /// An object type: an index into [`Table::types`].
    Type(usize),
    /// An object nested deeper than [`MAX_DEPTH`], which [`decode`](super::decode) would
    /// reject: emitted as opaque words of its size, its fields not walked.
    Opaque(&'s Schema),
}

impl Leaf<'_> {
    fn hash(&self, h: &mut DefaultHasher) {
        match self {
            Leaf::Prim(p) => (0u8, p.tag()).hash(h),
            Leaf::Type(j) => (1u8, j).hash(h),
            Leaf::Opaque(s) => (2u8, s.name(), s.size, s.align).hash(h),
        }
    }

    fn same(&self, other: &Leaf<'_>) -> bool {
        match (self, other) {
            (Leaf::Prim(a), Leaf::Prim(b)) => a == b,
            (Leaf::Type(a), Leaf::Type(b)) => a == b,
            (Leaf::Opaque(a), Leaf::Opaque(b)) => {
                a.name == b.name && a.size == b.size && a.align == b.align
            }
            _ => false,
        }
    }
}

/// One field of a type: the schema's field, its array lengths (outermost first) and its leaf.
struct Member<'s> {
    field: &'s Field,
    dims: Vec<u64>,
    leaf: Leaf<'s>,
}

impl Member<'_> {
    fn same(&self, other: &Member<'_>) -> bool {
        self.field.name == other.field.name
            && self.field.offset == other.field.offset
            && self.field.size == other.field.size
            && self.dims == other.dims
            && self.leaf.same(&other.leaf)
    }
}

/// One object type of the table.
struct TypeDef<'s> {
    schema: &'s Schema,
    /// The fields, in the schema's order.
    members: Vec<Member<'s>>,
    /// How deeply arrays and objects nest below the type's fields, as [`decode`](super::decode)
    /// counts it, capped at `MAX_DEPTH + 1` (also for a type with an opaque leaf).
    height: u32,
    /// Whether [`encode`] takes every name and field count of the type (all fit in a `u32`).
    encodable: bool,
    /// Whether the type or a type nested in it has an opaque leaf: then it depends on the
    /// depth at which it was found.
    opaque: bool,
}

impl TypeDef<'_> {
    /// A hash of what [`TypeDef::same`] compares.
    fn key(&self) -> u64 {
        let mut h = DefaultHasher::new();
        let s = self.schema;
        (s.name(), s.size, s.align, self.members.len()).hash(&mut h);
        for m in &self.members {
            (m.field.name(), m.field.offset, m.field.size, &m.dims).hash(&mut h);
            m.leaf.hash(&mut h);
        }
        h.finish()
    }

    fn same(&self, other: &TypeDef<'_>) -> bool {
        self.schema.name == other.schema.name
            && self.schema.size == other.schema.size
            && self.schema.align == other.schema.align
            && self.members.len() == other.members.len()
            && self
                .members
                .iter()
                .zip(&other.members)
                .all(|(a, b)| a.same(b))
    }

    /// Whether the type is within [`MAX_DEPTH`] when it is a top-level object: then
    /// [`fingerprint`] and [`encode`] recurse at most that deep.
    fn within_depth(&self) -> bool {
        self.height <= MAX_DEPTH
    }
}

/// A type being walked: its members so far, and the depth of its fields.
struct Frame<'s> {
    schema: &'s Schema,
    depth: u64,
    members: Vec<Member<'s>>,
}

/// Every object type reachable from the top-level objects, each once, in dependency order.
struct Table<'s> {
    types: Vec<TypeDef<'s>>,
    /// The top-level objects: the index of the type and the id.
    roots: Vec<(usize, u64)>,
    /// Types already in the table by address and depth (`ANY_DEPTH` for a type without an
    /// opaque leaf, which is the same at every depth): a shortcut for shared schemas.
    seen: HashMap<(*const Schema, u64), usize>,
    /// Types by [`TypeDef::key`], to find an equal type without comparing with all.
    buckets: HashMap<u64, Vec<usize>>,
}

/// The depth in [`Table::seen`] of a type that does not depend on its depth.
const ANY_DEPTH: u64 = u64::MAX;

/// The array lengths around a type, outermost first, and the type inside them.
fn unwrap_arrays(mut ty: &FieldType) -> (Vec<u64>, &FieldType) {
    let mut dims = Vec::new();
    while let FieldType::Array { elem, len } = ty {
        dims.push(*len);
        ty = elem.get();
    }
    (dims, ty)
}

/// A `usize` as a `u32`, saturating.
fn sat_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'s> Table<'s> {
    fn new(objects: &[(&'s Schema, u64)]) -> Table<'s> {
        let mut table = Table {
            types: Vec::new(),
            roots: Vec::new(),
            seen: HashMap::new(),
            buckets: HashMap::new(),
        };
        for &(schema, id) in objects {
            let index = table.add(schema);
            table.roots.push((index, id));
        }
        table
    }

    /// Adds `root` and every type nested in it; returns the index of `root`.
    fn add(&mut self, root: &'s Schema) -> usize {
        let mut stack = vec![Frame {
            schema: root,
            depth: 0,
            members: Vec::new(),
        }];
        let mut last = 0;
        while let Some(top) = stack.last_mut() {
            if let Some(index) = self.find(top.schema, top.depth) {
                stack.pop();
                last = index;
                continue;
            }
            let Some(field) = top.schema.fields().get(top.members.len()) else {
                if let Some(frame) = stack.pop() {
                    last = self.intern(frame);
                }
                continue;
            };
            let (dims, inner) = unwrap_arrays(&field.ty);
            let leaf = match inner {
                FieldType::Object(schema) => {
                    let schema: &'s Schema = schema.get();
                    let depth = top.depth.saturating_add(dims.len() as u64);
                    if depth >= u64::from(MAX_DEPTH) {
                        Leaf::Opaque(schema)
                    } else if let Some(index) = self.find(schema, depth + 1) {
                        Leaf::Type(index)
                    } else {
                        // Walk the nested type first; this field is looked at again after.
                        stack.push(Frame {
                            schema,
                            depth: depth + 1,
                            members: Vec::new(),
                        });
                        continue;
                    }
                }
                FieldType::Primitive(p) => Leaf::Prim(*p),
                // `unwrap_arrays` returns the type under every array.
                FieldType::Array { .. } => Leaf::Prim(Primitive::U8),
            };
            top.members.push(Member { field, dims, leaf });
        }
        last
    }

    /// The type of `schema` if it is in the table already, found at `depth`.
    fn find(&self, schema: &Schema, depth: u64) -> Option<usize> {
        let addr = schema as *const Schema;
        let found = self.seen.get(&(addr, ANY_DEPTH));
        found.or_else(|| self.seen.get(&(addr, depth))).copied()
    }

    /// The index of the type walked in `frame`: an equal one already in the table, or a new one.
    fn intern(&mut self, frame: Frame<'s>) -> usize {
        let def = self.type_def(frame.schema, frame.members);
        let key = def.key();
        let bucket = self.buckets.entry(key).or_default();
        let found = bucket.iter().copied().find(|&i| self.types[i].same(&def));
        let index = found.unwrap_or_else(|| {
            bucket.push(self.types.len());
            self.types.push(def);
            self.types.len() - 1
        });
        let depth = if self.types[index].opaque {
            frame.depth
        } else {
            ANY_DEPTH
        };
        self.seen
            .insert((frame.schema as *const Schema, depth), index);
        index
    }

    fn type_def(&self, schema: &'s Schema, members: Vec<Member<'s>>) -> TypeDef<'s> {
        let cap = MAX_DEPTH + 1;
        let mut height = 0u32;
        let mut encodable =
            u32::try_from(schema.name().len()).is_ok() && u32::try_from(members.len()).is_ok();
        let mut opaque = false;
        for m in &members {
            let arrays = sat_u32(m.dims.len());
            let h = match m.leaf {
                Leaf::Prim(_) => arrays,
                Leaf::Type(j) => {
                    let t = &self.types[j];
                    encodable &= t.encodable;
                    opaque |= t.opaque;
                    arrays.saturating_add(1).saturating_add(t.height)
                }
                Leaf::Opaque(_) => {
                    opaque = true;
                    cap
                }
            };
            encodable &= u32::try_from(m.field.name().len()).is_ok();
            height = height.max(h.min(cap));
        }
        TypeDef {
            schema,
            members,
            height,
            encodable,
            opaque,
        }
    }

    /// The size of a leaf in bytes.
    fn leaf_size(&self, leaf: Leaf<'_>) -> u64 {
        match leaf {
            Leaf::Prim(p) => p.size(),
            Leaf::Type(j) => self.types[j].schema.size,
            Leaf::Opaque(s) => s.size,
        }
    }

    /// The alignment a leaf has where it is emitted: an opaque leaf's is its word's.
    fn leaf_align(&self, leaf: Leaf<'_>) -> u64 {
        match leaf {
            Leaf::Prim(p) => p.size(),
            Leaf::Type(j) => self.types[j].schema.align,
            Leaf::Opaque(s) => opaque_word(s).size(),
        }
    }

    /// The size of a member as emitted: its leaf's size times every array length.
    fn member_size(&self, m: &Member<'_>) -> u64 {
        m.dims.iter().fold(self.leaf_size(m.leaf), |size, &len| {
            size.saturating_mul(len)
        })
    }

    /// The members of a type in the order of their offsets, with explicit padding in every gap
    /// between them and after the last, up to the type's size; a type without members gets
    /// padding of 0 bytes, since a Rust object needs a field.
    fn slots(&self, def: &TypeDef<'_>) -> Vec<Slot> {
        let mut order: Vec<usize> = (0..def.members.len()).collect();
        order.sort_by_key(|&i| def.members[i].field.offset);
        let mut slots = Vec::with_capacity(order.len() + 1);
        let mut cursor = 0u64;
        for i in order {
            let m = &def.members[i];
            if m.field.offset > cursor {
                slots.push(Slot::Pad(m.field.offset - cursor));
            }
            slots.push(Slot::Member(i));
            cursor = cursor.max(m.field.offset.saturating_add(self.member_size(m)));
        }
        if def.schema.size > cursor || slots.is_empty() {
            slots.push(Slot::Pad(def.schema.size - cursor));
        }
        slots
    }

    /// The alignment of a type's members as emitted: the largest of theirs, 1 if none.
    fn natural_align(&self, def: &TypeDef<'_>, slots: &[Slot]) -> u64 {
        slots
            .iter()
            .map(|slot| match *slot {
                Slot::Pad(_) => 1,
                Slot::Member(i) => self.leaf_align(def.members[i].leaf),
            })
            .max()
            .unwrap_or(1)
    }

    /// The alignment to force on a type, if its schema's is stricter than its members' and a
    /// power of two.
    fn forced_align(&self, def: &TypeDef<'_>, slots: &[Slot]) -> Option<u64> {
        let align = def.schema.align;
        let strict = align.is_power_of_two() && align > self.natural_align(def, slots);
        strict.then_some(align)
    }

    /// The first id given for each type, if it is a top-level object.
    fn first_ids(&self) -> Vec<Option<u64>> {
        let mut ids = vec![None; self.types.len()];
        for &(index, id) in &self.roots {
            ids[index].get_or_insert(id);
        }
        ids
    }
}

/// One member of an emitted type, in offset order.
#[derive(Clone, Copy)]
enum Slot {
    /// Explicit padding of this many bytes.
    Pad(u64),
    /// A field: an index into [`TypeDef::members`].
    Member(usize),
}

/// The unsigned word an opaque object is emitted as: the widest of 8, 4, 2 and 1 bytes that
/// its alignment allows and its size is a multiple of.
fn opaque_word(schema: &Schema) -> Primitive {
    [Primitive::U64, Primitive::U32, Primitive::U16]
        .into_iter()
        .find(|p| schema.align >= p.size() && schema.size.is_multiple_of(p.size()))
        .unwrap_or(Primitive::U8)
}

/// A member's array lengths and leaf primitive when its leaf is opaque: one more array, of
/// words.
fn opaque_dims(dims: &[u64], schema: &Schema) -> (Vec<u64>, Primitive) {
    let word = opaque_word(schema);
    let mut dims = dims.to_vec();
    dims.push(schema.size / word.size());
    (dims, word)
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// Hands out names that are unique in one scope.
struct Namer {
    used: HashSet<String>,
    /// Per base name, the next suffix to try: a hostile schema may hold many types of one
    /// name, and trying `_2`, `_3`, ... from the start for each would be quadratic.
    next: std::collections::HashMap<String, u64>,
    /// Whether names that differ only in case are the same (type names, whose upper-case form
    /// names macros).
    fold_case: bool,
}

impl Namer {
    fn new(fold_case: bool) -> Namer {
        Namer {
            used: HashSet::new(),
            next: std::collections::HashMap::new(),
            fold_case,
        }
    }

    /// Takes `name`; false if it is taken already.
    fn claim(&mut self, name: &str) -> bool {
        let key = if self.fold_case {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        };
        self.used.insert(key)
    }

    /// `base`, or `base_2`, `base_3`, ... for the first one not taken.
    fn unique(&mut self, base: String) -> String {
        if self.claim(&base) {
            return base;
        }
        let mut n = self.next.get(&base).copied().unwrap_or(2);
        loop {
            let candidate = format!("{base}_{n}");
            n = n.saturating_add(1);
            if self.claim(&candidate) {
                self.next.insert(base, n);
                return candidate;
            }
        }
    }
}

/// `name` with every character outside `[A-Za-z0-9_]` replaced by `_`, and a leading `_`
/// when it is empty or starts with a digit.
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// `text` in printable ASCII: other characters become `\u{...}`. Safe in any comment.
fn ascii_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            put!(&mut out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out
}

/// The names of a type's fields (in the schema's order) and of its padding (in slot order),
/// unique in the type.
struct MemberNames {
    members: Vec<String>,
    pads: Vec<String>,
}

fn member_names(def: &TypeDef<'_>, slots: &[Slot], base: fn(&str) -> String) -> MemberNames {
    let mut namer = Namer::new(false);
    let members = def
        .members
        .iter()
        .map(|m| namer.unique(base(m.field.name())))
        .collect();
    let pad_count = slots.iter().filter(|s| matches!(s, Slot::Pad(_))).count();
    let pads = (0..pad_count)
        .map(|n| namer.unique(format!("_rtipc_pad_{n}")))
        .collect();
    MemberNames { members, pads }
}

fn type_names(table: &Table<'_>, namer: &mut Namer, base: fn(&str) -> String) -> Vec<String> {
    table
        .types
        .iter()
        .map(|t| namer.unique(base(t.schema.name())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// C
// ---------------------------------------------------------------------------------------------

/// C keywords (C11 and C23) and the names the included headers and GNU C define.
const C_RESERVED: &[&str] = &[
    "alignas",
    "alignof",
    "auto",
    "bool",
    "break",
    "case",
    "char",
    "const",
    "constexpr",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "false",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "nullptr",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "static_assert",
    "struct",
    "switch",
    "thread_local",
    "true",
    "typedef",
    "typeof",
    "typeof_unqual",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "asm",
    "NULL",
    "offsetof",
    "unreachable",
    "assert",
    "size_t",
    "ptrdiff_t",
    "wchar_t",
    "max_align_t",
    "nullptr_t",
    "intptr_t",
    "uintptr_t",
    "intmax_t",
    "uintmax_t",
    "INTPTR_MIN",
    "INTPTR_MAX",
    "UINTPTR_MAX",
    "INTMAX_MIN",
    "INTMAX_MAX",
    "UINTMAX_MAX",
    "INTMAX_C",
    "UINTMAX_C",
    "PTRDIFF_MIN",
    "PTRDIFF_MAX",
    "SIZE_MAX",
    "SIG_ATOMIC_MIN",
    "SIG_ATOMIC_MAX",
    "WCHAR_MIN",
    "WCHAR_MAX",
    "WINT_MIN",
    "WINT_MAX",
    "linux",
    "unix",
    "i386",
    "mips",
    "sparc",
    "sun",
    "vax",
];

/// Whether `name` is one of `<stdint.h>`'s `intN_t` families or their limit and constant
/// macros (`uint_least16_t`, `INT8_MAX`, `UINT64_C`, ...).
fn is_stdint_name(name: &str) -> bool {
    let families = [
        "int",
        "uint",
        "int_least",
        "uint_least",
        "int_fast",
        "uint_fast",
    ];
    families.iter().any(|family| {
        ["8", "16", "32", "64"].iter().any(|bits| {
            let stem = format!("{family}{bits}");
            let upper = stem.to_ascii_uppercase();
            name == format!("{stem}_t")
                || ["_MIN", "_MAX", "_C"]
                    .iter()
                    .any(|suffix| name == format!("{upper}{suffix}"))
        })
    })
}

/// Whether a C identifier is a keyword, a name the header's includes may define, or reserved
/// to the implementation (`__x`, `_X`).
fn c_reserved(name: &str) -> bool {
    let mut chars = name.chars();
    let reserved_prefix = chars.next() == Some('_')
        && chars
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_uppercase());
    reserved_prefix || C_RESERVED.contains(&name) || is_stdint_name(name)
}

/// A field's C name: sanitised, with a trailing `_` if reserved.
fn c_field_base(name: &str) -> String {
    let mut s = sanitize(name);
    if c_reserved(&s) {
        s.push('_');
    }
    s
}

/// A type's C name: as a field's, and never one that ends like the macros the header defines.
fn c_type_base(name: &str) -> String {
    let mut s = c_field_base(name);
    let upper = s.to_ascii_uppercase();
    if upper.ends_with("_RTIPC_ID") || upper.ends_with("_RTIPC_FINGERPRINT") {
        s.push('_');
    }
    s
}

/// The C type of a primitive.
fn c_prim(p: Primitive) -> &'static str {
    match p {
        Primitive::U8 => "uint8_t",
        Primitive::U16 => "uint16_t",
        Primitive::U32 => "uint32_t",
        Primitive::U64 => "uint64_t",
        Primitive::I8 => "int8_t",
        Primitive::I16 => "int16_t",
        Primitive::I32 => "int32_t",
        Primitive::I64 => "int64_t",
        Primitive::F32 => "float",
        Primitive::F64 => "double",
    }
}

/// An unsigned C constant: with a `u` suffix when it does not fit a `long long`.
fn c_uint(v: u64) -> String {
    if i64::try_from(v).is_ok() {
        v.to_string()
    } else {
        format!("{v}u")
    }
}

/// `text` for a C block comment: printable ASCII that neither closes nor opens one.
fn c_comment(text: &str) -> String {
    let mut out = String::new();
    for c in ascii_text(text).chars() {
        if (c == '*' && out.ends_with('/')) || (c == '/' && out.ends_with('*')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Generates a C11 header that declares the given object types with their exact layout.
///
/// `objects` are the top-level object types as (schema, id) pairs, such as
/// `(T::SCHEMA, T::ID)` for an [`Object`](crate::Object) `T`, or a schema from
/// [`decode`](super::decode) with the id read next to it. The header contains:
///
/// - a guard made of `guard` (upper-cased, every character outside `[A-Z0-9_]` replaced by
///   `_`; `RTIPC_SCHEMAS_H` if it has no letter or digit), and `#include <stddef.h>` and
///   `<stdint.h>`;
/// - every object type once, nested types before the types that use them, as
///   `typedef struct NAME { ... } NAME;`, with fixed-width fields (`uint8_t` ... `int64_t`,
///   `float`, `double`), arrays such as `uint8_t grid[2][3]` and nested objects as
///   `struct NAME`. Two different types with the same name get distinct names (`Joint`,
///   `Joint_2`). Names are sanitised to `[A-Za-z0-9_]`; a field whose name is a C keyword or
///   reserved (`int`, `NULL`, `_Bool`, `uint8_t`, ...) gets a trailing `_`, with a comment
///   naming the original;
/// - explicit `uint8_t _rtipc_pad_N[k]` members in every gap between fields or after the last
///   one, and `_Alignas(A)` on the first member when the type is aligned more strictly than
///   its fields;
/// - after each type, `_Static_assert`s on its `sizeof`, its `_Alignof` and the `offsetof` of
///   every field, so that a compiler that lays it out differently refuses the header;
/// - for each top-level object, `NAME_RTIPC_ID` and `NAME_RTIPC_FINGERPRINT` (the upper-cased
///   type name), as `UINT64_C` constants; the fingerprint is [`fingerprint`] of the schema.
///
/// The output depends only on the arguments. Every value in the schemas is treated as
/// untrusted: the function never panics, and a schema that describes an impossible layout
/// gives a header whose assertions fail to compile. An object nested deeper than
/// [`MAX_DEPTH`] (which [`decode`](super::decode) rejects) is emitted as an array of opaque
/// words, and a top-level object that deep gets no fingerprint macro.
///
/// ```
/// use rtipc::Object;
///
/// #[derive(Object)]
/// #[repr(C)]
/// struct Joint {
///     position: f64,
///     torque: [f32; 2],
/// }
///
/// let header = rtipc::schema::c_header(&[(Joint::SCHEMA, Joint::ID)], "joint.h");
/// assert!(header.contains("#ifndef JOINT_H"));
/// assert!(header.contains("typedef struct Joint {\n    double position;\n    float torque[2];\n"));
/// assert!(header.contains("_Static_assert(offsetof(struct Joint, torque) == 8"));
/// assert!(header.contains(&format!("#define JOINT_RTIPC_ID UINT64_C({:#018x})", Joint::ID)));
/// ```
pub fn c_header(objects: &[(&Schema, u64)], guard: &str) -> String {
    let table = Table::new(objects);
    let mut globals = Namer::new(true);
    let guard = c_guard(guard);
    globals.claim(&guard);
    let names = type_names(&table, &mut globals, c_type_base);
    let mut out = String::new();
    put!(
        &mut out,
        "/* Generated from rtipc schemas by rtipc::schema::c_header.\n \
         * Do not edit: generate it again from the schemas instead. */\n\
         #ifndef {guard}\n#define {guard}\n\n\
         #include <stddef.h>\n#include <stdint.h>\n\n\
         _Static_assert(sizeof(float) == 4, \"rtipc: float must be 32 bits\");\n\
         _Static_assert(sizeof(double) == 8, \"rtipc: double must be 64 bits\");\n"
    );
    for index in 0..table.types.len() {
        c_struct(&mut out, &table, &names, index);
    }
    c_macros(&mut out, &table, &names, &mut globals);
    put!(&mut out, "\n#endif /* {guard} */\n");
    out
}

/// The header guard: `guard` upper-cased and sanitised.
fn c_guard(guard: &str) -> String {
    if !guard.chars().any(|c| c.is_ascii_alphanumeric()) {
        return "RTIPC_SCHEMAS_H".to_owned();
    }
    let mut s = sanitize(guard).to_ascii_uppercase();
    if c_reserved(&s) {
        s.push('_');
    }
    s
}

/// One `typedef struct` with its assertions.
fn c_struct(out: &mut String, table: &Table<'_>, names: &[String], index: usize) {
    let def = &table.types[index];
    let name = &names[index];
    let slots = table.slots(def);
    let fields = member_names(def, &slots, c_field_base);
    let forced = table.forced_align(def, &slots);
    put!(
        out,
        "\n/* rtipc object `{}`: {} bytes, aligned to {}. */\ntypedef struct {name} {{\n",
        c_comment(def.schema.name()),
        def.schema.size,
        def.schema.align,
    );
    let mut pads = fields.pads.iter();
    for (n, slot) in slots.iter().enumerate() {
        let align = match forced {
            Some(a) if n == 0 => format!("_Alignas({a}) "),
            _ => String::new(),
        };
        match *slot {
            Slot::Pad(len) => {
                let pad = pads.next().map_or("_rtipc_pad", String::as_str);
                put!(out, "    {align}uint8_t {pad}[{len}];\n");
            }
            Slot::Member(i) => {
                let (decl, comment) = c_member(&def.members[i], &fields.members[i], names);
                put!(out, "    {align}{decl};{comment}\n");
            }
        }
    }
    put!(out, "}} {name};\n");
    c_asserts(out, def, name, &fields.members);
}

/// A member's declaration without the `;`, and the comment after it (empty or with a leading
/// space).
fn c_member(m: &Member<'_>, name: &str, names: &[String]) -> (String, String) {
    let mut comment = String::new();
    if name != m.field.name() {
        put!(&mut comment, " /* field `{}` */", c_comment(m.field.name()));
    }
    let (ty, dims) = match m.leaf {
        Leaf::Prim(p) => (c_prim(p).to_owned(), m.dims.clone()),
        Leaf::Type(j) => (format!("struct {}", names[j]), m.dims.clone()),
        Leaf::Opaque(s) => {
            let (dims, word) = opaque_dims(&m.dims, s);
            put!(
                &mut comment,
                " /* `{}` nests deeper than {MAX_DEPTH}: opaque words */",
                c_comment(s.name())
            );
            (c_prim(word).to_owned(), dims)
        }
    };
    let mut decl = format!("{ty} {name}");
    for len in dims {
        put!(&mut decl, "[{}]", c_uint(len));
    }
    (decl, comment)
}

/// The `_Static_assert`s after a struct: its size, alignment and every field's offset.
fn c_asserts(out: &mut String, def: &TypeDef<'_>, name: &str, fields: &[String]) {
    let (size, align) = (def.schema.size, def.schema.align);
    put!(
        out,
        "_Static_assert(sizeof(struct {name}) == {}, \"rtipc: struct {name} must be {size} \
         bytes\");\n\
         _Static_assert(_Alignof(struct {name}) == {}, \"rtipc: struct {name} must be aligned \
         to {align}\");\n",
        c_uint(size),
        c_uint(align),
    );
    for (m, field) in def.members.iter().zip(fields) {
        let offset = m.field.offset;
        put!(
            out,
            "_Static_assert(offsetof(struct {name}, {field}) == {}, \"rtipc: {name}.{field} \
             must be at offset {offset}\");\n",
            c_uint(offset),
        );
    }
}

/// The id and fingerprint macros of the top-level objects.
fn c_macros(out: &mut String, table: &Table<'_>, names: &[String], globals: &mut Namer) {
    put!(
        out,
        "\n/* Ids and fingerprints of the top-level objects. */\n"
    );
    let mut done: Vec<(usize, u64)> = Vec::new();
    for &(index, id) in &table.roots {
        if done.contains(&(index, id)) {
            continue;
        }
        let upper = names[index].to_ascii_uppercase();
        // A type listed again with another id gets macros of its own name.
        let base = if done.iter().any(|&(i, _)| i == index) {
            globals.unique(upper)
        } else {
            upper
        };
        done.push((index, id));
        let def = &table.types[index];
        put!(out, "#define {base}_RTIPC_ID UINT64_C({id:#018x})\n");
        if def.within_depth() {
            let fp = fingerprint(def.schema);
            put!(
                out,
                "#define {base}_RTIPC_FINGERPRINT UINT64_C({fp:#018x})\n"
            );
        } else {
            put!(
                out,
                "/* {base}: nests deeper than {MAX_DEPTH}, which rtipc does not decode: no \
                 fingerprint. */\n"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rust
// ---------------------------------------------------------------------------------------------

/// Rust keywords, strict and reserved, in every edition.
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "_",
];

/// Names a generated type must not take: the primitives, which it would shadow, and the crates
/// that the derive's output names.
const RUST_TYPE_RESERVED: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
    "i128", "isize", "f16", "f32", "f64", "f128", "rtipc", "core", "std", "alloc",
];

/// A field's Rust identifier: sanitised; a keyword is written raw (`r#type`, whose field name
/// the derive records as `type`), or with a trailing `_` if it cannot be raw.
fn rust_field_base(name: &str) -> String {
    let s = sanitize(name);
    if !RUST_KEYWORDS.contains(&s.as_str()) {
        s
    } else if matches!(s.as_str(), "_" | "crate" | "self" | "Self" | "super") {
        s + "_"
    } else {
        format!("r#{s}")
    }
}

/// A type's Rust identifier: sanitised, with a trailing `_` if a keyword or reserved.
fn rust_type_base(name: &str) -> String {
    let mut s = sanitize(name);
    if RUST_KEYWORDS.contains(&s.as_str()) || RUST_TYPE_RESERVED.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// `text` as a Rust string literal.
fn rust_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' => out.push(c),
            c if c.is_ascii_graphic() => out.push(c),
            c => put!(&mut out, "\\u{{{:x}}}", u32::from(c)),
        }
    }
    out.push('"');
    out
}

/// Generates Rust source that declares the given object types with `#[derive(rtipc::Object)]`.
///
/// `objects` are the top-level object types as (schema, id) pairs, as for [`c_header`]. Each
/// object type is declared once, nested types first, as a `#[repr(C)]` struct with `pub`
/// fields (a tuple struct when the fields are named `0`, `1`, ...), followed by `const`
/// assertions on its size, alignment and field offsets. It gets `#[repr(C, align(N))]` when the
/// schema is aligned more strictly than its fields, and `#[rtipc(name = "...", id = 0x...)]`
/// when the identifier differs from the schema's name or the id from
/// [`id_from_name`] of it. Nested types, which have no id of their own here, get the default
/// id.
///
/// For every schema that `#[derive(Object)]` emits (fields in offset order, no gaps,
/// identifiers as names) the declaration has the same schema, so the same fingerprint. For
/// other schemas, such as decoded ones with gaps or names that are not identifiers, it keeps
/// the layout (gaps become `_rtipc_pad_N: [u8; k]` fields, names are sanitised), and a comment
/// before the type says why its fingerprint differs. Like [`c_header`], it never panics on any
/// schema.
///
/// ```
/// use rtipc::Object;
///
/// #[derive(Object)]
/// #[repr(C)]
/// #[rtipc(id = 7)]
/// struct Joint {
///     position: f64,
///     grid: [[u8; 4]; 2],
/// }
///
/// let source = rtipc::schema::rust_declaration(&[(Joint::SCHEMA, Joint::ID)]);
/// assert!(source.contains("#[rtipc(id = 0x0000000000000007)]\npub struct Joint {"));
/// assert!(source.contains("    pub grid: [[u8; 4]; 2],\n"));
/// ```
pub fn rust_declaration(objects: &[(&Schema, u64)]) -> String {
    let table = Table::new(objects);
    let mut globals = Namer::new(true);
    let names = type_names(&table, &mut globals, rust_type_base);
    let ids = table.first_ids();
    let mut out = String::from(
        "// Generated from rtipc schemas by rtipc::schema::rust_declaration.\n\
         // Do not edit: generate it again from the schemas instead.\n",
    );
    for index in 0..table.types.len() {
        rust_struct(&mut out, &table, &names, index, ids[index]);
        let mut others: Vec<u64> = Vec::new();
        for &(root, id) in &table.roots {
            if root == index && ids[index] != Some(id) && !others.contains(&id) {
                others.push(id);
                put!(
                    &mut out,
                    "// `{}` is also listed with id {id:#018x}.\n",
                    names[index]
                );
            }
        }
    }
    out
}

/// One struct with its attributes, comments and assertions.
fn rust_struct(
    out: &mut String,
    table: &Table<'_>,
    names: &[String],
    index: usize,
    id: Option<u64>,
) {
    let def = &table.types[index];
    let name = &names[index];
    let slots = table.slots(def);
    let fields = member_names(def, &slots, rust_field_base);
    let notes = rust_notes(table, def, &slots, &fields);
    put!(
        out,
        "\n// rtipc object `{}`: {} bytes, aligned to {}.\n",
        ascii_text(def.schema.name()),
        def.schema.size,
        def.schema.align,
    );
    if !notes.is_empty() {
        put!(
            out,
            "// Same layout, but not the same fingerprint as the schema: {}.\n",
            notes.join("; ")
        );
    }
    rust_attrs(out, table, def, &slots, name, id);
    let tuple = is_tuple(def, &slots);
    let lint = fields
        .members
        .iter()
        .any(|f| f.contains(|c: char| c.is_ascii_uppercase()));
    if lint && !tuple {
        put!(out, "#[allow(non_snake_case)]\n");
    }
    rust_body(out, def, &slots, &fields, names, name, tuple);
    rust_asserts(out, def, name, &fields.members, tuple);
}

/// The attributes before a struct.
fn rust_attrs(
    out: &mut String,
    table: &Table<'_>,
    def: &TypeDef<'_>,
    slots: &[Slot],
    name: &str,
    id: Option<u64>,
) {
    put!(out, "#[derive(rtipc::Object)]\n");
    match table.forced_align(def, slots) {
        Some(a) if a <= 1 << 29 => put!(out, "#[repr(C, align({a}))]\n"),
        _ => put!(out, "#[repr(C)]\n"),
    }
    let schema_name = def.schema.name();
    let mut keys = Vec::new();
    if name != schema_name && !schema_name.is_empty() {
        keys.push(format!("name = {}", rust_string(schema_name)));
    }
    if let Some(id) = id.filter(|&id| id != id_from_name(schema_name)) {
        keys.push(format!("id = {id:#018x}"));
    }
    if !keys.is_empty() {
        put!(out, "#[rtipc({})]\n", keys.join(", "));
    }
    let camel = name.trim_matches('_');
    if camel.is_empty()
        || camel.contains('_')
        || camel.starts_with(|c: char| c.is_ascii_lowercase())
    {
        put!(out, "#[allow(non_camel_case_types)]\n");
    }
}

/// Why the declaration of a type does not reproduce its schema exactly, if it does not.
fn rust_notes(
    table: &Table<'_>,
    def: &TypeDef<'_>,
    slots: &[Slot],
    fields: &MemberNames,
) -> Vec<String> {
    let mut notes = Vec::new();
    if !fields.pads.is_empty() {
        notes.push("padding is declared as fields".to_owned());
    }
    let in_order = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Member(i) => Some(*i),
            Slot::Pad(_) => None,
        })
        .eq(0..def.members.len());
    if !in_order {
        notes.push("the fields are declared in the order of their offsets".to_owned());
    }
    let renamed = def
        .members
        .iter()
        .zip(&fields.members)
        .any(|(m, f)| f.trim_start_matches("r#") != m.field.name());
    if renamed && !is_tuple(def, slots) {
        notes.push("field names that are not identifiers are changed".to_owned());
    }
    if def
        .members
        .iter()
        .any(|m| matches!(m.leaf, Leaf::Opaque(_)))
    {
        notes.push(format!(
            "objects nested deeper than {MAX_DEPTH} are opaque words"
        ));
    }
    let align = def.schema.align;
    let declarable = align.is_power_of_two() && align <= 1 << 29;
    if align > table.natural_align(def, slots) && !declarable {
        notes.push(format!("alignment {align} cannot be declared"));
    }
    notes
}

/// Whether a type is declared as a tuple struct: its fields are `0`, `1`, ... in offset order,
/// without gaps.
fn is_tuple(def: &TypeDef<'_>, slots: &[Slot]) -> bool {
    !def.members.is_empty()
        && slots.len() == def.members.len()
        && slots
            .iter()
            .enumerate()
            .all(|(n, s)| matches!(*s, Slot::Member(i) if i == n))
        && def
            .members
            .iter()
            .enumerate()
            .all(|(n, m)| m.field.name() == n.to_string())
}

/// A member's Rust type.
fn rust_type(m: &Member<'_>, names: &[String]) -> String {
    let (mut ty, dims) = match m.leaf {
        Leaf::Prim(p) => (p.name().to_owned(), m.dims.clone()),
        Leaf::Type(j) => (names[j].clone(), m.dims.clone()),
        Leaf::Opaque(s) => {
            let (dims, word) = opaque_dims(&m.dims, s);
            (word.name().to_owned(), dims)
        }
    };
    for len in dims.iter().rev() {
        ty = format!("[{ty}; {len}]");
    }
    ty
}

/// The struct itself.
fn rust_body(
    out: &mut String,
    def: &TypeDef<'_>,
    slots: &[Slot],
    fields: &MemberNames,
    names: &[String],
    name: &str,
    tuple: bool,
) {
    if tuple {
        let types: Vec<String> = def
            .members
            .iter()
            .map(|m| format!("pub {}", rust_type(m, names)))
            .collect();
        put!(out, "pub struct {name}({});\n", types.join(", "));
        return;
    }
    put!(out, "pub struct {name} {{\n");
    let mut pads = fields.pads.iter();
    for slot in slots {
        match *slot {
            Slot::Pad(len) => {
                let pad = pads.next().map_or("_rtipc_pad", String::as_str);
                put!(out, "    pub {pad}: [u8; {len}],\n");
            }
            Slot::Member(i) => {
                let m = &def.members[i];
                let field = &fields.members[i];
                if field.trim_start_matches("r#") != m.field.name() {
                    put!(out, "    // field `{}`\n", ascii_text(m.field.name()));
                }
                put!(out, "    pub {field}: {},\n", rust_type(m, names));
            }
        }
    }
    put!(out, "}}\n");
}

/// `const` assertions on a struct's size, alignment and field offsets.
fn rust_asserts(out: &mut String, def: &TypeDef<'_>, name: &str, fields: &[String], tuple: bool) {
    let (size, align) = (def.schema.size, def.schema.align);
    put!(
        out,
        "const _: () = assert!(::core::mem::size_of::<{name}>() == {size});\n\
         const _: () = assert!(::core::mem::align_of::<{name}>() == {align});\n"
    );
    for (n, (m, field)) in def.members.iter().zip(fields).enumerate() {
        let member = if tuple { n.to_string() } else { field.clone() };
        put!(
            out,
            "const _: () = assert!(::core::mem::offset_of!({name}, {member}) == {});\n",
            m.field.offset
        );
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// `text` as a JSON string (also for the inspector's values).
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => put!(&mut out, "\\u{:04x}", u32::from(c)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Describes the given object types as a JSON document.
///
/// `objects` are the top-level object types as (schema, id) pairs, as for [`c_header`]. The
/// document is one line (plus a final newline), with no insignificant whitespace:
///
/// ```text
/// {"format":"rtipc-schema","version":1,"objects":[OBJECT, ...]}
///
/// OBJECT := {"name":"Joint","id":"0x…","fingerprint":"0x…","size":16,"align":8,
///            "fields":[FIELD, ...],"rtsc":"5254534301…"}
/// FIELD  := {"name":"torque","offset":8,"size":8,"type":TYPE}
/// TYPE   := "f32"                                     a primitive, by its Rust name
///         | {"array":{"len":2,"elem":TYPE}}
///         | {"object":{"name":"…","size":N,"align":N,"fields":[FIELD, ...]}}
/// ```
///
/// Ids and fingerprints ([`fingerprint`]) are strings of 16 hexadecimal digits after `0x`,
/// since JSON numbers lose precision above 2⁵³. Fields are listed in the schema's order.
/// `rtsc` is the schema's [`encode`]ing in lowercase hexadecimal: a reader rebuilds the exact
/// schema from it with [`decode`](super::decode). Strings are escaped as JSON requires.
///
/// The function never panics on any schema. For an object nested deeper than [`MAX_DEPTH`]
/// (which [`decode`](super::decode) rejects), the nested type is
/// `{"opaque":{"name":…,"size":N,"align":N}}`, and the top-level object's `fingerprint` and
/// `rtsc` are `null`; `rtsc` is `null` as well for a schema that [`encode`] cannot take.
///
/// ```
/// use rtipc::Object;
///
/// #[derive(Object)]
/// #[repr(C)]
/// struct Joint {
///     position: f64,
///     torque: [f32; 2],
/// }
///
/// let doc = rtipc::schema::json(&[(Joint::SCHEMA, Joint::ID)]);
/// assert!(doc.starts_with(r#"{"format":"rtipc-schema","version":1,"objects":[{"name":"Joint","#));
/// assert!(doc.contains(
///     r#"{"name":"torque","offset":8,"size":8,"type":{"array":{"len":2,"elem":"f32"}}}"#
/// ));
/// ```
pub fn json(objects: &[(&Schema, u64)]) -> String {
    let table = Table::new(objects);
    // Each type's field list, nested types first, so each is written once per type.
    let mut field_lists: Vec<String> = Vec::with_capacity(table.types.len());
    for def in &table.types {
        let list = json_fields(&table, def, &field_lists);
        field_lists.push(list);
    }
    let objects: Vec<String> = table
        .roots
        .iter()
        .map(|&(index, id)| json_object(&table.types[index], id, &field_lists[index]))
        .collect();
    format!(
        "{{\"format\":\"rtipc-schema\",\"version\":1,\"objects\":[{}]}}\n",
        objects.join(",")
    )
}

/// A type's fields as a JSON array; `lists` holds those of the types before it.
fn json_fields(table: &Table<'_>, def: &TypeDef<'_>, lists: &[String]) -> String {
    let fields: Vec<String> = def
        .members
        .iter()
        .map(|m| {
            let mut ty = match m.leaf {
                Leaf::Prim(p) => json_string(p.name()),
                Leaf::Type(j) => {
                    let s = table.types[j].schema;
                    format!(
                        "{{\"object\":{{\"name\":{},\"size\":{},\"align\":{},\"fields\":{}}}}}",
                        json_string(s.name()),
                        s.size,
                        s.align,
                        lists.get(j).map_or("[]", String::as_str),
                    )
                }
                Leaf::Opaque(s) => format!(
                    "{{\"opaque\":{{\"name\":{},\"size\":{},\"align\":{}}}}}",
                    json_string(s.name()),
                    s.size,
                    s.align
                ),
            };
            for len in m.dims.iter().rev() {
                ty = format!("{{\"array\":{{\"len\":{len},\"elem\":{ty}}}}}");
            }
            format!(
                "{{\"name\":{},\"offset\":{},\"size\":{},\"type\":{ty}}}",
                json_string(m.field.name()),
                m.field.offset,
                m.field.size
            )
        })
        .collect();
    format!("[{}]", fields.join(","))
}

/// One top-level object.
fn json_object(def: &TypeDef<'_>, id: u64, fields: &str) -> String {
    let (fp, rtsc) = if def.within_depth() {
        let fp = format!("\"{:#018x}\"", fingerprint(def.schema));
        let rtsc = if def.encodable {
            let hex: String = encode(def.schema)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("\"{hex}\"")
        } else {
            "null".to_owned()
        };
        (fp, rtsc)
    } else {
        ("null".to_owned(), "null".to_owned())
    };
    format!(
        "{{\"name\":{},\"id\":\"{id:#018x}\",\"fingerprint\":{fp},\"size\":{},\"align\":{},\
         \"fields\":{fields},\"rtsc\":{rtsc}}}",
        json_string(def.schema.name()),
        def.schema.size,
        def.schema.align,
    )
}

// The tests derive `Object`, whose output names `::rtipc`, which loom builds do not alias.
#[cfg(all(test, not(loom)))]
mod tests;
