//! `rtipc show NAME`: a segment's header, channels, holders and counters.

use std::process::ExitCode;

use rtipc::inspect::{ChannelFacts, EndFacts, Inspector, SegmentFacts};
use rtipc::End;
use serde_json::{json, Value as Json};

use crate::out::{self, hex, opt, yes, Outcome, Table};

/// Arguments of `rtipc show`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The segment's name (as `rtipc ls` lists it).
    name: String,
    /// One JSON object, for scripts.
    #[arg(long)]
    json: bool,
}

/// Runs `rtipc show`.
pub fn run(a: &Args) -> Outcome {
    let ins = Inspector::open(&a.name)?;
    let facts = ins.facts();
    let channels = ins.channels()?;
    if a.json {
        out::json(&json!({
            "segment": segment_json(&facts),
            "channels": channels.iter().map(channel_json).collect::<Vec<_>>(),
        }))?;
    } else {
        out::print(&render(&facts, &channels))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The header facts as JSON.
pub fn segment_json(f: &SegmentFacts) -> Json {
    json!({"name": f.name, "size": f.size, "version": f.version, "cache_line": f.cache_line,
           "creator_pid": f.creator_pid, "creator_alive": f.creator_alive, "channels": f.channels})
}

fn end_name(e: &EndFacts, consumers: u32) -> String {
    match e.end {
        End::Producer => "producer".into(),
        _ if consumers > 1 => format!("consumer {}", e.index),
        _ => "consumer".into(),
    }
}

/// A channel's facts as JSON.
pub fn channel_json(c: &ChannelFacts) -> Json {
    let objects: Vec<_> = c
        .objects
        .iter()
        .map(|o| {
            json!({"name": o.schema.name(), "id": hex(o.id), "fingerprint": hex(o.fingerprint),
                   "offset": o.offset, "size": o.size, "align": o.align})
        })
        .collect();
    let ends: Vec<_> = c
        .ends
        .iter()
        .map(|e| {
            json!({"end": e.end.to_string(), "index": e.index, "held": e.held, "pid": e.pid,
                   "taken": e.taken, "pending": e.pending, "missed": e.missed})
        })
        .collect();
    json!({"name": c.name, "kind": c.kind.to_string(), "direction": super::direction(c.direction),
           "consumers": c.consumers, "slots": c.slots, "capacity": c.capacity,
           "ring_bytes": c.ring_bytes,
           "notify": c.notify, "published": c.published, "objects": objects, "ends": ends,
           "fault": c.fault.map(|f| f.to_string())})
}

fn render(f: &SegmentFacts, channels: &[ChannelFacts]) -> String {
    let alive = if f.creator_alive {
        "alive"
    } else {
        "gone: the segment is stale"
    };
    let mut s = format!(
        "segment {}: {} bytes, layout version {}, cache line {} bytes, creator pid {} ({alive}), {} channel{}\n\n",
        f.name.as_deref().unwrap_or("(anonymous)"),
        f.size,
        f.version,
        f.cache_line,
        f.creator_pid,
        f.channels,
        if f.channels == 1 { "" } else { "s" }
    );
    let mut t = Table::new(&[
        "CHANNEL",
        "KIND",
        "DIRECTION",
        "SLOTS",
        "CAPACITY",
        "NOTIFY",
        "PUBLISHED",
    ]);
    for c in channels {
        t.row(vec![
            c.name.clone(),
            super::kind(c.kind, c.consumers),
            super::direction(c.direction).into(),
            c.slots.to_string(),
            match c.ring_bytes {
                Some(b) => format!("{b} B"),
                None => opt(c.capacity),
            },
            yes(c.notify).into(),
            if c.fault.is_some() {
                "FAULT".into()
            } else {
                c.published.to_string()
            },
        ]);
    }
    s.push_str(&t.render(0));
    for c in channels {
        s.push_str(&render_channel(c));
    }
    s
}

fn render_channel(c: &ChannelFacts) -> String {
    let mut s = format!("\nchannel {}\n", c.name);
    if let Some(f) = &c.fault {
        s.push_str(&format!("  FAULT: {f}; its counters are not shown\n"));
    }
    let mut t = Table::new(&["OBJECT", "ID", "FINGERPRINT", "OFFSET", "SIZE", "ALIGN"]);
    for o in &c.objects {
        t.row(vec![
            o.schema.name().to_owned(),
            hex(o.id),
            hex(o.fingerprint),
            o.offset.to_string(),
            o.size.to_string(),
            o.align.to_string(),
        ]);
    }
    s.push_str(&t.render(2));
    let mut t = Table::new(&["END", "HELD", "PID", "TAKEN", "PENDING", "MISSED"]);
    for e in &c.ends {
        let pid = match (e.pid, e.held) {
            (Some(p), true) => p.to_string(),
            (Some(p), false) => format!("{p} (gone)"),
            (None, _) => "-".into(),
        };
        t.row(vec![
            end_name(e, c.consumers),
            yes(e.held).into(),
            pid,
            opt(e.taken),
            opt(e.pending),
            opt(e.missed),
        ]);
    }
    s.push('\n');
    s.push_str(&t.render(2));
    s
}
