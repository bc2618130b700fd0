//! Record channels between real processes: a million records of random sizes up to 1 MiB
//! through a 4 MiB ring, whole and in order; the overwrite form counting every record it
//! drops; producers and consumers killed with SIGKILL at random moments and replaced, losing
//! nothing and tearing nothing; and a ring whose headers and words a hostile peer rewrote.

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rtipc::{CorruptWord, DataError, Direction, Error, RecordConsumer, RecordProducer, Segment};

fn spawn_piped(role: Role, target: &str, count: u64) -> Child {
    peer_command(role, target, count)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn peer")
}

/// Waits for `child` (at most `limit`), requires exit code 0, and returns what it printed.
fn output(mut child: Child, limit: Duration) -> String {
    let mut out = String::new();
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    wait_peer(child, limit);
    reader.join().unwrap()
}

/// The number after `key=` or `key ` in `text`.
fn field(text: &str, key: &str) -> u64 {
    text.split_whitespace()
        .skip_while(|w| *w != key && !w.starts_with(&format!("{key}=")))
        .find_map(|w| w.trim_start_matches(&format!("{key}=")).parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in {text:?}"))
}

/// Pops and checks every record it can now: each numbered one after the last (nothing
/// missed: lossless), of its length, whole. Returns how many it took.
fn drain(rx: &mut RecordConsumer<RecWord>, last: &mut u64, bytes: &mut u64) -> u64 {
    let max = rec_max(rx.max_len());
    let mut n = 0;
    while let Some(r) = rx.pop().unwrap() {
        let seq = r.seq();
        assert_eq!(
            (seq, r.missed()),
            (*last + 1, 0),
            "record after {last}: nothing is lost"
        );
        assert_eq!(r.len() as u64, rec_len(seq, max), "record {seq}'s length");
        assert!(rec_ok(&r, seq), "record {seq} is torn");
        *bytes += 8 * r.len() as u64;
        *last = seq;
        n += 1;
    }
    n
}

#[test]
fn a_million_records_of_up_to_1_mib_cross_a_4_mib_ring_whole_and_in_order() {
    const N: u64 = 1_000_000;
    let name = seg_name("records-million");
    let seg = record_segment(&name, Direction::PeerToCreator, 4 << 20);
    let mut rx = RecordConsumer::<RecWord>::new(&seg, "records").unwrap();
    assert!(rx.max_len() as u64 >= REC_MAX, "1 MiB records fit");
    let mut peer = spawn_piped(Role::RecordSend, &name, N);
    let t0 = Instant::now();
    let (mut last, mut bytes, mut largest) = (0, 0, 0u64);
    while last < N {
        let before = bytes;
        if drain(&mut rx, &mut last, &mut bytes) == 0 {
            // Blocks until the producer commits (a futex wake-up), or fails if it is gone.
            assert!(
                rx.wait(Some(Duration::from_secs(60))).unwrap(),
                "no record after {last} within 60 s"
            );
        }
        largest = largest.max(bytes - before);
        assert!(
            peer.try_wait().unwrap().is_none_or(|s| s.success()),
            "the producer failed"
        );
    }
    let took = t0.elapsed();
    let out = output(peer, Duration::from_secs(60));
    assert_eq!(field(&out, "committed"), N);
    assert!(rx.pop().unwrap().is_none(), "nothing after record {N}");
    println!(
        "{N} records, {:.2} GB, in {took:?}: {:.0} records/s",
        bytes as f64 / 1e9,
        N as f64 / took.as_secs_f64()
    );
}

#[test]
fn the_overwrite_form_counts_every_record_it_drops() {
    const N: u64 = 100_000;
    let name = seg_name("records-overwrite");
    let seg = record_segment(&name, Direction::PeerToCreator, 64 << 10);
    let mut rx = RecordConsumer::<RecWord>::new(&seg, "records").unwrap();
    let mut peer = spawn_piped(Role::RecordOverwrite, &name, N);
    // Before its first pop, the consumer lets the producer write several rings' worth (a
    // 64 KiB ring holds a few hundred of these records), so that drops happen however the
    // two processes are scheduled afterwards.
    let insp = rtipc::inspect::Inspector::of(&seg);
    let deadline = Instant::now() + Duration::from_secs(60);
    while insp.channel("records").unwrap().published < 3000 {
        assert!(
            Instant::now() < deadline,
            "the producer committed 3,000 records"
        );
        assert!(
            peer.try_wait().unwrap().is_none(),
            "the producer stopped early"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let (mut seen, mut missed, mut last) = (0u64, 0u64, 0u64);
    let mut pops = 0u64;
    let mut held_long = 0;
    loop {
        let done = {
            let Some(r) = rx.pop().unwrap() else {
                if last == N {
                    break;
                }
                // A producer that stopped early fails the test rather than leave it waiting.
                if let Some(status) = peer.try_wait().unwrap() {
                    let out = output(peer, Duration::from_secs(10));
                    panic!("the producer exited ({status}) after record {last} of {N}: {out}");
                }
                std::thread::yield_now();
                continue;
            };
            let seq = r.seq();
            assert_eq!(
                seq,
                last + 1 + r.missed(),
                "numbers and missed counts agree"
            );
            assert_eq!(r.len() as u64, rec_len(seq, 512));
            assert!(rec_ok(&r, seq), "record {seq} is torn");
            pops += 1;
            // A slow consumer: now and then it holds a record for a while, which the producer
            // must not overwrite (checked again after the pause).
            if pops.is_multiple_of(64) {
                std::thread::sleep(Duration::from_micros(200));
                assert!(rec_ok(&r, seq), "record {seq} changed while held");
                held_long += 1;
            }
            seen += 1;
            missed += r.missed();
            last = seq;
            last == N
        };
        if done {
            break;
        }
    }
    let out = output(peer, Duration::from_secs(60));
    assert_eq!(field(&out, "committed"), N);
    assert_eq!(seen + missed, N, "every record seen or counted as missed");
    assert_eq!(
        missed,
        field(&out, "dropped"),
        "the consumer counts what the producer dropped"
    );
    assert!(missed > 0, "the slow consumer missed some");
    assert!(held_long > 0);
    println!("{N} records: {seen} seen, {missed} dropped and counted");
}

#[test]
fn producers_killed_at_random_moments_lose_and_tear_nothing() {
    const KILLS: u32 = 30;
    let name = seg_name("records-producer-killed");
    let seg = record_segment(&name, Direction::PeerToCreator, 256 << 10);
    let mut rx = RecordConsumer::<RecWord>::new(&seg, "records").unwrap();
    let mut rng = Rng::new("producers_killed_at_random_moments_lose_and_tear_nothing");
    let (mut last, mut bytes) = (0, 0);
    for k in 0..KILLS {
        let mut victim = spawn_peer(Role::RecordSend, &name, 0);
        if k == 0 {
            // However slowly processes start here, the victims commit something: the first
            // one is killed only after its first record arrived.
            let deadline = Instant::now() + Duration::from_secs(30);
            while last == 0 && Instant::now() < deadline {
                drain(&mut rx, &mut last, &mut bytes);
            }
        }
        let until =
            Instant::now() + Duration::from_millis(5) + rng.delay(Duration::from_millis(40));
        while Instant::now() < until {
            drain(&mut rx, &mut last, &mut bytes);
        }
        victim.kill().unwrap();
        let status = victim.wait().unwrap();
        assert!(
            status.code().is_none(),
            "the victim was killed, not failed: {status}"
        );
        drain(&mut rx, &mut last, &mut bytes);
    }
    // A last producer commits 1,000 more after whatever its predecessors published.
    let before = last;
    let peer = spawn_piped(Role::RecordSend, &name, 1000);
    let mut child = Some(peer);
    let mut out = String::new();
    let t0 = Instant::now();
    loop {
        drain(&mut rx, &mut last, &mut bytes);
        if let Some(c) = child.as_mut() {
            if c.try_wait().unwrap().is_some() {
                out = output(child.take().unwrap(), Duration::from_secs(10));
            }
        } else {
            drain(&mut rx, &mut last, &mut bytes);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the last producer finishes"
        );
    }
    let committed = field(&out, "committed");
    assert_eq!(
        last, committed,
        "every committed record arrived once, in order"
    );
    assert!(committed >= before + 1000);
    assert!(before > 0, "the victims committed records");
    println!("{KILLS} producers killed; {committed} records, none lost or torn");
}

#[test]
fn consumers_killed_at_random_moments_are_replaced_and_see_only_whole_records_in_order() {
    const N: u64 = 200_000;
    const KILLS: u32 = 20;
    let name = seg_name("records-consumer-killed");
    let seg = record_segment(&name, Direction::CreatorToPeer, 64 << 10);
    let (finished, done) = std::sync::mpsc::channel::<()>();
    let producer = {
        let seg = seg.clone();
        std::thread::spawn(move || {
            let mut tx = RecordProducer::<RecWord>::new(&seg, "records").unwrap();
            while tx.committed() < N {
                let seq = tx.committed() + 1;
                match tx.try_reserve(rec_len(seq, rec_max(tx.max_len())) as usize) {
                    Ok(mut r) => {
                        rec_fill(&mut r, seq);
                        assert_eq!(r.commit(), seq);
                    }
                    Err(DataError::NoRoom { .. }) => std::thread::sleep(Duration::from_micros(50)),
                    Err(e) => panic!("{e}"),
                }
            }
            // Stay, so that consumers never see the producer gone.
            let _ = done.recv();
        })
    };
    let mut rng = Rng::new("consumers_killed_at_random_moments");
    for k in 0..KILLS {
        let mut victim = spawn_piped(Role::RecordTake, &name, N);
        if k == 0 {
            // However slowly processes start here, the victims take something: the first one
            // is killed only after it took its first record.
            let deadline = Instant::now() + Duration::from_secs(30);
            while taken(&seg) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(Duration::from_millis(2) + rng.delay(Duration::from_millis(30)));
        victim.kill().unwrap();
        victim.wait().unwrap();
        let mut out = String::new();
        victim
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(!out.contains("BAD"), "{out}");
    }
    let out = output(
        spawn_piped(Role::RecordTake, &name, N),
        Duration::from_secs(120),
    );
    assert!(!out.contains("BAD"), "{out}");
    assert_eq!(field(&out, "last"), N);
    assert!(
        field(&out, "after") > 0,
        "the last consumer went on after its predecessors"
    );
    finished.send(()).unwrap();
    producer.join().unwrap();
}

/// How many records the consumer end of `records` has taken.
fn taken(seg: &Segment) -> u64 {
    rtipc::inspect::Inspector::of(seg)
        .channel("records")
        .ok()
        .and_then(|c| {
            c.ends
                .iter()
                .find(|e| e.end == rtipc::End::Consumer)
                .and_then(|e| e.taken)
        })
        .unwrap_or(0)
}

/// The offsets of the ring and of the two protocol lines of channel 0.
struct Places {
    ring: u64,
    producer: u64,
    consumer: u64,
}

fn places(f: &std::fs::File) -> Places {
    let entry = entry_offset(f, 0);
    Places {
        ring: read_u64(f, entry + ENTRY_BUFFER_OFFSET),
        producer: ctrl_line(f, 0, 2),
        consumer: ctrl_line(f, 0, 3),
    }
}

/// A peer (this process's writes through the file, outside any handle) rewrites one word of a
/// live channel; the consumer's next pop (or the producer's next reservation) must be a clear
/// error naming the word, then refuse further use; never a panic.
#[test]
fn headers_and_positions_a_hostile_peer_wrote_are_clear_errors() {
    type Corrupt = fn(&std::fs::File, &Places);
    let cases: [(&str, Corrupt, CorruptWord); 9] = [
        (
            "length 0",
            |f, p| write_n(f, p.ring, 8, 0),
            CorruptWord::RecordHeader,
        ),
        (
            "length past the maximum",
            |f, p| write_n(f, p.ring, 8, 1 << 40),
            CorruptWord::RecordHeader,
        ),
        (
            "length past the tail",
            |f, p| write_n(f, p.ring, 8, 300),
            CorruptWord::RecordHeader,
        ),
        (
            "sequence 0",
            |f, p| write_n(f, p.ring + 8, 8, 0),
            CorruptWord::RecordHeader,
        ),
        (
            "sequence from the future",
            |f, p| write_n(f, p.ring + 8, 8, 1 << 50),
            CorruptWord::RecordHeader,
        ),
        (
            "padding of the wrong size",
            |f, p| write_n(f, p.ring, 8, (1 << 63) | 48),
            CorruptWord::RecordHeader,
        ),
        (
            "tail past the ring",
            |f, p| write_n(f, p.producer, 8, 1 << 30),
            CorruptWord::RecordPositions,
        ),
        (
            "head past the tail",
            |f, p| write_n(f, p.consumer, 8, 1 << 20),
            CorruptWord::RecordPositions,
        ),
        (
            "head off a record boundary",
            |f, p| write_n(f, p.consumer, 8, 8),
            CorruptWord::RecordPositions,
        ),
    ];
    for (what, corrupt, reason) in cases {
        let name = seg_name(&format!("records-hostile-{}", what.replace(' ', "-")));
        let seg = record_segment(&name, Direction::CreatorToPeer, 4096);
        let peer = Segment::open(&name).unwrap();
        let mut tx = RecordProducer::<RecWord>::new(&seg, "records").unwrap();
        let mut rx = RecordConsumer::<RecWord>::new(&peer, "records").unwrap();
        // Record 1 of 5 elements (64 bytes) and record 2 of 3 at the ring's start.
        tx.try_send(&[
            RecWord { v: 1 },
            RecWord { v: 2 },
            RecWord { v: 3 },
            RecWord { v: 4 },
            RecWord { v: 5 },
        ])
        .unwrap();
        tx.try_send(&[RecWord { v: 6 }, RecWord { v: 7 }, RecWord { v: 8 }])
            .unwrap();
        let f = shm_file(&name);
        corrupt(&f, &places(&f));
        match rx.pop() {
            Err(DataError::Corrupt { what: w, .. }) => assert_eq!(w, reason, "{what}"),
            Err(e) => panic!("{what}: {e}"),
            Ok(r) => panic!("{what}: {:?}", r.map(|r| (r.seq(), r.len()))),
        }
        assert!(matches!(rx.pop(), Err(DataError::Poisoned)), "{what}");
        drop(rx);
        // A successor of the consumer, and the producer, see the same words: errors too, or
        // (for the words a consumer alone checks) a producer that still works within bounds.
        let mut rx = RecordConsumer::<RecWord>::new(&peer, "records").unwrap();
        assert!(
            rx.pop().is_err(),
            "{what}: the successor refuses the same word"
        );
        match tx.try_reserve(1) {
            Ok(_) | Err(DataError::NoRoom { .. }) | Err(DataError::Corrupt { .. }) => {}
            Err(e) => panic!("{what}: {e}"),
        }
        drop((tx, rx));
        // A new producer claims from the words: an error or a producer, never a panic.
        match RecordProducer::<RecWord>::new(&seg, "records") {
            Ok(_) | Err(Error::Data(DataError::Corrupt { .. })) => {}
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// Random words written over the ring's first headers and the protocol lines while both ends
/// run: every call returns a value or an error, and the debug build's overflow checks never
/// fire.
#[test]
fn random_words_in_the_ring_and_the_lines_never_panic() {
    let mut rng = Rng::new("random_words_in_the_ring_and_the_lines_never_panic");
    for round in 0..200 {
        let name = seg_name(&format!("records-fuzz-{round}"));
        let seg = record_segment(&name, Direction::CreatorToPeer, 4096);
        let peer = Segment::open(&name).unwrap();
        let mut tx = RecordProducer::<RecWord>::new(&seg, "records").unwrap();
        let mut rx = RecordConsumer::<RecWord>::new(&peer, "records").unwrap();
        for seq in 1..=(round % 7 + 1) {
            let _ = tx.try_send(&vec![RecWord { v: seq }; (seq * 13 % 100 + 1) as usize]);
        }
        let f = shm_file(&name);
        let p = places(&f);
        for _ in 0..1 + rng.next() % 3 {
            let at = match rng.next() % 3 {
                0 => p.ring + 8 * (rng.next() % 64),
                1 => p.producer + 8 * (rng.next() % 3),
                _ => p.consumer + 8 * (rng.next() % 3),
            };
            let v = match rng.next() % 4 {
                0 => rng.next(),
                1 => rng.next() % 5000,
                2 => u64::MAX - rng.next() % 3,
                _ => (1 << 63) | (rng.next() % 4096),
            };
            write_n(&f, at, 8, v);
        }
        for _ in 0..20 {
            let _ = tx
                .try_reserve((rng.next() % 300) as usize)
                .map(|r| r.commit());
            let _ = tx
                .reserve_overwrite((rng.next() % 300) as usize)
                .map(|r| r.commit());
            if let Ok(Some(r)) = rx.pop() {
                assert!(r.len() <= (2048 - 16) / 8, "within the ring's maximum");
            }
        }
        drop((tx, rx));
        let _ = RecordProducer::<RecWord>::new(&seg, "records");
        let _ = RecordConsumer::<RecWord>::new(&peer, "records");
    }
}

/// Raw record handles move a record channel's elements as bytes: a typed producer's records
/// read as bytes, bytes read as a typed consumer's records, wrong lengths and short buffers
/// refused, and the overwrite form's drops counted.
#[test]
fn raw_record_handles_move_records_as_bytes() {
    let name = seg_name("records-raw");
    let seg = Segment::builder()
        .record::<RecWord>("a", Direction::CreatorToPeer, 4096)
        .record::<RecWord>("b", Direction::CreatorToPeer, 4096)
        .create(&name)
        .unwrap();
    let peer = Segment::open(&name).unwrap();
    let bytes_of = |seq: u64, len: u64| -> Vec<u8> {
        (0..len)
            .flat_map(|i| rec_word(seq, i).to_le_bytes())
            .collect()
    };

    // Typed in, raw out.
    let mut typed = RecordProducer::<RecWord>::new(&seg, "a").unwrap();
    let mut raw = rtipc::RawRecordConsumer::new(&peer, "a").unwrap();
    assert_eq!(raw.element_size(), 8);
    let mut buf = vec![0u8; raw.max_len() * 8];
    for seq in 1..=50u64 {
        let items: Vec<RecWord> = (0..seq % 9 + 1)
            .map(|i| RecWord {
                v: rec_word(seq, i),
            })
            .collect();
        assert_eq!(typed.try_send(&items).unwrap(), seq);
        let r = raw.pop_into(&mut buf).unwrap().unwrap();
        assert_eq!((r.len as u64, r.seq, r.missed), (seq % 9 + 1, seq, 0));
        assert_eq!(&buf[..r.len * 8], &bytes_of(seq, seq % 9 + 1)[..]);
    }
    assert_eq!(raw.pop_into(&mut buf).unwrap(), None);
    let e = raw.pop_into(&mut [0u8; 8]).unwrap_err().to_string();
    assert!(
        e.contains(&format!("holds {} bytes, not 8", buf.len())),
        "{e}"
    );

    // Raw in, typed out; the overwrite form drops the oldest and the consumer counts them.
    let mut raw = rtipc::RawRecordProducer::new(&seg, "b").unwrap();
    let mut typed = RecordConsumer::<RecWord>::new(&peer, "b").unwrap();
    assert_eq!(raw.try_send(&bytes_of(1, 3)).unwrap(), 1);
    let r = typed.pop().unwrap().unwrap();
    assert_eq!(
        r.iter().map(|w| w.v).collect::<Vec<_>>(),
        (0..3).map(|i| rec_word(1, i)).collect::<Vec<_>>()
    );
    drop(r);
    let e = raw.try_send(&[0u8; 12]).unwrap_err().to_string();
    assert!(
        e.contains("whole number of 8-byte elements, not 12 bytes"),
        "{e}"
    );
    let mut seq = 1;
    while raw.dropped() == 0 {
        seq += 1;
        assert_eq!(raw.send_overwrite(&bytes_of(seq, 100)).unwrap(), seq);
    }
    let dropped = raw.dropped();
    let r = typed.pop().unwrap().unwrap();
    assert_eq!((r.seq(), r.missed()), (2 + dropped, dropped));
    assert_eq!(r[99].v, rec_word(r.seq(), 99));
    assert_eq!(raw.committed(), seq);
}
