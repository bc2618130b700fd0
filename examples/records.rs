//! Variable-size records between two processes, after RaftLib's most complete IPC example.
//!
//! The first process creates a segment with two record channels, `left` and `right`, and
//! starts a producer thread that sends numbered records on both, alternating: record `k` of a
//! channel holds `1 + k % 300` elements, each carrying `k` and its index, allocated in place in
//! the channel's ring, written there and committed. A second process (this program started
//! again) runs two consumer threads, one per channel, each sleeping until a record arrives and
//! checking every record in order: its number, its length and every element. Nothing is
//! copied and no lock or semaphore is taken; a full ring makes the producer wait for room.
//!
//! Unlike RaftLib's channels, each channel here is typed (the element's schema is in the
//! segment and checked when the consumer attaches) and found by name.
//!
//! ```sh
//! cargo run --release --example records
//! ```

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use rtipc::{
    ChannelSpec, DataError, Direction, Error, Object, RecordConsumer, RecordProducer, Segment,
};

/// One element of a record.
#[derive(Object, Debug)]
#[repr(C)]
struct Sample {
    /// The record's number.
    record: u64,
    /// The element's index in its record.
    index: u32,
    /// `record ^ index`, as a check.
    check: u32,
}

/// Records per channel.
const RECORDS: u64 = 200_000;
const CHANNELS: [&str; 2] = ["left", "right"];

fn len_of(record: u64) -> usize {
    1 + (record % 300) as usize
}

fn sample(record: u64, index: u32) -> Sample {
    Sample {
        record,
        index,
        check: record as u32 ^ index,
    }
}

/// The producer thread: `RECORDS` records on each channel, alternating.
fn produce(seg: &Segment) -> Result<(), Error> {
    let mut txs = CHANNELS
        .iter()
        .map(|c| RecordProducer::<Sample>::new(seg, c))
        .collect::<Result<Vec<_>, _>>()?;
    for tx in &mut txs {
        tx.wait_for_consumer(Some(Duration::from_secs(10)))?;
    }
    for k in 1..=RECORDS {
        for tx in &mut txs {
            loop {
                match tx.try_reserve(len_of(k)) {
                    Ok(mut rec) => {
                        for (i, s) in rec.iter_mut().enumerate() {
                            *s = sample(k, i as u32);
                        }
                        rec.commit();
                        break;
                    }
                    // The ring is full until the consumer takes records: wait for room.
                    Err(DataError::NoRoom { .. }) => std::thread::yield_now(),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

/// The first process: creates the segment, starts the consumer process and the producer.
fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let name = format!("rtipc-records-demo-{}", std::process::id());
    let mut builder = Segment::builder();
    for c in CHANNELS {
        builder = builder.channel(
            ChannelSpec::record(c, Direction::CreatorToPeer, 256 << 10)
                .object::<Sample>()
                .notify(true),
        );
    }
    let seg = builder.create(&name)?;
    let mut consumer = Command::new(std::env::current_exe()?)
        .args(["consume", &name])
        .spawn()?;
    let start = Instant::now();
    let producer = {
        let seg = seg.clone();
        std::thread::spawn(move || produce(&seg))
    };
    producer.join().expect("the producer thread")?;
    let took = start.elapsed().as_secs_f64();
    println!(
        "[producer] {} records on {} channels in {took:.2} s: {:.0} records/s",
        RECORDS * 2,
        CHANNELS.len(),
        (RECORDS * 2) as f64 / took
    );
    let status = consumer.wait()?;
    if !status.success() {
        eprintln!("[producer] the consumer process exited with {status}");
    }
    Ok(status.success())
}

/// One consumer thread: every record of channel `name`, in order and whole.
fn consume_channel(seg: &Segment, name: &str) -> Result<bool, Error> {
    let mut rx = RecordConsumer::<Sample>::new(seg, name)?;
    let (mut next, mut elements, mut bad) = (1u64, 0u64, 0u64);
    while next <= RECORDS {
        let got = match rx.pop()? {
            Some(rec) => {
                let whole = rec.len() == len_of(next)
                    && rec.missed() == 0
                    && rec.iter().enumerate().all(|(i, s)| {
                        let want = sample(next, i as u32);
                        (s.record, s.index, s.check) == (want.record, want.index, want.check)
                    });
                bad += u64::from(rec.seq() != next || !whole);
                elements += rec.len() as u64;
                true
            }
            None => false,
        };
        if got {
            next += 1;
        } else if !rx.wait(Some(Duration::from_secs(10)))? {
            eprintln!("[{name}] no record {next} within 10 s");
            return Ok(false);
        }
    }
    println!(
        "[{name}] {} records, {elements} elements, {bad} out of order or torn",
        next - 1
    );
    Ok(bad == 0)
}

/// The second process: one consumer thread per channel.
fn consume(name: &str) -> Result<bool, Error> {
    let seg = Segment::wait_open(name, Duration::from_secs(10))?;
    let threads: Vec<_> = CHANNELS
        .iter()
        .map(|c| {
            let seg = seg.clone();
            std::thread::spawn(move || consume_channel(&seg, c))
        })
        .collect();
    let mut ok = true;
    for t in threads {
        ok &= t.join().expect("a consumer thread")?;
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("consume"), Some(name)) => consume(name).map_err(|e| e.to_string()),
        _ => run().map_err(|e| e.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(3)
        }
    }
}
