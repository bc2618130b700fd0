//! The peer's roles for the record-channel tests.

use std::time::Duration;

use rtipc::{DataError, Error, RecordConsumer, RecordProducer, Segment};

use super::common::{rec_fill, rec_len, rec_max, rec_ok, RecWord};

/// Commits `count` more records (0: until killed), lossless (`overwrite`: dropping the oldest).
pub fn send(seg: &Segment, count: u64, overwrite: bool) -> i32 {
    let mut tx = match RecordProducer::<RecWord>::new(seg, "records") {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("peer: cannot claim the producer of `records`: {e}");
            return 10;
        }
    };
    let max = if overwrite {
        512
    } else {
        rec_max(tx.max_len())
    };
    let end = if count == 0 {
        u64::MAX
    } else {
        tx.committed() + count
    };
    while tx.committed() < end {
        let seq = tx.committed() + 1;
        let len = rec_len(seq, max) as usize;
        let reserved = if overwrite {
            tx.reserve_overwrite(len)
        } else {
            tx.try_reserve(len)
        };
        match reserved {
            Ok(mut r) => {
                rec_fill(&mut r, seq);
                if r.commit() != seq {
                    eprintln!("peer: record {seq} got another number");
                    return 4;
                }
            }
            Err(DataError::NoRoom { .. }) | Err(DataError::Held) => std::thread::yield_now(),
            Err(e) => {
                eprintln!("peer: record {seq}: {e}");
                return 3;
            }
        }
    }
    println!("committed {}", tx.committed());
    if overwrite {
        println!("dropped {}", tx.dropped());
    }
    0
}

/// Takes and checks every record until record `count`.
pub fn take(seg: &Segment, count: u64) -> i32 {
    let mut rx = match RecordConsumer::<RecWord>::new(seg, "records") {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("peer: cannot claim the consumer of `records`: {e}");
            return 10;
        }
    };
    let max = rec_max(rx.max_len());
    let mut last = rx.taken();
    let mut missed = 0;
    println!("start after={last}");
    while last < count {
        let empty = match rx.pop() {
            Ok(Some(r)) => {
                let seq = r.seq();
                if seq != last + 1 + r.missed()
                    || r.len() as u64 != rec_len(seq, max)
                    || !rec_ok(&r, seq)
                {
                    println!(
                        "BAD record {seq} (missed {}) after {last}, {} elements",
                        r.missed(),
                        r.len()
                    );
                    return 1;
                }
                missed += r.missed();
                last = seq;
                false
            }
            Ok(None) => true,
            Err(e) => {
                println!("BAD pop: {e}");
                return 1;
            }
        };
        if empty {
            match rx.wait(Some(Duration::from_secs(20))) {
                Ok(true) => {}
                Ok(false) | Err(Error::NoProducer { .. }) => {
                    println!("BAD no record after {last} within 20 s");
                    return 1;
                }
                Err(e) => {
                    println!("BAD wait: {e}");
                    return 1;
                }
            }
        }
    }
    println!("done last={last} missed={missed}");
    0
}
