//! An importing bridge facing a peer that breaks the rules: samples without or with a wrong
//! attachment, of another layout or length, and descriptions that are malformed or claim more
//! memory than the limits allow. Nothing reaches the local channel but the valid samples, and
//! everything else is counted or refused with a reason.

use std::time::{Duration, Instant};

use rtipc::{Object, Segment, StateConsumer, StateRef};
use rtipc_zenoh::wire::{Attachment, DescribedObject, Description, Kind};
use rtipc_zenoh::{Bridge, Config};
use zenoh::Wait;

#[derive(rtipc::Object, Debug)]
#[repr(C)]
struct Reading {
    value: u64,
    check: u64,
}

/// Far more than an import accepts by default (16 MiB).
#[derive(rtipc::Object)]
#[repr(C)]
struct Huge {
    bytes: [u8; 32 << 20],
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bare Zenoh session listening on `port`, playing the exporting side.
fn peer(port: u16) -> zenoh::Session {
    let mut c = zenoh::Config::default();
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    c.insert_json5("listen/endpoints", &format!("[\"tcp/127.0.0.1:{port}\"]"))
        .unwrap();
    zenoh::open(c).wait().unwrap()
}

fn importer(port: u16, prefix: &str, import: &str) -> Bridge {
    let settings = Config {
        connect: vec![format!("tcp/127.0.0.1:{port}")],
        prefix: Some(prefix.to_owned()),
        import: vec![import.to_owned()],
        ..Config::default()
    }
    .settings()
    .unwrap();
    Bridge::start(&settings).unwrap()
}

fn describe<T: Object>(kind: Kind, capacity: u32) -> Vec<u8> {
    Description {
        kind,
        capacity,
        objects: vec![DescribedObject {
            id: T::ID,
            schema: T::SCHEMA.clone(),
        }],
    }
    .encode()
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn reading(value: u64) -> Vec<u8> {
    let mut b = value.to_le_bytes().to_vec();
    b.extend_from_slice(&(!value).to_le_bytes());
    b
}

#[test]
fn samples_that_break_the_rules_are_dropped_and_counted() {
    let port = free_port();
    let id = std::process::id();
    let (prefix, local) = (format!("hostile/{id}"), format!("rtipc-hostile-{id}"));
    let key = format!("rtipc/{prefix}/far/reading");
    let session = peer(port);
    let description = describe::<Reading>(Kind::State, 1);
    let _queryable = session
        .declare_queryable(key.clone())
        .callback(move |q| {
            if q.parameters().contains_key("latest") {
                let _ = q.reply_err("none").wait();
            } else {
                let _ = q.reply(q.key_expr().clone(), description.clone()).wait();
            }
        })
        .wait()
        .unwrap();
    let _token = session
        .liveliness()
        .declare_token(key.clone())
        .wait()
        .unwrap();
    let publisher = session.declare_publisher(key.clone()).wait().unwrap();
    let bridge = importer(port, &prefix, &format!("far:reading={local}"));

    let seg = Segment::wait_open(&local, Duration::from_secs(30)).unwrap();
    let mut rx = StateConsumer::<Reading>::new(&seg, "reading").unwrap();
    assert!(rx.wait_for_producer(Some(Duration::from_secs(30))).unwrap());
    until("the importer's subscriber", || {
        publisher.matching_status().wait().unwrap().matching()
    });

    let att = |fingerprint: u64, seq: u64, missed: u64| {
        Attachment {
            fingerprint,
            seq,
            missed,
        }
        .encode()
        .to_vec()
    };
    let fp = Reading::FINGERPRINT;
    let put = |payload: Vec<u8>, attachment: Option<Vec<u8>>| {
        let mut b = publisher.put(payload);
        if let Some(a) = attachment {
            b = b.attachment(a);
        }
        b.wait().unwrap();
    };
    put(reading(1), None);
    put(reading(2), Some(vec![0xB7, 1, 2]));
    let mut wrong_magic = att(fp, 3, 0);
    wrong_magic[0] = 0;
    put(reading(3), Some(wrong_magic));
    put(reading(4), Some(att(fp ^ 1, 4, 0)));
    put(reading(5)[..15].to_vec(), Some(att(fp, 5, 0)));
    put(vec![0; 1 << 16], Some(att(fp, 6, 0)));
    // Valid: numbers 7 and then 11 (of the 3 in between, the exporting side missed 2).
    put(reading(7), Some(att(fp, 7, 0)));
    until("the first valid sample", || {
        bridge.stats()[0].published == 1
    });
    let v = rx.fetch().unwrap().unwrap();
    assert_eq!((v.value, v.check), (7, !7));
    assert_eq!(
        StateRef::seq(&v),
        7,
        "the exporting side's numbers are kept"
    );
    put(reading(11), Some(att(fp, 11, 2)));
    until("the second valid sample", || {
        bridge.stats()[0].published == 2
    });
    let v = rx.fetch().unwrap().unwrap();
    assert_eq!(
        (v.value, StateRef::seq(&v), StateRef::missed(&v)),
        (11, 11, 3)
    );
    // An old number again (a duplicate): nothing new.
    put(reading(7), Some(att(fp, 11, 0)));
    put(reading(12), Some(att(fp, 12, 0)));
    until("the third valid sample", || {
        bridge.stats()[0].published == 3
    });
    assert_eq!(rx.fetch().unwrap().unwrap().value, 12);
    let stats = bridge.shutdown();
    let s = &stats[0];
    assert_eq!(
        (
            s.foreign,
            s.samples,
            s.published,
            s.upstream_missed,
            s.network_lost
        ),
        (6, 3, 3, 2, 1),
        "{s}"
    );
}

#[test]
fn descriptions_that_break_the_rules_are_refused_with_a_reason() {
    let port = free_port();
    let id = std::process::id();
    let prefix = format!("hostile-desc/{id}");
    let session = peer(port);
    let answers: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", vec![0xB7, 1, 9, 9]),
        ("huge", describe::<Huge>(Kind::State, 1)),
        ("deep", describe::<Reading>(Kind::Queue, 1 << 30)),
        ("ring", describe::<Reading>(Kind::Record, 1 << 30)),
    ];
    let mut queryables = Vec::new();
    for (name, bytes) in answers {
        let key = format!("rtipc/{prefix}/far/{name}");
        queryables.push(
            session
                .declare_queryable(key)
                .callback(move |q| {
                    let _ = q.reply(q.key_expr().clone(), bytes.clone()).wait();
                })
                .wait()
                .unwrap(),
        );
    }
    let huge = importer(port, &prefix, &format!("far:huge=rtipc-hostile-huge-{id}"));
    let deep = importer(port, &prefix, &format!("far:deep=rtipc-hostile-deep-{id}"));
    let ring = importer(port, &prefix, &format!("far:ring=rtipc-hostile-ring-{id}"));
    until("the refusals", || {
        !huge.failures().is_empty() && !deep.failures().is_empty() && !ring.failures().is_empty()
    });
    let f = ring.failures().join("\n");
    assert!(
        f.contains("exceed the segment limit of 268435456 bytes"),
        "{f}"
    );
    let f = huge.failures().join("\n");
    assert!(
        f.contains("an object of 33554432 bytes (the limit is 16777216 bytes: max_object_bytes)"),
        "{f}"
    );
    let f = deep.failures().join("\n");
    assert!(f.contains("a queue of 1073741824 messages"), "{f}");
    for name in ["huge", "deep", "ring"] {
        let seg = format!("rtipc-hostile-{name}-{id}");
        assert!(Segment::open(&seg).is_err(), "no segment `{seg}`");
    }
    // A malformed description is refused and the import keeps asking (no segment either).
    let garbage = importer(
        port,
        &prefix,
        &format!("far:garbage=rtipc-hostile-garbage-{id}"),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(garbage.failures().is_empty());
    assert!(Segment::open(&format!("rtipc-hostile-garbage-{id}")).is_err());
}
