//! `rtipc check NAME --schema FILE`: would a build with these schemas attach to the segment?

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use rtipc::inspect::{ChannelFacts, Inspector};
use rtipc::schema::{self, Schema};
use serde_json::json;

use crate::out::{self, hex, Failure, Outcome};

/// Arguments of `rtipc check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The segment's name.
    name: String,
    /// The schemas of the build to check: a file that `rtipc schema --format json` wrote, or
    /// one schema in rtipc's binary encoding (`rtipc::schema::encode`).
    #[arg(long)]
    schema: PathBuf,
    /// Only this channel.
    #[arg(long)]
    channel: Option<String>,
    /// One JSON object, for scripts.
    #[arg(long)]
    json: bool,
}

/// Largest schema file read: the binary encoding's limit, and room for its JSON around it.
const MAX_FILE: u64 = 4 * schema::MAX_ENCODED_LEN as u64;

/// One schema to check: its name, its id if the file gives it, the schema.
struct Wanted {
    id: Option<u64>,
    schema: Schema,
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    let f = std::fs::File::open(path)
        .map_err(|e| Failure::error(format!("reading {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::error(format!("reading {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Failure::error(format!(
            "{} is larger than {MAX_FILE} bytes: not a schema file",
            path.display()
        )));
    }
    Ok(bytes)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn parse_id(v: &serde_json::Value) -> Option<u64> {
    let s = v.as_str()?;
    u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// The schemas in a file: binary (one), or JSON from `rtipc schema --format json`.
fn load(path: &PathBuf) -> Result<Vec<Wanted>, Failure> {
    let bytes = read_file(path)?;
    let bad = |why: &str| Failure::error(format!("{}: {why}", path.display()));
    if bytes.starts_with(&schema::MAGIC) {
        let s = schema::decode(&bytes).map_err(|e| bad(&e.to_string()))?;
        return Ok(vec![Wanted {
            id: None,
            schema: s,
        }]);
    }
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad(&format!("neither an encoded schema nor JSON ({e})")))?;
    let objects = doc
        .get("objects")
        .and_then(|o| o.as_array())
        .ok_or_else(|| {
            bad("no `objects` array: not a file that `rtipc schema --format json` wrote")
        })?;
    let mut out = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let enc = o
            .get("rtsc")
            .and_then(|r| r.as_str())
            .and_then(unhex)
            .ok_or_else(|| bad(&format!("object {i} has no valid `rtsc` hex string")))?;
        let s = schema::decode(&enc).map_err(|e| bad(&format!("object {i}: {e}")))?;
        out.push(Wanted {
            id: o.get("id").and_then(parse_id),
            schema: s,
        });
    }
    if out.is_empty() {
        return Err(bad("the file holds no schema"));
    }
    Ok(out)
}

/// The verdict on one schema of the file.
struct Verdict {
    name: String,
    channel: Option<String>,
    ok: bool,
    why: Vec<String>,
}

fn judge(w: &Wanted, channels: &[ChannelFacts]) -> Vec<Verdict> {
    let name = w.schema.name().to_owned();
    let fp = schema::fingerprint(&w.schema);
    let mut out = Vec::new();
    for c in channels {
        for o in &c.objects {
            let same_id = w.id.is_some_and(|id| id == o.id);
            let same_name = o.schema.name() == name;
            if !same_id && !same_name {
                continue;
            }
            let mut why = Vec::new();
            if let Some(id) = w.id.filter(|&id| id != o.id) {
                why.push(format!(
                    "the id is {} here, {} in the segment",
                    hex(id),
                    hex(o.id)
                ));
            }
            let mut note = None;
            if fp != o.fingerprint || w.schema.size != o.size || w.schema.align != o.align {
                match schema::prefix(&w.schema, &o.schema) {
                    // An earlier revision of an appendable type attaches in place.
                    Ok(e) if e.ours_is_older() => {
                        note = Some(format!(
                            "attaches by the prefix rule of appendable types ({e}): consumers \
                             read their fields in place, producers zero the others"
                        ));
                    }
                    Ok(e) => why.push(format!(
                        "{}; the prefix rule applies ({e}), but the segment's slots lack this \
                         revision's fields: only a copying consumer (`StateCopier`, `QueueCopier`) attaches",
                        schema::diff(&w.schema, &o.schema)
                    )),
                    Err(_) => {
                        let d = schema::diff(&w.schema, &o.schema);
                        why.extend(d.to_string().lines().map(str::to_owned));
                    }
                }
            }
            let ok = why.is_empty();
            why.extend(note);
            out.push(Verdict {
                name: name.clone(),
                channel: Some(c.name.clone()),
                ok,
                why,
            });
        }
    }
    if out.is_empty() {
        let id =
            w.id.map_or_else(String::new, |id| format!(" (id {})", hex(id)));
        out.push(Verdict {
            name: name.clone(),
            channel: None,
            ok: false,
            why: vec![format!("no channel carries an object `{name}`{id}")],
        });
    }
    out
}

/// Runs `rtipc check`.
pub fn run(a: &Args) -> Outcome {
    let wanted = load(&a.schema)?;
    let ins = Inspector::open(&a.name)?;
    let channels = match &a.channel {
        Some(c) => vec![ins.channel(c)?],
        None => ins.channels()?,
    };
    let verdicts: Vec<Verdict> = wanted.iter().flat_map(|w| judge(w, &channels)).collect();
    let ok = verdicts.iter().all(|v| v.ok);
    if a.json {
        let v: Vec<_> = verdicts
            .iter()
            .map(|v| json!({"object": v.name, "channel": v.channel, "attaches": v.ok, "differences": v.why}))
            .collect();
        out::json(&json!({"attaches": ok, "objects": v}))?;
    } else {
        let mut s = String::new();
        for v in &verdicts {
            let place = v
                .channel
                .as_ref()
                .map_or_else(String::new, |c| format!(" in channel `{c}`"));
            if v.ok {
                s.push_str(&format!("{}{place}: attaches\n", v.name));
                for w in &v.why {
                    s.push_str(&format!("  {w}\n"));
                }
            } else {
                s.push_str(&format!("{}{place}: does not attach\n", v.name));
                for w in &v.why {
                    s.push_str(&format!("  {w}\n"));
                }
            }
        }
        if !ok {
            s.push_str(&format!(
                "(\"here\" is {}, \"the peer's schema\" the segment's)\n",
                a.schema.display()
            ));
        }
        // The answer is the exit status, whether or not anyone reads the text.
        if let Err(f) = out::print(&s) {
            if !f.is_quiet() {
                return Err(f);
            }
        }
    }
    Ok(ExitCode::from(if ok { 0 } else { 1 }))
}
