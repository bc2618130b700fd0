//! `rtipc schema NAME [CHANNEL]`: the schemas of a segment's objects, or declarations
//! generated from them.

use std::process::ExitCode;

use rtipc::inspect::{ChannelFacts, Inspector, ObjectFacts};
use rtipc::schema::{self, FieldType, Schema};

use crate::out::{self, hex, Failure, Outcome, Table};

/// What `rtipc schema` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum Format {
    /// The fields of each object, as a table.
    #[default]
    Text,
    /// Rust declarations with `#[derive(rtipc::Object)]`.
    Rust,
    /// A C11 header with `_Static_assert`s on every size, alignment and offset.
    C,
    /// JSON, which `rtipc check --schema` reads back.
    Json,
}

/// Arguments of `rtipc schema`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The segment's name.
    name: String,
    /// Only this channel's objects.
    channel: Option<String>,
    /// What to print.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

/// The distinct objects of `channels` (by id and fingerprint), in order.
pub fn objects(channels: &[ChannelFacts]) -> Vec<&ObjectFacts> {
    let mut seen: Vec<&ObjectFacts> = Vec::new();
    for o in channels.iter().flat_map(|c| &c.objects) {
        if !seen
            .iter()
            .any(|s| s.id == o.id && s.fingerprint == o.fingerprint)
        {
            seen.push(o);
        }
    }
    seen
}

/// Runs `rtipc schema`.
pub fn run(a: &Args) -> Outcome {
    let ins = Inspector::open(&a.name)?;
    let channels = match &a.channel {
        Some(c) => vec![ins.channel(c)?],
        None => ins.channels()?,
    };
    let objs = objects(&channels);
    if objs.is_empty() {
        return Err(Failure::error(match &a.channel {
            Some(c) => format!("channel `{c}` carries no objects"),
            None => "the segment's channels carry no objects".to_owned(),
        }));
    }
    let pairs: Vec<(&Schema, u64)> = objs.iter().map(|o| (&o.schema, o.id)).collect();
    let format = if a.json { Format::Json } else { a.format };
    let text = match format {
        Format::Text => text(&objs),
        Format::Rust => schema::rust_declaration(&pairs),
        Format::C => {
            let guard = match &a.channel {
                Some(c) => format!("rtipc_{}_{c}_h", a.name),
                None => format!("rtipc_{}_h", a.name),
            };
            schema::c_header(&pairs, &guard)
        }
        Format::Json => schema::json(&pairs),
    };
    out::print(&text)?;
    if !text.ends_with('\n') {
        out::println("")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn text(objs: &[&ObjectFacts]) -> String {
    let mut s = String::new();
    let mut nested: Vec<&Schema> = Vec::new();
    for o in objs {
        s.push_str(&format!(
            "{} (id {}, fingerprint {}): {} bytes, align {}\n",
            o.schema.name(),
            hex(o.id),
            hex(o.fingerprint),
            o.schema.size,
            o.schema.align
        ));
        s.push_str(&fields(&o.schema, &mut nested));
        s.push('\n');
    }
    let mut i = 0;
    while let Some(n) = nested.get(i).copied() {
        s.push_str(&format!(
            "{} (nested, fingerprint {}): {} bytes, align {}\n",
            n.name(),
            hex(schema::fingerprint(n)),
            n.size,
            n.align
        ));
        s.push_str(&fields(n, &mut nested));
        s.push('\n');
        i += 1;
    }
    s.trim_end().to_owned() + "\n"
}

/// The field table of `s`; nested object types not yet in `nested` are added to it.
fn fields<'a>(s: &'a Schema, nested: &mut Vec<&'a Schema>) -> String {
    let mut t = Table::new(&["OFFSET", "SIZE", "FIELD", "TYPE"]);
    for f in s.fields() {
        let mut ty = &f.ty;
        while let FieldType::Array { elem, .. } = ty {
            ty = elem.get();
        }
        if let FieldType::Object(inner) = ty {
            let inner = inner.get();
            if !nested.contains(&inner) {
                nested.push(inner);
            }
        }
        t.row(vec![
            f.offset.to_string(),
            f.size.to_string(),
            f.name.to_string(),
            f.ty.to_string(),
        ]);
    }
    t.render(2)
}
