//! A consumer driven by tokio: `cargo run --release --example tokio_consumer`.
//!
//! The program creates an anonymous segment with one notify-enabled state channel, and
//! spawns itself as the producer process, which inherits the memfd and the channel's eventfd
//! (duplicates without close-on-exec, their numbers on the command line) and attaches with
//! `Segment::from_fds`. The consumer wraps its handle in a `Pollable`, registers it with
//! tokio's `AsyncFd`, and awaits readiness instead of blocking a thread: `arm` before each
//! wait, fetch when readable. The producer publishes 20 ticks, 25 ms apart, and exits.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use rtipc::notify::Pollable;
use rtipc::{ChannelSpec, Direction, Object, Segment, StateConsumer, StateProducer, StateRef};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

#[derive(Object, Debug)]
#[repr(C)]
struct Tick {
    n: u64,
    /// The producer's `CLOCK_MONOTONIC` when it published, ns.
    sent_ns: u64,
}

const TICKS: u64 = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, memfd, eventfd] = args.as_slice() {
        if role == "--producer" {
            return producer(memfd.parse()?, eventfd.parse()?);
        }
    }
    consumer()
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A duplicate of `fd` that a child process inherits (no close-on-exec).
fn inheritable(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    // SAFETY: dup of a valid descriptor; the new one has no FD_CLOEXEC.
    let raw = unsafe { libc::dup(fd.as_raw_fd()) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn consumer() -> Result<(), Box<dyn std::error::Error>> {
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("ticks", Direction::PeerToCreator)
                .object::<Tick>()
                .notify(true),
        )
        .create_anonymous()?;
    let ticks = Pollable::new(StateConsumer::<Tick>::new(&seg, "ticks")?)?;

    // Hand the memfd and the eventfd to the producer process by inheritance.
    let memfd = inheritable(seg.as_fd())?;
    let eventfd = inheritable(seg.event_fds()[0])?;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--producer",
            &memfd.as_raw_fd().to_string(),
            &eventfd.as_raw_fd().to_string(),
        ])
        .spawn()?;
    drop((memfd, eventfd)); // the child has its own copies now
    println!("[consumer] producer {} spawned", child.id());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let seen = runtime.block_on(async {
        // SAFETY: a `Pollable` owns its eventfd for its whole life and always returns that
        // same descriptor, as `register_with_interest` requires.
        let mut ticks = unsafe { AsyncFd::register_with_interest(ticks, Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        let mut seen = 0u64;
        let work = async {
            loop {
                // Announce the wait (or learn that there is data already), then await the
                // eventfd without blocking the runtime's thread.
                if !ticks.get_mut().arm()? {
                    let mut ready = ticks.readable_mut().await?;
                    ready.clear_ready();
                }
                if let Some(t) = ticks.get_mut().fetch()? {
                    if StateRef::is_new(&t) {
                        let latency = monotonic_ns().saturating_sub(t.sent_ns);
                        println!(
                            "[consumer] tick {:2} after {:6.1} us (missed {})",
                            t.n,
                            latency as f64 / 1000.0,
                            StateRef::missed(&t)
                        );
                        seen += 1;
                        if t.n == TICKS {
                            return Ok::<_, Box<dyn std::error::Error>>(());
                        }
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .map_err(|_| "no final tick within 10 s")??;
        Ok::<_, Box<dyn std::error::Error>>(seen)
    })?;
    let status = child.wait()?;
    println!("[consumer] {seen} ticks received; producer exited with {status}");
    if !status.success() {
        return Err("the producer failed".into());
    }
    Ok(())
}

fn producer(memfd: i32, eventfd: i32) -> Result<(), Box<dyn std::error::Error>> {
    for fd in [memfd, eventfd] {
        // SAFETY: F_GETFD only checks that the number is an open descriptor.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(format!("descriptor {fd} is not open").into());
        }
    }
    // SAFETY: the descriptor is open (checked above), was inherited for this process's use,
    // and nothing else in it owns it.
    let memfd = unsafe { OwnedFd::from_raw_fd(memfd) };
    // SAFETY: the same, for the eventfd.
    let eventfd = unsafe { OwnedFd::from_raw_fd(eventfd) };
    let seg = Segment::from_fds(memfd, vec![eventfd])?;
    let mut ticks = StateProducer::<Tick>::new(&seg, "ticks")?;
    for n in 1..=TICKS {
        std::thread::sleep(Duration::from_millis(25));
        ticks.publish_copy(&Tick {
            n,
            sent_ns: monotonic_ns(),
        })?;
    }
    Ok(())
}
