//! Output: a human-readable table, or one JSON object per line.

use std::fmt::Write;

/// One JSON object, written by hand: keys are fixed identifiers and values numbers, booleans
/// or plain strings.
pub struct Json(String);

impl Json {
    pub fn new(kind: &str, name: &str) -> Json {
        let mut j = Json(String::from("{"));
        j.str("kind", kind).str("name", name);
        j
    }

    fn key(&mut self, k: &str) -> &mut String {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
        &mut self.0
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Json {
        let s = self.key(k);
        s.push('"');
        for c in v.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(s, "\\u{:04x}", c as u32);
                }
                c => s.push(c),
            }
        }
        s.push('"');
        self
    }

    pub fn int(&mut self, k: &str, v: u64) -> &mut Json {
        let _ = write!(self.key(k), "{v}");
        self
    }

    /// A float with 3 decimals; `null` if it is not finite (no stable round, say).
    pub fn num(&mut self, k: &str, v: f64) -> &mut Json {
        let s = self.key(k);
        if v.is_finite() {
            let _ = write!(s, "{v:.3}");
        } else {
            s.push_str("null");
        }
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Json {
        let _ = write!(self.key(k), "{v}");
        self
    }

    pub fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.0);
        s.push('}');
        s
    }
}

/// A ratio for the table: `-` when there is none.
pub fn ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_nulls() {
        let line = Json::new("k", "a\"b")
            .int("n", 3)
            .num("r", f64::NAN)
            .num("x", 1.5)
            .bool("ok", true)
            .finish();
        assert_eq!(
            line,
            r#"{"kind":"k","name":"a\"b","n":3,"r":null,"x":1.500,"ok":true}"#
        );
    }
}
