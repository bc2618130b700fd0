//! The System V backend: the state-channel runs of `tests/state.rs` between real processes,
//! every header and table field corrupted as in `tests/attach.rs`, stale segments, removal and
//! keys.

mod common;

use std::time::Duration;

use common::*;
use rtipc::{Direction, Error, Segment, StateConsumer, StateProducer, StateRef, SysvKey};

/// A key of its own for `test` (from its unique name), and the peer's target for it.
fn key(test: &str) -> (SysvKey, String) {
    let k = SysvKey::from_name(&unique_name(test));
    let _ = Segment::remove_stale_sysv(k);
    (k, format!("sysv:{}", k.get()))
}

#[test]
fn a_million_4k_updates_reach_another_process_whole() {
    const UPDATES: u64 = 1_000_000;
    let (k, target) = key("sysv-stress");
    let seg = Segment::builder()
        .state::<Big>("big", Direction::PeerToCreator)
        .create_sysv(k)
        .unwrap();
    let mut rx = StateConsumer::<Big>::new(&seg, "big").unwrap();
    let mut peer = spawn_peer(Role::StressProducer, &target, UPDATES);
    let (mut last, mut seen, mut missed, mut torn) = (0u64, 0u64, 0u64, 0u64);
    until(&mut peer, Duration::from_secs(300), || {
        if let Some(s) = rx.fetch().unwrap() {
            if StateRef::is_new(&s) {
                let seq = StateRef::seq(&s);
                assert!(seq > last);
                assert_eq!(StateRef::missed(&s), seq - last - 1);
                torn += u64::from(!big_ok(&s, seq));
                seen += 1;
                missed += StateRef::missed(&s);
                last = seq;
            }
        }
        last == UPDATES
    });
    wait_peer(peer, Duration::from_secs(60));
    assert_eq!((torn, last, seen + missed), (0, UPDATES, UPDATES));
    assert!(seen > 1);
}

#[test]
fn several_channels_in_both_directions_carry_their_own_data() {
    let (k, target) = key("sysv-multi");
    let seg = multi_declaration().create_sysv(k).unwrap();
    multi_run(&seg, &target, 20_000);
}

/// Writes `value` (`width` bytes) at byte `at` of System V segment `k`, through an attachment
/// of this test's own.
fn write_sysv(k: SysvKey, at: u64, width: usize, value: u64) {
    // SAFETY: plain integer arguments; the result is checked.
    let id = unsafe { libc::shmget(k.get(), 0, 0) };
    assert!(id >= 0, "shmget");
    // SAFETY: a null address lets the kernel choose; the result is checked.
    let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    assert_ne!(p as isize, -1, "shmat");
    let bytes = value.to_le_bytes();
    // SAFETY: `at` lies in the header or the table, at the start of the segment, inside the
    // attachment.
    let dst = unsafe { p.cast::<u8>().add(at as usize) };
    // SAFETY: `dst..dst + width` is inside the attachment; `bytes` is private memory of at
    // least `width` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, width) };
    // SAFETY: `p` is the attachment made above, used no more.
    unsafe { libc::shmdt(p) };
}

fn declare() -> rtipc::SegmentBuilder {
    sysv_declaration()
}

#[test]
fn every_corrupted_header_and_table_field_is_an_error() {
    let mut n = 0;
    for &(field, at, width, value) in HEADER_FIELDS {
        let (k, _) = key(&format!("sysv-h-{field}"));
        let _seg = declare().create_sysv(k).unwrap();
        write_sysv(k, at, width, value);
        let err = Segment::open_sysv(k)
            .err()
            .unwrap_or_else(|| panic!("{field} accepted"));
        let msg = err.to_string();
        let named = msg.contains(&format!("header.{field}"))
            || matches!(
                (field, &err),
                ("version", Error::UnsupportedVersion { .. }) | ("ready", Error::NotReady)
            );
        assert!(named, "{field}: error should name the field: {msg}");
        n += 1;
    }
    for ch in 0..2u64 {
        for &(field, at, width, value) in ENTRY_FIELDS {
            let (k, _) = key(&format!("sysv-t{ch}-{field}"));
            let seg = declare().create_sysv(k).unwrap();
            assert!(seg.creator_alive());
            write_sysv(k, HEADER_TABLE + ch * ENTRY + at, width, value);
            let msg = Segment::open_sysv(k)
                .err()
                .unwrap_or_else(|| panic!("channel {ch} {field} accepted"))
                .to_string();
            assert!(
                msg.contains(&format!("channel[{ch}]")) || msg.contains("header.channel"),
                "channel {ch} {field}: {msg}"
            );
            n += 1;
        }
    }
    assert_eq!(n, HEADER_FIELDS.len() + 2 * ENTRY_FIELDS.len());
}

/// Where the table starts and how long an entry is, in the segments `declare` makes (the
/// header is 128 bytes and the table follows it on a cache line).
const HEADER_TABLE: u64 = 128;
const ENTRY: u64 = 128;

#[test]
fn a_live_key_is_taken_and_a_stale_one_is_reported_and_removed() {
    let (k, target) = key("sysv-stale");
    let creator = declare().create_sysv(k).unwrap();
    assert!(matches!(
        declare().create_sysv(k),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Segment::remove_stale_sysv(k),
        Err(Error::AlreadyExists { .. })
    ));
    let peer = Segment::open_sysv(k).unwrap();
    assert_eq!(peer.creator_pid(), std::process::id());
    drop(peer);
    drop(creator);
    // Removed with the creator's last handle.
    assert!(matches!(Segment::open_sysv(k), Err(Error::NotFound { .. })));
    // A creator killed leaves a stale segment: open says so; remove_stale removes it.
    let mut life = spawn_peer(Role::SysvCreator, &target, 0);
    let kept = loop {
        match Segment::open_sysv(k) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    drop(kept);
    life.kill().unwrap();
    life.wait().unwrap();
    assert!(matches!(Segment::open_sysv(k), Err(Error::Stale { .. })));
    assert!(matches!(declare().create_sysv(k), Err(Error::Stale { .. })));
    assert!(Segment::remove_stale_sysv(k).unwrap());
    assert!(matches!(Segment::open_sysv(k), Err(Error::NotFound { .. })));
    assert!(!Segment::remove_stale_sysv(k).unwrap());
}

#[test]
fn a_stale_key_is_replaced_when_asked_and_kept_segments_stay() {
    let (k, _) = key("sysv-keep");
    let seg = declare().keep(true).create_sysv(k).unwrap();
    drop(seg);
    // Kept, and stale now: its creator lock went with the handle.
    assert!(matches!(Segment::open_sysv(k), Err(Error::Stale { .. })));
    let seg = declare().replace_stale(true).create_sysv(k).unwrap();
    let peer = Segment::open_sysv(k).unwrap();
    let mut tx = StateProducer::<Small>::new(&seg, "arm").unwrap();
    let mut rx = StateConsumer::<Small>::new(&peer, "arm").unwrap();
    tx.publish_copy(&small(1, TAG_DOWN)).unwrap();
    assert!(small_ok(&rx.fetch().unwrap().unwrap(), TAG_DOWN));
}

#[test]
fn keys_are_derived_from_names_as_documented() {
    // FNV-1a over "rtipc:robot", top bit cleared.
    let mut h: u32 = 0x811c_9dc5;
    for b in b"rtipc:robot" {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    assert_eq!(SysvKey::from_name("robot").get(), (h & 0x7fff_ffff) as i32);
    assert!(SysvKey::new(0).is_err());
    assert_eq!(SysvKey::new(42).unwrap().get(), 42);
}
