//! `schema::c_header` against a real C compiler: a C program includes the generated header,
//! prints the `sizeof`, `_Alignof` and every `offsetof` of each struct and the id and
//! fingerprint macros, and each number must equal what Rust says about the same type.
//!
//! The test needs a C11 compiler: `$CC`, or `cc`. Without one it fails.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use rtipc::schema::{c_header, Schema};
use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Joint {
    position: f64,
    velocity: f32,
    torque: f32,
}

mod other {
    /// Another type named `Joint`, with another layout: the header calls it `Joint_2`.
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Joint {
        pub id: u32,
        pub flags: [u16; 2],
    }
}

#[derive(Object)]
#[repr(C, align(64))]
#[rtipc(id = 0x1234_5678_9abc_def0)]
struct Arm {
    joints: [Joint; 3],
    grid: [[u8; 4]; 2],
    sequence: u64,
}

/// All ten primitives, under names that are C keywords.
#[derive(Object)]
#[repr(C)]
struct Primitives {
    double: f64,
    long: i64,
    unsigned: u64,
    float: f32,
    int: i32,
    signed: u32,
    short: i16,
    r#static: u16,
    char: i8,
    r#const: u8,
    tail: [u8; 6],
}

#[derive(Object)]
#[repr(C)]
struct Cell {
    a: Joint,
    b: other::Joint,
    cube: [[[i16; 2]; 2]; 2],
    ring: [other::Joint; 2],
}

#[derive(Object)]
#[repr(C)]
#[rtipc(name = "Pair")]
struct Couple(u32, i32);

/// What Rust says about one type, computed without its schema.
struct Layout {
    /// The type's name in the header.
    c_name: &'static str,
    schema: &'static Schema,
    size: usize,
    align: usize,
    /// Field name (as in the schema) and offset.
    offsets: Vec<(&'static str, usize)>,
    /// For a top-level object: its macros' prefix, its id and its fingerprint.
    top: Option<(&'static str, u64, u64)>,
}

macro_rules! layout {
    ($t:ty, $c_name:literal, [$($field:tt),* $(,)?]) => {
        Layout {
            c_name: $c_name,
            schema: <$t as Object>::SCHEMA,
            size: size_of::<$t>(),
            align: align_of::<$t>(),
            offsets: vec![$((
                stringify!($field).trim_start_matches("r#"),
                offset_of!($t, $field),
            )),*],
            top: None,
        }
    };
}

fn top(mut layout: Layout, prefix: &'static str, id: u64, fingerprint: u64) -> Layout {
    layout.top = Some((prefix, id, fingerprint));
    layout
}

fn layouts() -> Vec<Layout> {
    vec![
        layout!(Joint, "Joint", [position, velocity, torque]),
        layout!(other::Joint, "Joint_2", [id, flags]),
        top(
            layout!(Arm, "Arm", [joints, grid, sequence]),
            "ARM",
            0x1234_5678_9abc_def0,
            Arm::FINGERPRINT,
        ),
        top(
            layout!(
                Primitives,
                "Primitives",
                [
                    double, long, unsigned, float, int, signed, short, r#static, char, r#const,
                    tail
                ]
            ),
            "PRIMITIVES",
            Primitives::ID,
            Primitives::FINGERPRINT,
        ),
        top(
            layout!(Cell, "Cell", [a, b, cube, ring]),
            "CELL",
            Cell::ID,
            Cell::FINGERPRINT,
        ),
        top(
            layout!(Couple, "Pair", [0, 1]),
            "PAIR",
            Couple::ID,
            Couple::FINGERPRINT,
        ),
    ]
}

/// The top-level objects, in the order the header is generated from.
fn objects() -> Vec<(&'static Schema, u64)> {
    vec![
        (Arm::SCHEMA, Arm::ID),
        (Primitives::SCHEMA, Primitives::ID),
        (Cell::SCHEMA, Cell::ID),
        (Couple::SCHEMA, Couple::ID),
    ]
}

/// A field's name in the header: C keywords get a trailing `_`, numbers a leading one.
fn c_field(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "double", "long", "unsigned", "float", "int", "signed", "short", "static", "char", "const",
    ];
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// The C program, walking the schemas, and the numbers Rust expects it to print, one per line,
/// each with its label.
fn program(layouts: &[Layout]) -> (String, Vec<(String, u64)>) {
    let mut c = String::from(
        "#include <stdio.h>\n#include \"objects.h\"\n#include \"objects.h\"\n\n\
         #define P(label, value) printf(\"%s %llu\\n\", label, (unsigned long long)(value))\n\n\
         int main(void) {\n",
    );
    let mut expected = Vec::new();
    for l in layouts {
        let name = l.c_name;
        let mut check = |label: String, expr: String, value: u64| {
            writeln!(c, "    P(\"{label}\", {expr});").unwrap();
            expected.push((label, value));
        };
        check(
            format!("sizeof {name}"),
            format!("sizeof(struct {name})"),
            l.size as u64,
        );
        check(
            format!("alignof {name}"),
            format!("_Alignof(struct {name})"),
            l.align as u64,
        );
        let offsets: HashMap<&str, usize> = l.offsets.iter().copied().collect();
        assert_eq!(offsets.len(), l.schema.fields().len(), "fields of {name}");
        for field in l.schema.fields() {
            let offset = *offsets
                .get(field.name())
                .unwrap_or_else(|| panic!("{name}.{} has no Rust offset", field.name()));
            let member = c_field(field.name());
            check(
                format!("offsetof {name}.{member}"),
                format!("offsetof(struct {name}, {member})"),
                offset as u64,
            );
        }
        if let Some((prefix, id, fingerprint)) = l.top {
            for (what, value) in [("ID", id), ("FINGERPRINT", fingerprint)] {
                let mac = format!("{prefix}_RTIPC_{what}");
                check(mac.clone(), mac, value);
            }
        }
    }
    c.push_str("    return 0;\n}\n");
    (c, expected)
}

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("rtipc-c-header-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles `source` with `$CC` (or `cc`) as strict C11 and returns the executable's path.
fn compile(dir: &Path, source: &Path) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mut words = cc.split_whitespace();
    let program = words.next().unwrap_or("cc");
    let exe = dir.join("layout");
    let output = Command::new(program)
        .args(words)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o"])
        .arg(&exe)
        .arg(source)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "no C compiler found: running `{cc}` failed ({e}). This test compiles the \
                 generated header with a C11 compiler: install one (such as gcc or clang, \
                 `apt-get install gcc`) or set CC to its path"
            )
        });
    assert!(
        output.status.success(),
        "`{cc}` rejected the generated header:\n{}\n--- header ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(dir.join("objects.h")).unwrap_or_default()
    );
    exe
}

#[test]
fn the_header_has_the_rust_layout_in_c() {
    let layouts = layouts();
    let header = c_header(&objects(), "objects.h");
    let (program, expected) = program(&layouts);

    let dir = TempDir::new();
    std::fs::write(dir.0.join("objects.h"), &header).unwrap();
    let source = dir.0.join("layout.c");
    std::fs::write(&source, &program).unwrap();
    let exe = compile(&dir.0, &source);
    let run = Command::new(&exe)
        .output()
        .expect("run the compiled program");
    assert!(run.status.success(), "the C program failed: {run:?}");
    let stdout = String::from_utf8(run.stdout).unwrap();

    let printed: Vec<(String, u64)> = stdout
        .lines()
        .map(|line| {
            let (label, value) = line.rsplit_once(' ').expect("`label value`");
            (label.to_owned(), value.parse().expect("a number"))
        })
        .collect();
    assert_eq!(printed.len(), expected.len(), "lines printed:\n{stdout}");
    for ((label, c), (want_label, rust)) in printed.iter().zip(&expected) {
        assert_eq!(label, want_label);
        assert_eq!(c, rust, "{label}: C says {c}, Rust says {rust}");
    }
    // Every struct of the header was checked: none is emitted that the test does not know.
    assert_eq!(header.matches("typedef struct ").count(), layouts.len());
}
