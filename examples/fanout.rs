//! One producer, three readers of different kinds, each in a process of its own.
//!
//! The producer publishes a robot's pose 20,000 times. The readers share the one state channel
//! `pose`, declared with two consumer ends:
//!
//! * `controller` claims a consumer end and sleeps until each update (notification);
//! * `logger` claims the other consumer end and looks every millisecond, taking only the
//!   newest update each time and counting what it missed;
//! * `monitor` is an observer: it claims no end and writes nothing to the segment; it copies
//!   the newest pose, checked whole, and prints the channel's schema from the segment.
//!
//! Each reader checks every pose it gets (all its words carry the update's number) and prints
//! what it saw. The producer never waits for any of them.
//!
//! ```sh
//! cargo run --release --example fanout
//! ```

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use rtipc::{
    ChannelSpec, Direction, Error, Object, Observed, RawObserver, Segment, StateConsumer,
    StateObserver, StateProducer, StateRef,
};

/// The pose; `seq` and every word of `check` carry the update's number, so a torn read would
/// show.
#[derive(Object, Debug)]
#[repr(C)]
struct Pose {
    seq: u64,
    x: f64,
    y: f64,
    heading: f64,
    check: [u64; 28],
}

impl Pose {
    fn whole(&self, seq: u64) -> bool {
        self.seq == seq && self.x == seq as f64 && self.check.iter().all(|&w| w == seq)
    }
}

const UPDATES: u64 = 20_000;
const READERS: [&str; 3] = ["controller", "logger", "monitor"];

/// What a reader saw.
#[derive(Default)]
struct Tally {
    seen: u64,
    missed: u64,
    torn: u64,
    backwards: u64,
    last: u64,
}

impl Tally {
    fn record(&mut self, seq: u64, missed: u64, whole: bool) {
        self.torn += u64::from(!whole);
        self.backwards += u64::from(seq <= self.last);
        self.seen += 1;
        self.missed += missed;
        self.last = seq;
    }

    fn report(&self, who: &str) -> bool {
        println!(
            "[{who}] {} poses seen, {} missed, {} torn, {} out of order; the last #{}",
            self.seen, self.missed, self.torn, self.backwards, self.last
        );
        self.torn == 0 && self.backwards == 0 && self.last == UPDATES
    }
}

/// A reader process.
fn reader(who: &str, name: &str) -> Result<bool, Error> {
    let seg = Segment::wait_open(name, Duration::from_secs(10))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut t = Tally::default();
    match who {
        "controller" => {
            let mut rx = StateConsumer::<Pose>::new(&seg, "pose")?;
            println!(
                "[controller] consumer end {}, sleeping until each update",
                rx.index()
            );
            while t.last < UPDATES && Instant::now() < deadline {
                rx.wait(Some(Duration::from_millis(100)))?;
                if let Some(p) = rx.fetch()? {
                    if StateRef::is_new(&p) {
                        t.record(
                            StateRef::seq(&p),
                            StateRef::missed(&p),
                            p.whole(StateRef::seq(&p)),
                        );
                    }
                }
            }
        }
        "logger" => {
            let mut rx = StateConsumer::<Pose>::new(&seg, "pose")?;
            println!(
                "[logger] consumer end {}, looking every millisecond",
                rx.index()
            );
            while t.last < UPDATES && Instant::now() < deadline {
                if let Some(p) = rx.fetch()? {
                    if StateRef::is_new(&p) {
                        t.record(
                            StateRef::seq(&p),
                            StateRef::missed(&p),
                            p.whole(StateRef::seq(&p)),
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        _ => {
            let raw = RawObserver::new(&seg, "pose")?;
            let fields: Vec<String> = raw
                .objects()
                .flat_map(|o| o.schema.fields().iter().map(|f| f.name.to_string()))
                .collect();
            println!(
                "[monitor] observer of a {} channel with {} consumer ends; fields from the \
                 segment: {}",
                raw.kind(),
                raw.consumers(),
                fields.join(", ")
            );
            let mut watch = StateObserver::<Pose>::new(&seg, "pose")?;
            while t.last < UPDATES && Instant::now() < deadline {
                match watch.observe() {
                    Ok(Some(p)) if Observed::is_new(&p) => {
                        let seq = Observed::seq(&p);
                        t.record(seq, Observed::missed(&p), p.whole(seq));
                    }
                    Ok(_) | Err(rtipc::DataError::Lapped) => {}
                    Err(e) => return Err(e.into()),
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    Ok(t.report(who))
}

fn spawn(who: &str, name: &str) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args([who, name])
        .spawn()
}

/// The producer: creates the segment, starts the readers, publishes.
fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let name = format!("rtipc-fanout-demo-{}", std::process::id());
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("pose", Direction::CreatorToPeer)
                .consumers(2)
                .object::<Pose>()
                .notify(true),
        )
        .create(&name)?;
    let mut tx = StateProducer::<Pose>::new(&seg, "pose")?;
    let mut children = Vec::new();
    for who in READERS {
        children.push(spawn(who, &name)?);
    }
    // Give the consumers a moment to claim their ends; the observer needs none.
    tx.wait_for_consumer(Some(Duration::from_secs(10)))?;
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    for seq in 1..=UPDATES {
        let mut p = tx.write()?;
        p.seq = seq;
        p.x = seq as f64;
        p.y = (seq as f64 * 0.001).sin();
        p.heading = (seq as f64 * 0.001).cos();
        p.check = [seq; 28];
        p.publish()?;
        // About 20 kHz.
        while start.elapsed() < Duration::from_micros(50 * seq) {
            std::hint::spin_loop();
        }
    }
    println!(
        "[producer] published {UPDATES} poses in {:.2} s to three readers",
        start.elapsed().as_secs_f64()
    );
    let mut ok = true;
    for (who, mut child) in READERS.into_iter().zip(children) {
        let status = child.wait()?;
        if !status.success() {
            eprintln!("[producer] {who} exited with {status}");
            ok = false;
        }
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let (Some(who), Some(name)) = (args.get(1), args.get(2)) {
        return match reader(who, name) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("[{who}] {e}");
                ExitCode::from(3)
            }
        };
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("[producer] {e}");
            ExitCode::from(3)
        }
    }
}
