//! A producer that crashes and restarts, and a consumer that never notices more than a pause.
//!
//! The program runs a consumer and, as separate processes, a producer that creates a named
//! segment and publishes a counter at 5 kHz. Every 300 ms it kills the producer with SIGKILL
//! and starts a new one. The new producer creates the segment with the same declaration, which
//! resumes the one its predecessor left: the consumer keeps its handles, is told that its
//! producer went (`Error::NoProducer`), waits for the next one, and goes on counting. No user
//! code retries an `open`, re-attaches or repairs anything.
//!
//! ```sh
//! cargo run --release --example restart
//! ```

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use rtipc::{Direction, Error, Object, Segment, StateConsumer, StateProducer, StateRef};

/// The counter: every word carries the update's number, so a torn update would show.
#[derive(Object, Debug)]
#[repr(C)]
struct Tick {
    seq: u64,
    words: [u64; 8],
    producer_pid: u32,
    _reserved: u32,
}

const RESTARTS: u32 = 5;

fn declaration() -> rtipc::SegmentBuilder {
    Segment::builder()
        .state::<Tick>("counter", Direction::CreatorToPeer)
        .notify(true)
}

/// The producer process: creates (or resumes) the segment and publishes until killed.
fn producer(name: &str) -> Result<(), Error> {
    let seg = declaration().create(name)?;
    let mut tx = StateProducer::<Tick>::new(&seg, "counter")?;
    let first = tx.published() + 1;
    eprintln!(
        "[producer {}] {} `{name}`, publishing from #{first}",
        std::process::id(),
        if first == 1 { "created" } else { "resumed" }
    );
    loop {
        let seq = tx.published() + 1;
        let mut t = tx.write()?;
        t.seq = seq;
        t.words = [seq; 8];
        t.producer_pid = std::process::id();
        t.publish()?;
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn spawn_producer(name: &str) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(["producer", name])
        .spawn()
}

/// The consumer, with a supervisor that kills and restarts the producer.
fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let name = format!("rtipc-restart-demo-{}", std::process::id());
    let mut child = spawn_producer(&name)?;
    // Waits for the first producer to create the segment: no retry loop of our own.
    let seg = Segment::wait_open(&name, Duration::from_secs(10))?;
    let mut rx = StateConsumer::<Tick>::new(&seg, "counter")?;
    let (mut received, mut torn, mut backwards, mut last) = (0u64, 0u64, 0u64, 0u64);
    let mut producers = vec![child.id()];
    let mut restarts = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(300);
    let end = loop {
        match rx.wait(Some(Duration::from_millis(50))) {
            Ok(true) => {
                if let Some(t) = rx.fetch()? {
                    if StateRef::is_new(&t) {
                        received += 1;
                        // Every word, and the number it was given, must agree.
                        torn += u64::from(
                            t.seq != StateRef::seq(&t) || t.words.iter().any(|&w| w != t.seq),
                        );
                        backwards += u64::from(StateRef::seq(&t) <= last);
                        last = StateRef::seq(&t);
                    }
                }
            }
            Ok(false) => {}
            Err(Error::NoProducer { .. }) => {
                println!("[consumer] producer gone after #{last}; waiting for the next one");
                rx.wait_for_producer(Some(Duration::from_secs(10)))?;
            }
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= next_kill {
            // SAFETY: sending a signal to our own child, whose pid we hold.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            child.wait()?;
            if restarts == RESTARTS {
                break last;
            }
            restarts += 1;
            child = spawn_producer(&name)?;
            producers.push(child.id());
            next_kill = Instant::now() + Duration::from_millis(300);
        }
    };
    Segment::remove_stale(&name)?;
    println!(
        "[consumer] {restarts} restarts by {} producer processes; {received} updates received, \
         the last #{end}; {torn} torn, {backwards} out of order; the consumer attached once",
        producers.len()
    );
    Ok(torn == 0 && backwards == 0 && received > 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("producer") {
        let name = args.get(2).cloned().unwrap_or_default();
        if let Err(e) = producer(&name) {
            eprintln!("[producer] {e}");
            return ExitCode::from(2);
        }
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("[consumer] {e}");
            ExitCode::from(3)
        }
    }
}
