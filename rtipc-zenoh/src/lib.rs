//! A Zenoh bridge for rtipc channels, for when a channel's reader is on another machine.
//!
//! rtipc is for one machine. This crate carries chosen channels between hosts over
//! [Zenoh](https://zenoh.io), with their schemas:
//!
//! * **Export.** On the machine that has the channel, the bridge attaches to the segment as an
//!   observer (state channels) or as the consumer (queues, record channels). It publishes each
//!   new update, message or record on the key `rtipc/<prefix>/<segment>/<channel>`. Beside the payload, the sample's
//!   attachment ([`wire::Attachment`]) carries the object's fingerprint, its sequence number and
//!   the exporting side's missed count. A queryable on the same key serves the channel's
//!   description ([`wire::Description`]: kind, capacity, rtipc's own encoded schema), and a
//!   state channel's latest value. A liveliness token on the key says that the channel's
//!   producer runs.
//! * **Import.** On another machine, or in another process, the bridge asks for the
//!   description and creates a local segment from it. It is the producer there, so local
//!   consumers read remote data through the ordinary rtipc API and its schema checks: a
//!   consumer built with another layout gets the same field-level error as against a local
//!   producer. A sample whose fingerprint differs from the description's is dropped and
//!   counted.
//!
//! What is kept across the network:
//! * A state channel stays latest-value. Its sequence numbers are the exporting side's, so a
//!   local consumer's missed count includes what the network dropped
//!   ([`rtipc::RawStateProducer::publish_after`]).
//! * A queue stays ordered. A slow local consumer's missed count is exact, as for a local
//!   producer. Messages lost before the local queue (on the exporting side, or on the
//!   network) are counted from the gaps in the sequence numbers, in [`ChannelStats`].
//! * The exporting side drops rather than blocks (`CongestionControl::Drop`), and the
//!   importing side overwrites the oldest message of a full local queue. With
//!   `queue_congestion` set to `block`, both bridges wait instead and nothing is lost between
//!   the two queues. Either way the local producer never waits for the network: the bridge
//!   reads its channel like any other consumer.
//! * When the exporting bridge or the channel's producer goes away, the importing bridge
//!   releases the producer end of its local channel, and local consumers see what they see
//!   when a local producer dies (`producer_alive()` false, `wait` returns `NoProducer`). It
//!   takes the end again when the producer is back.
//!
//! * A record channel is carried as a queue is, record by record.
//!
//! Linux only, like rtipc. Shared regions and channels of more than one object are not
//! carried.

#![deny(missing_docs)]

pub mod config;
mod export;
mod import;
pub mod key;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use zenoh::Wait;

pub use config::{Config, ExportSpec, ImportSpec, Settings};

/// Why the bridge could not do what it was asked.
#[derive(Debug)]
pub enum BridgeError {
    /// The configuration is wrong; the text says where.
    Config(String),
    /// An rtipc call failed: what the bridge was doing, and rtipc's error.
    Rtipc {
        /// What the bridge was doing.
        what: String,
        /// rtipc's error.
        error: rtipc::Error,
    },
    /// Zenoh refused something (a session, a declaration).
    Zenoh(String),
    /// What the remote side sent cannot be carried here.
    Remote(String),
}

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BridgeError::Config(s) => write!(f, "configuration: {s}"),
            BridgeError::Rtipc { what, error } => write!(f, "{what}: {error}"),
            BridgeError::Zenoh(s) => write!(f, "zenoh: {s}"),
            BridgeError::Remote(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeError::Rtipc { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// `error` with what the bridge was doing when rtipc returned it.
pub(crate) fn rtipc_err(what: impl Into<String>) -> impl FnOnce(rtipc::Error) -> BridgeError {
    let what = what.into();
    move |error| BridgeError::Rtipc { what, error }
}

/// Which way a channel goes through this bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// From a local segment to the network.
    Export,
    /// From the network into a local segment.
    Import,
}

/// The counters of one carried channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStats {
    /// The channel's key.
    pub key: String,
    /// Export or import.
    pub way: Way,
    /// Exported: samples put on the network. Imported: samples received with the right
    /// fingerprint.
    pub samples: u64,
    /// Imported: updates or messages written into the local channel.
    pub published: u64,
    /// Updates or messages the exporting side's reader missed (a state channel's updates it
    /// did not see, a queue's messages its producer overwrote), as the attachments say.
    pub upstream_missed: u64,
    /// Imported: updates or messages that left the exporting side but did not arrive (the
    /// gaps in the sequence numbers that the exporting side's missed counts do not explain).
    pub network_lost: u64,
    /// Imported: samples dropped because their fingerprint is not the description's, or
    /// their attachment or size is wrong.
    pub foreign: u64,
    /// Imported: samples dropped because the channel's producer was gone when they arrived.
    pub while_gone: u64,
    /// Imported queues: messages the local queue overwrote because its consumer was slow
    /// (the consumer's missed count says the same).
    pub overwritten: u64,
    /// Times the sequence numbers started again (the exporting side's channel re-created).
    pub restarts: u64,
    /// Exported state channels: reads that returned nothing because the producer rewrote
    /// the newest update during each copy (a producer updating a large object faster than it
    /// can be copied); the exporter copies again on its next turn.
    pub lapped: u64,
}

/// The counters a channel's thread updates and [`Bridge::stats`] reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub samples: AtomicU64,
    pub published: AtomicU64,
    pub upstream_missed: AtomicU64,
    pub network_lost: AtomicU64,
    pub foreign: AtomicU64,
    pub while_gone: AtomicU64,
    pub overwritten: AtomicU64,
    pub restarts: AtomicU64,
    pub lapped: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        // Relaxed: a counter read for reports; nothing is ordered by it.
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self, key: &str, way: Way) -> ChannelStats {
        // Relaxed: each counter is read on its own, for a report.
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ChannelStats {
            key: key.to_owned(),
            way,
            samples: get(&self.samples),
            published: get(&self.published),
            upstream_missed: get(&self.upstream_missed),
            network_lost: get(&self.network_lost),
            foreign: get(&self.foreign),
            while_gone: get(&self.while_gone),
            overwritten: get(&self.overwritten),
            restarts: get(&self.restarts),
            lapped: get(&self.lapped),
        }
    }
}

impl std::fmt::Display for ChannelStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.way {
            Way::Export => write!(
                f,
                "export {}: samples={} upstream_missed={} restarts={} lapped={}",
                self.key, self.samples, self.upstream_missed, self.restarts, self.lapped
            ),
            Way::Import => write!(
                f,
                "import {}: samples={} published={} upstream_missed={} network_lost={} \
                 foreign={} while_gone={} overwritten={} restarts={}",
                self.key,
                self.samples,
                self.published,
                self.upstream_missed,
                self.network_lost,
                self.foreign,
                self.while_gone,
                self.overwritten,
                self.restarts
            ),
        }
    }
}

/// One carried channel's counters, under its key.
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    pub key: String,
    pub way: Way,
    pub counters: Arc<Counters>,
}

/// What the channel threads share: the stop flag, the registry of counters and the log clock.
#[derive(Debug)]
pub(crate) struct Shared {
    pub stop: AtomicBool,
    pub tallies: std::sync::Mutex<Vec<Tally>>,
    /// Why each import that gave up did so.
    pub failures: std::sync::Mutex<Vec<String>>,
    pub started: Instant,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        // Relaxed: a flag polled by loops that do nothing else with it.
        self.stop.load(Ordering::Relaxed)
    }

    /// The counters of a new channel.
    pub fn tally(&self, key: &str, way: Way) -> Arc<Counters> {
        let counters = Arc::new(Counters::default());
        let mut t = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        t.push(Tally {
            key: key.to_owned(),
            way,
            counters: counters.clone(),
        });
        counters
    }

    /// Logs why an import gave up, and keeps it for [`Bridge::failures`].
    pub fn fail(&self, why: String) {
        self.log(format_args!("{why}"));
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.push(why);
    }

    /// Writes a line to standard error, with the time since the bridge started.
    pub fn log(&self, line: std::fmt::Arguments<'_>) {
        eprintln!(
            "rtipc-bridge [{:9.3}s] {line}",
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// A running bridge: a Zenoh session, a thread per exported segment and one per imported
/// channel. Dropping it stops it; [`shutdown`](Bridge::shutdown) does too and returns the
/// final counters.
pub struct Bridge {
    session: Option<zenoh::Session>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Opens a Zenoh session on `settings`' endpoints and starts exporting and importing.
    ///
    /// Exported segments that exist are checked now (a named channel that is missing, or of a
    /// kind the bridge does not carry, is an error). A segment that does not exist yet is
    /// waited for, and attached to when it appears (and again whenever it is re-created).
    /// Imports wait for their exporter's description.
    pub fn start(settings: &Settings) -> Result<Bridge, BridgeError> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            tallies: std::sync::Mutex::new(Vec::new()),
            failures: std::sync::Mutex::new(Vec::new()),
            started: Instant::now(),
        });
        for e in &settings.exports {
            export::check(e)?;
        }
        let session = zenoh::open(zenoh_config(settings)?)
            .wait()
            .map_err(|e| BridgeError::Zenoh(format!("cannot open a session: {e}")))?;
        let mut bridge = Bridge {
            session: Some(session.clone()),
            shared: shared.clone(),
            threads: Vec::new(),
        };
        for e in &settings.exports {
            bridge.threads.push(export::spawn(
                session.clone(),
                settings,
                e.clone(),
                shared.clone(),
            )?);
        }
        let mut locals: Vec<&str> = settings.imports.iter().map(|i| i.local.as_str()).collect();
        locals.dedup();
        locals.sort_unstable();
        locals.dedup();
        for local in locals {
            let group: Vec<ImportSpec> = settings
                .imports
                .iter()
                .filter(|i| i.local == local)
                .cloned()
                .collect();
            bridge.threads.push(import::spawn(
                session.clone(),
                settings,
                group,
                shared.clone(),
            )?);
        }
        shared.log(format_args!(
            "started: zenoh id {}, prefix `{}`, {} export(s), {} import(s)",
            session.zid(),
            settings.prefix,
            settings.exports.len(),
            settings.imports.len()
        ));
        Ok(bridge)
    }

    /// Each carried channel's counters, in the order the channels were attached.
    pub fn stats(&self) -> Vec<ChannelStats> {
        let t = self
            .shared
            .tallies
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        t.iter()
            .map(|t| t.counters.snapshot(&t.key, t.way))
            .collect()
    }

    /// Why each import that gave up did so (a description the limits refuse, a segment that
    /// cannot be created): the same text as the log's.
    pub fn failures(&self) -> Vec<String> {
        let f = self
            .shared
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f.clone()
    }

    /// Stops every thread (each drops its handles: an imported channel's producer end is
    /// released), closes the Zenoh session and returns the final counters.
    pub fn shutdown(mut self) -> Vec<ChannelStats> {
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        // Relaxed: a flag the threads poll; their joins order everything else.
        self.shared.stop.store(true, Ordering::Relaxed);
        // Closed first: a put waiting on a congested network (`queue_congestion` block)
        // returns, and its thread sees the stop.
        if let Some(s) = self.session.take() {
            if let Err(e) = s.close().wait() {
                self.shared
                    .log(format_args!("closing the zenoh session: {e}"));
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// The Zenoh configuration: peer mode, the endpoints, multicast scouting off unless asked.
fn zenoh_config(s: &Settings) -> Result<zenoh::Config, BridgeError> {
    let mut c = zenoh::Config::default();
    let mut set = |k: &str, v: String| {
        c.insert_json5(k, &v)
            .map_err(|e| BridgeError::Config(format!("zenoh setting {k} = {v}: {e}")))
    };
    let list = |l: &[String]| {
        let quoted: Vec<String> = l.iter().map(|e| format!("{e:?}")).collect();
        format!("[{}]", quoted.join(","))
    };
    set("scouting/multicast/enabled", s.scouting.to_string())?;
    if !s.connect.is_empty() {
        set("connect/endpoints", list(&s.connect))?;
    }
    if !s.listen.is_empty() {
        set("listen/endpoints", list(&s.listen))?;
    }
    Ok(c)
}
