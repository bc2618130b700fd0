//! Output: one-line failures, aligned tables, and writes to stdout that survive a closed pipe.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Why a command stopped: printed as one line on stderr, with its exit status.
#[derive(Debug)]
pub struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// An error (exit status 2): the command could not do what was asked.
    pub fn error(message: impl fmt::Display) -> Failure {
        Failure {
            message: one_line(&message.to_string()),
            code: 2,
        }
    }

    /// A negative answer (exit status 1): the command ran, and the answer is no.
    pub fn no(message: impl fmt::Display) -> Failure {
        Failure {
            message: one_line(&message.to_string()),
            code: 1,
        }
    }

    /// The reader of stdout went away: stop quietly.
    fn closed() -> Failure {
        Failure {
            message: String::new(),
            code: 0,
        }
    }

    /// The exit status.
    pub fn code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }

    /// Whether there is anything to say.
    pub fn is_quiet(&self) -> bool {
        self.message.is_empty()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<rtipc::Error> for Failure {
    fn from(e: rtipc::Error) -> Failure {
        Failure::error(e)
    }
}

impl From<rtipc::DataError> for Failure {
    fn from(e: rtipc::DataError) -> Failure {
        Failure::error(e)
    }
}

/// Joins the lines of a multi-line message with `; `, control characters escaped.
fn one_line(s: &str) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    clean(&joined)
}

/// `text` with every control character but the newline escaped (`\u{1b}`): names in a
/// segment are any UTF-8, and printed raw they could move the cursor or forge lines.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' || !c.is_control() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// What a command returns.
pub type Outcome = Result<ExitCode, Failure>;

/// Writes `text` to stdout, control characters but newlines escaped ([`clean`]); a closed
/// pipe ends the command quietly.
pub fn print(text: &str) -> Result<(), Failure> {
    print_raw(&clean(text))
}

/// Writes `text` to stdout as it is: only for text this program made (the terminal codes of
/// `hz`).
pub fn print_raw(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::closed()),
        Err(e) => Err(Failure::error(format!("writing to stdout: {e}"))),
    }
}

/// Writes `text` and a newline to stdout.
pub fn println(text: &str) -> Result<(), Failure> {
    print(&format!("{text}\n"))
}

/// Prints a JSON value on one line.
pub fn json(v: &serde_json::Value) -> Result<(), Failure> {
    println(&v.to_string())
}

/// A table whose columns are aligned, for people.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, `indent` spaces in, columns two spaces apart.
    pub fn render(&self, indent: usize) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        for r in &self.rows {
            let mut line = " ".repeat(indent);
            for (c, cell) in r.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < r.len() {
                    let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                    line.push_str(&" ".repeat(pad));
                }
            }
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }
}

/// `0x` and 16 hex digits.
pub fn hex(v: u64) -> String {
    format!("{v:#018x}")
}

/// A number, or `-`.
pub fn opt<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `yes` or `no`.
pub fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
