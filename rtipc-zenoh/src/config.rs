//! The bridge's configuration: command-line flags, an optional JSON5 file, or both (the
//! flags' lists add to the file's, and their values replace the file's).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::key::check_part;
use crate::BridgeError;

/// What a bridge process does, as written in a configuration file or given by flags.
///
/// ```json5
/// {
///   connect: ["tcp/192.168.1.20:7447"],   // Zenoh endpoints to connect to
///   listen: ["tcp/0.0.0.0:7447"],          // and to listen on
///   prefix: "lab",                         // keys are rtipc/<prefix>/<segment>/<channel>
///   export: ["robot", "arm:joints"],       // a whole segment, or one channel of it
///   import: ["robot:pose=robot-from-lab"], // segment:channel[=local segment]
/// }
/// ```
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Zenoh endpoints to connect to, such as `tcp/192.168.1.20:7447`.
    #[serde(default)]
    pub connect: Vec<String>,
    /// Zenoh endpoints to listen on, such as `tcp/0.0.0.0:7447`.
    #[serde(default)]
    pub listen: Vec<String>,
    /// The prefix of every key (`default` if unset).
    #[serde(default)]
    pub prefix: Option<String>,
    /// What to export: `SEGMENT` (each of its channels) or `SEGMENT:CHANNEL`.
    #[serde(default)]
    pub export: Vec<String>,
    /// What to import: `SEGMENT:CHANNEL`, or `SEGMENT:CHANNEL=LOCAL` to create the local
    /// segment under another name (the remote segment's name if unset).
    #[serde(default)]
    pub import: Vec<String>,
    /// Consumer ends of each imported state channel (1 if unset; more makes it a fan-out
    /// channel).
    #[serde(default)]
    pub consumers: Option<u32>,
    /// How long an idle exporter sleeps between looks at its channels, in microseconds (100
    /// if unset; 0 polls without sleeping, for the lowest latency at the cost of a core).
    #[serde(default)]
    pub poll_us: Option<u64>,
    /// Whether Zenoh may find peers by multicast scouting (off if unset: give endpoints).
    #[serde(default)]
    pub scouting: Option<bool>,
    /// The largest object an imported channel may carry, in bytes (16 MiB if unset).
    #[serde(default)]
    pub max_object_bytes: Option<u64>,
    /// The largest segment an import may create, in bytes (256 MiB if unset).
    #[serde(default)]
    pub max_segment_bytes: Option<u64>,
    /// Log each channel's counters this often, in milliseconds (never if unset; they are
    /// always logged at shutdown).
    #[serde(default)]
    pub stats_every_ms: Option<u64>,
    /// How queues meet congestion. `"drop"` (the default): an exporting bridge drops a
    /// message the network cannot take (the importing side counts it from the gap), and an
    /// importing bridge overwrites the oldest message of a full local queue (its consumer
    /// counts it as missed). `"block"`: the exporting bridge waits for the network and the
    /// importing bridge for room in its queue, so nothing is lost between the producer's queue
    /// and the consumer's; a slow consumer then fills the producer's queue, and the producer
    /// is refused (`try_push`) or overwrites (`force_push`) as with a slow local consumer: it
    /// never waits. State channels always drop: a newer value replaces a lost one.
    #[serde(default)]
    pub queue_congestion: Option<String>,
}

/// One segment to export: all of its channels, or those named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSpec {
    /// The local segment's name.
    pub segment: String,
    /// The channels to export; empty for every channel of the segment.
    pub channels: Vec<String>,
}

/// One channel to import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSpec {
    /// The remote segment's name.
    pub segment: String,
    /// The channel's name (the same in the local segment).
    pub channel: String,
    /// The name of the local segment it goes into.
    pub local: String,
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Zenoh endpoints to connect to.
    pub connect: Vec<String>,
    /// Zenoh endpoints to listen on.
    pub listen: Vec<String>,
    /// The key prefix.
    pub prefix: String,
    /// The segments to export, each once.
    pub exports: Vec<ExportSpec>,
    /// The channels to import.
    pub imports: Vec<ImportSpec>,
    /// Consumer ends of each imported state channel.
    pub consumers: u32,
    /// How long an idle exporter sleeps.
    pub poll: Duration,
    /// Whether multicast scouting is on.
    pub scouting: bool,
    /// The largest object an import accepts.
    pub max_object_bytes: u64,
    /// The largest segment an import creates.
    pub max_segment_bytes: u64,
    /// How often the counters are logged.
    pub stats_every: Option<Duration>,
    /// Whether queues wait rather than drop (`queue_congestion`).
    pub queue_block: bool,
}

impl Config {
    /// Reads a JSON5 configuration file.
    pub fn from_file(path: &Path) -> Result<Config, BridgeError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BridgeError::Config(format!("cannot read configuration {}: {e}", path.display()))
        })?;
        json5::from_str(&text)
            .map_err(|e| BridgeError::Config(format!("configuration {}: {e}", path.display())))
    }

    /// `self` with `flags` laid over it: lists are joined, values set in `flags` win.
    pub fn merged(mut self, flags: Config) -> Config {
        self.connect.extend(flags.connect);
        self.listen.extend(flags.listen);
        self.export.extend(flags.export);
        self.import.extend(flags.import);
        self.prefix = flags.prefix.or(self.prefix);
        self.consumers = flags.consumers.or(self.consumers);
        self.poll_us = flags.poll_us.or(self.poll_us);
        self.scouting = flags.scouting.or(self.scouting);
        self.max_object_bytes = flags.max_object_bytes.or(self.max_object_bytes);
        self.max_segment_bytes = flags.max_segment_bytes.or(self.max_segment_bytes);
        self.stats_every_ms = flags.stats_every_ms.or(self.stats_every_ms);
        self.queue_congestion = flags.queue_congestion.or(self.queue_congestion);
        self
    }

    /// Checks every name and value, and says what is wrong with the first that is not right.
    pub fn settings(&self) -> Result<Settings, BridgeError> {
        let prefix = self.prefix.clone().unwrap_or_else(|| "default".to_owned());
        check_part("the prefix", &prefix, true)?;
        if self.export.is_empty() && self.import.is_empty() {
            return Err(BridgeError::Config(
                "nothing to do: give at least one --export or --import".to_owned(),
            ));
        }
        let exports = self.exports()?;
        let mut imports: Vec<ImportSpec> = Vec::new();
        for i in &self.import {
            let (remote, local) = match i.split_once('=') {
                Some((r, l)) => (r, Some(l)),
                None => (i.as_str(), None),
            };
            let Some((segment, channel)) = remote.split_once(':') else {
                return Err(BridgeError::Config(format!(
                    "import `{i}`: give SEGMENT:CHANNEL or SEGMENT:CHANNEL=LOCAL"
                )));
            };
            check_part("the imported segment", segment, false)?;
            check_part("the imported channel", channel, true)?;
            let local = local.unwrap_or(segment);
            check_part("the local segment", local, false)?;
            if imports
                .iter()
                .any(|x| x.local == local && x.channel == channel)
            {
                return Err(BridgeError::Config(format!(
                    "import `{i}`: channel `{channel}` of local segment `{local}` is imported twice"
                )));
            }
            imports.push(ImportSpec {
                segment: segment.to_owned(),
                channel: channel.to_owned(),
                local: local.to_owned(),
            });
        }
        let consumers = self.consumers.unwrap_or(1);
        if consumers == 0 || consumers > rtipc::layout::MAX_FANOUT_CONSUMERS {
            return Err(BridgeError::Config(format!(
                "consumers: {consumers}, from 1 to {}",
                rtipc::layout::MAX_FANOUT_CONSUMERS
            )));
        }
        let queue_block = match self.queue_congestion.as_deref() {
            None | Some("drop") => false,
            Some("block") => true,
            Some(other) => {
                return Err(BridgeError::Config(format!(
                    "queue_congestion `{other}`: `drop` or `block`"
                )))
            }
        };
        Ok(Settings {
            queue_block,
            connect: self.connect.clone(),
            listen: self.listen.clone(),
            prefix,
            exports,
            imports,
            consumers,
            poll: Duration::from_micros(self.poll_us.unwrap_or(100)),
            scouting: self.scouting.unwrap_or(false),
            max_object_bytes: self.max_object_bytes.unwrap_or(16 << 20),
            max_segment_bytes: self.max_segment_bytes.unwrap_or(256 << 20),
            stats_every: self
                .stats_every_ms
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
        })
    }

    /// The exported segments, each once, with the channels named for it (none: all).
    fn exports(&self) -> Result<Vec<ExportSpec>, BridgeError> {
        // Per segment, its channels, or `None` once it is exported whole.
        let mut exports: Vec<(String, Option<Vec<String>>)> = Vec::new();
        for e in &self.export {
            let (segment, channel) = match e.split_once(':') {
                Some((s, c)) => (s, Some(c)),
                None => (e.as_str(), None),
            };
            check_part("the exported segment", segment, false)?;
            if let Some(c) = channel {
                check_part("the exported channel", c, true)?;
            }
            let at = match exports.iter().position(|(s, _)| s == segment) {
                Some(at) => at,
                None => {
                    exports.push((segment.to_owned(), Some(Vec::new())));
                    exports.len() - 1
                }
            };
            match (&mut exports[at].1, channel) {
                (whole, None) => *whole = None,
                (Some(channels), Some(c)) if !channels.iter().any(|x| x == c) => {
                    channels.push(c.to_owned())
                }
                _ => {}
            }
        }
        Ok(exports
            .into_iter()
            .map(|(segment, channels)| ExportSpec {
                segment,
                channels: channels.unwrap_or_default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(export: &[&str], import: &[&str]) -> Config {
        Config {
            export: export.iter().map(|s| s.to_string()).collect(),
            import: import.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn exports_are_grouped_by_segment_and_a_whole_segment_wins() {
        let s = config(&["a:x", "b", "a:y/z", "a:x", "b:q"], &[])
            .settings()
            .unwrap();
        assert_eq!(
            s.exports,
            vec![
                ExportSpec {
                    segment: "a".into(),
                    channels: vec!["x".into(), "y/z".into()]
                },
                ExportSpec {
                    segment: "b".into(),
                    channels: vec![]
                },
            ]
        );
        assert_eq!(s.prefix, "default");
        assert_eq!(s.poll, Duration::from_micros(100));
    }

    #[test]
    fn imports_name_their_local_segment() {
        let s = config(&[], &["robot:arm/pose", "robot:arm/cmd=mirror"])
            .settings()
            .unwrap();
        assert_eq!(s.imports[0].local, "robot");
        assert_eq!(
            s.imports[1],
            ImportSpec {
                segment: "robot".into(),
                channel: "arm/cmd".into(),
                local: "mirror".into()
            }
        );
        for (bad, says) in [
            ("robot", "SEGMENT:CHANNEL"),
            ("ro/bot:x", "contains `/`"),
            ("robot:x*", "contains `*`"),
            ("robot:x=", "is empty"),
        ] {
            let e = config(&[], &[bad]).settings().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = config(&[], &["a:x", "b:x=a"]).settings().unwrap_err();
        assert!(e.to_string().contains("imported twice"), "{e}");
        let e = config(&[], &[]).settings().unwrap_err();
        assert!(e.to_string().contains("nothing to do"), "{e}");
    }

    #[test]
    fn a_file_and_flags_combine() {
        let dir = std::env::temp_dir().join(format!("rtipc-bridge-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bridge.json5");
        std::fs::write(
            &path,
            "{ connect: ['tcp/10.0.0.1:7447'], prefix: 'lab', export: ['robot'], poll_us: 5, }",
        )
        .unwrap();
        let file = Config::from_file(&path).unwrap();
        let flags = Config {
            connect: vec!["tcp/10.0.0.2:7447".into()],
            poll_us: Some(0),
            ..Config::default()
        };
        let s = file.merged(flags).settings().unwrap();
        assert_eq!(s.connect, ["tcp/10.0.0.1:7447", "tcp/10.0.0.2:7447"]);
        assert_eq!((s.prefix.as_str(), s.poll), ("lab", Duration::ZERO));
        std::fs::write(&path, "{ exports: ['robot'] }").unwrap();
        let e = Config::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("exports"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
