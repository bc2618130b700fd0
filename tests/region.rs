//! Shared regions between real processes: atomics incremented from two processes, a
//! semaphore ping-pong, and waiters whose poster dies or who die themselves.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use rtipc::region::SharedRegion;

fn wait_started(r: &SharedRegion<Shared>, seen: u32) {
    assert!(
        r.started
            .wait(seen, Some(Duration::from_secs(20)))
            .is_some(),
        "the peer did not start"
    );
}

#[test]
fn two_processes_add_ten_million_each_and_the_total_is_exact() {
    const N: u64 = 10_000_000;
    let name = seg_name("region-add");
    let seg = region_segment(&name);
    let r = SharedRegion::<Shared>::new(&seg, "shared").unwrap();
    let seen = r.started.current();
    let peer = spawn_peer(Role::RegionAdd, &name, N);
    wait_started(&r, seen);
    for _ in 0..N {
        r.counter.fetch_add(1, Ordering::Relaxed);
    }
    wait_peer(peer, Duration::from_secs(120));
    assert_eq!(r.counter.load(Ordering::Relaxed), 2 * N);
}

#[test]
fn a_semaphore_ping_pong_of_100000_round_trips_carries_every_value() {
    const N: u64 = 100_000;
    let name = seg_name("region-pingpong");
    let seg = region_segment(&name);
    let r = SharedRegion::<Shared>::new(&seg, "shared").unwrap();
    let peer = spawn_peer(Role::RegionPong, &name, N);
    let t0 = Instant::now();
    for i in 0..N {
        r.value.store(i + 1, Ordering::Relaxed);
        assert!(r.ping.post());
        assert!(r.pong.wait(Some(Duration::from_secs(20))), "no pong {i}");
        assert_eq!(r.reply.load(Ordering::Relaxed), 2 * (i + 1));
    }
    let took = t0.elapsed();
    wait_peer(peer, Duration::from_secs(60));
    assert_eq!((r.ping.available(), r.pong.available()), (0, 0));
    println!("{N} semaphore round trips between two processes in {took:?}");
}

#[test]
fn a_waiter_whose_poster_is_killed_returns_on_its_timeout() {
    let name = seg_name("region-poster-killed");
    let seg = region_segment(&name);
    let r = SharedRegion::<Shared>::new(&seg, "shared").unwrap();
    let seen = r.started.current();
    let mut poster = spawn_peer(Role::RegionIdle, &name, 0);
    wait_started(&r, seen);
    let seen = r.started.current();
    let waiter = spawn_peer(Role::RegionWaiter, &name, 300);
    wait_started(&r, seen);
    poster.kill().unwrap();
    poster.wait().unwrap();
    // The waiter exits 0 only if its wait returned false, and not before 300 ms.
    wait_peer(waiter, Duration::from_secs(20));
    assert_eq!(r.ping.available(), 0);
}

#[test]
fn a_waiter_killed_in_its_sleep_leaves_the_semaphore_working() {
    let name = seg_name("region-waiter-killed");
    let seg = region_segment(&name);
    let r = SharedRegion::<Shared>::new(&seg, "shared").unwrap();
    let seen = r.started.current();
    let mut waiter = spawn_peer(Role::RegionWaiter, &name, 60_000);
    wait_started(&r, seen);
    std::thread::sleep(Duration::from_millis(50));
    waiter.kill().unwrap();
    waiter.wait().unwrap();
    // The count is the count: one post, one take, nothing lost to the dead sleeper.
    assert!(r.ping.post());
    assert_eq!(r.ping.available(), 1);
    assert!(r.ping.wait(Some(Duration::from_secs(1))));
    assert!(!r.ping.try_wait());
    // And a live waiter in another process is still woken by a post.
    let peer = spawn_peer(Role::RegionPong, &name, 1);
    r.value.store(21, Ordering::Relaxed);
    assert!(r.ping.post());
    assert!(r.pong.wait(Some(Duration::from_secs(20))));
    assert_eq!(r.reply.load(Ordering::Relaxed), 42);
    wait_peer(peer, Duration::from_secs(20));
}
