//! `rtipc echo NAME CHANNEL`: a channel's values, decoded field by field, through an observer
//! (no claim, no write to the segment).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rtipc::inspect::{Inspector, Value};
use rtipc::schema::Schema;
use rtipc::{DataError, Observed};

use crate::out::{self, Failure, Outcome};

/// Arguments of `rtipc echo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The segment's name.
    name: String,
    /// The channel.
    channel: String,
    /// Print only this part of the value: field names joined by `.`, indices in brackets
    /// (`pose.x`, `torque[2]`).
    #[arg(long)]
    field: Option<String>,
    /// Only this object of a channel that carries several (by type name).
    #[arg(long)]
    object: Option<String>,
    /// Stop after N values.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// One JSON object per value: {"seq":..,"missed":..,"value":..}, where `missed` counts
    /// the updates or messages between this value and the one printed before it.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV: a header row of field paths, then one row per value.
    #[arg(long)]
    csv: bool,
    /// Milliseconds to wait between two looks at the channel when nothing is new, and between
    /// two values of a state channel (which only ever has its newest): the fewer looks, the
    /// fewer cache lines taken from the producer. 0 follows every update.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// Give up after this many seconds (an error if --count was not reached).
    #[arg(long)]
    timeout: Option<f64>,
}

/// The objects echo decodes: (name, schema, offset in the slot).
fn pick(
    obs: &rtipc::RawObserver,
    object: Option<&str>,
) -> Result<Vec<(String, Schema, u64)>, Failure> {
    let all: Vec<_> = obs
        .objects()
        .map(|o| (o.schema.name().to_owned(), o.schema.clone(), o.offset))
        .collect();
    match object {
        None => Ok(all),
        Some(name) => {
            let names: Vec<&str> = all.iter().map(|o| o.0.as_str()).collect();
            let one: Vec<_> = all.iter().filter(|o| o.0 == name).cloned().collect();
            if one.is_empty() {
                return Err(Failure::error(format!(
                    "channel `{}` has no object `{name}`; it has {}",
                    obs.channel(),
                    names.join(", ")
                )));
            }
            Ok(one)
        }
    }
}

/// What echo prints of each observation: one object, or (when the channel carries several and
/// no --object picks one) an object of objects by name; all of it, or the part at --field.
struct Target {
    objs: Vec<(String, Schema, u64)>,
    /// Per object (or for the only one): the path inside it.
    path: Option<(Option<usize>, String)>,
}

impl Target {
    /// Checks --field against the schemas before anything is read.
    fn new(objs: Vec<(String, Schema, u64)>, field: Option<&str>) -> Result<Target, Failure> {
        let path = match field {
            None => None,
            Some(p) if objs.len() == 1 => {
                Value::check_path(&objs[0].1, p).map_err(Failure::error)?;
                Some((None, p.to_owned()))
            }
            Some(p) => {
                let end = p.find(['.', '[']).unwrap_or(p.len());
                let (name, rest) = (&p[..end], p[end..].trim_start_matches('.'));
                let Some(k) = objs.iter().position(|o| o.0 == name) else {
                    let names: Vec<&str> = objs.iter().map(|o| o.0.as_str()).collect();
                    return Err(Failure::error(format!(
                        "path `{p}`: the channel carries several objects, so a path starts with one of {}",
                        names.join(", ")
                    )));
                };
                Value::check_path(&objs[k].1, rest).map_err(Failure::error)?;
                Some((Some(k), rest.to_owned()))
            }
        };
        Ok(Target { objs, path })
    }

    fn one(&self, k: usize, path: &str, bytes: &[u8]) -> Result<Value, Failure> {
        let (_, schema, at) = &self.objs[k];
        let b = bytes.get(*at as usize..).unwrap_or(&[]);
        Value::decode_at(schema, path, b).map_err(Failure::error)
    }

    /// The value of one observation's bytes.
    fn decode(&self, bytes: &[u8]) -> Result<Value, Failure> {
        match &self.path {
            Some((None, p)) => self.one(0, p, bytes),
            Some((Some(k), p)) => self.one(*k, p, bytes),
            None if self.objs.len() == 1 => self.one(0, "", bytes),
            None => {
                let fields = (0..self.objs.len())
                    .map(|k| Ok((self.objs[k].0.clone(), self.one(k, "", bytes)?)))
                    .collect::<Result<Vec<_>, Failure>>()?;
                Ok(Value::Object(fields))
            }
        }
    }
}

fn secs(s: f64, what: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| Failure::error(format!("{what} must be a number of seconds, not {s}")))
}

/// Runs `rtipc echo`.
pub fn run(a: &Args) -> Outcome {
    let ins = Inspector::open(&a.name)?;
    let mut obs = ins.observer(&a.channel)?;
    let target = Target::new(pick(&obs, a.object.as_deref())?, a.field.as_deref())?;
    let state = obs.kind() == rtipc::ChannelKind::State;
    let pause = secs(a.interval / 1000.0, "--interval")?;
    let deadline = match a.timeout {
        Some(t) => Some(
            Instant::now()
                .checked_add(secs(t, "--timeout")?)
                .ok_or_else(|| Failure::error(format!("--timeout {t} is too long")))?,
        ),
        None => None,
    };
    let mut printed = 0u64;
    let mut header = a.csv;
    while a.count.is_none_or(|n| printed < n) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return timed_out(a, printed);
        }
        let seen = match obs.observe() {
            Ok(Some(s)) if Observed::is_new(&s) => s,
            Ok(_) | Err(DataError::Lapped) => {
                std::thread::sleep(pause);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // Missed: between two values printed; the first one has no predecessor here.
        let missed = if printed == 0 {
            0
        } else {
            Observed::missed(&seen)
        };
        let seq = Observed::seq(&seen);
        let value = target.decode(Observed::value(&seen))?;
        emit(a, seq, missed, &value, &mut header)?;
        printed += 1;
        if state {
            std::thread::sleep(pause);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn timed_out(a: &Args, printed: u64) -> Outcome {
    match a.count {
        Some(n) => Err(Failure::error(format!(
            "only {printed} of {n} values within {} s",
            a.timeout.unwrap_or(0.0)
        ))),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn emit(a: &Args, seq: u64, missed: u64, v: &Value, header: &mut bool) -> Result<(), Failure> {
    if a.json {
        return out::println(&format!(
            r#"{{"seq":{seq},"missed":{missed},"value":{}}}"#,
            v.to_json()
        ));
    }
    if a.csv {
        if std::mem::take(header) {
            let names: Vec<String> = v
                .leaves()
                .iter()
                .map(|(p, _)| {
                    if p.is_empty() {
                        "value".to_owned()
                    } else {
                        csv_cell(p)
                    }
                })
                .collect();
            out::println(&format!("seq,missed,{}", names.join(",")))?;
        }
        let cells: Vec<String> = v.scalars().iter().map(|v| v.to_string()).collect();
        return out::println(&format!("{seq},{missed},{}", cells.join(",")));
    }
    if missed > 0 {
        out::println(&format!("seq {seq} (missed {missed}): {v}"))
    } else {
        out::println(&format!("seq {seq}: {v}"))
    }
}

/// A CSV cell, quoted if it holds a comma or a quote.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
