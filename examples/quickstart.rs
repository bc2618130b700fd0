//! rtipc quick start: one process publishes a robot arm's joint state, another sees it.
//!
//! `cargo run --release --example quickstart` creates a named segment, spawns itself as the
//! peer process, and publishes `JointState` at 1 kHz. The peer attaches, prints what it sees
//! ten times a second (with how many updates it missed in between), then shows what happens
//! when a peer built with a different `JointState` tries to attach. Both end by themselves.
//!
//! `cargo run --release --example quickstart -- --linger 60` keeps publishing for 60 s after
//! the peer is done, so that the segment can be looked at with the `rtipc` command
//! (`cargo run -p rtipc-cli -- show rtipc-quickstart-PID`).

use std::process::Command;
use std::time::{Duration, Instant};

use rtipc::{Direction, Object, Segment, StateConsumer, StateProducer, StateRef};

/// The arm's state, as the publisher declares it.
#[derive(Object, Debug)]
#[repr(C)]
pub struct JointState {
    /// Joint angles, rad.
    pub position: [f64; 6],
    /// Joint torques, N·m.
    pub torque: [f32; 6],
    /// Milliseconds since the publisher started.
    pub time_ms: u64,
}

/// A peer built from an older revision, where `torque` was `f64`: same type name, same id,
/// different layout.
mod old_build {
    use rtipc::Object;

    #[derive(Object)]
    #[repr(C)]
    pub struct JointState {
        pub position: [f64; 6],
        pub torque: [f64; 6],
        pub time_ms: u64,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, flag, name] if flag == "--peer" => peer(name),
        [_, flag, secs] if flag == "--linger" => creator(Duration::from_secs(secs.parse()?)),
        [_] => creator(Duration::ZERO),
        _ => Err("usage: quickstart [--linger SECONDS]".into()),
    }
}

/// Creates the segment, spawns the peer and publishes at 1 kHz until the peer is done, and then
/// for `linger` more.
fn creator(linger: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("rtipc-quickstart-{}", std::process::id());
    let segment = Segment::builder()
        .state::<JointState>("arm/joints", Direction::CreatorToPeer)
        .create(&name)?;
    let mut joints = StateProducer::<JointState>::new(&segment, "arm/joints")?;

    let mut peer = Command::new(std::env::current_exe()?)
        .args(["--peer", &name])
        .spawn()?;
    println!(
        "[creator] segment `{name}` created, peer {} spawned",
        peer.id()
    );

    let start = Instant::now();
    let period = Duration::from_millis(1);
    let mut next = start;
    let mut finished: Option<(std::process::ExitStatus, Instant)> = None;
    let status = loop {
        if finished.is_none() {
            if let Some(status) = peer.try_wait()? {
                if !linger.is_zero() {
                    println!(
                        "[creator] still publishing for {} s: try `rtipc show {name}`",
                        linger.as_secs()
                    );
                }
                finished = Some((status, Instant::now()));
            }
        }
        if let Some((status, at)) = finished {
            if at.elapsed() >= linger {
                break status;
            }
        } else if start.elapsed() > Duration::from_secs(10) {
            peer.kill()?;
            return Err("the peer did not finish in time".into());
        }
        let t = start.elapsed().as_secs_f64();
        // Write the next update in place, then publish it with one atomic swap.
        let mut state = joints.write()?;
        let s = &mut *state;
        for (j, (p, tq)) in s.position.iter_mut().zip(&mut s.torque).enumerate() {
            *p = (t + j as f64).sin();
            *tq = (10.0 * (t * 2.0 + j as f64).cos()) as f32;
        }
        state.time_ms = start.elapsed().as_millis() as u64;
        state.publish()?;
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    };
    println!(
        "[creator] published {} updates; peer exited with {status}",
        joints.published()
    );
    if !status.success() {
        return Err("the peer failed".into());
    }
    Ok(())
}

/// Attaches to the segment, prints what it sees, then tries a mismatching build.
fn peer(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let segment = Segment::open(name)?;
    let mut joints = StateConsumer::<JointState>::new(&segment, "arm/joints")?;
    println!("[peer] attached; schema checked field by field");

    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        std::thread::sleep(Duration::from_millis(100));
        // One atomic swap when there is something new; the view derefs to &JointState.
        match joints.fetch()? {
            None => println!("[peer] nothing published yet"),
            Some(s) if !StateRef::is_new(&s) => println!("[peer] no update since the last look"),
            Some(s) => println!(
                "[peer] update #{:<5} t={:>4} ms  missed {:>3}  q0={:+.3}  tau0={:+.2}",
                StateRef::seq(&s),
                s.time_ms,
                StateRef::missed(&s),
                s.position[0],
                s.torque[0],
            ),
        }
    }
    drop(joints);

    println!("[peer] now attaching as a build where `torque` is [f64; 6]:");
    match StateConsumer::<old_build::JointState>::new(&segment, "arm/joints") {
        Ok(_) => return Err("a mismatching schema was accepted".into()),
        Err(e) => println!("[peer] refused: {e}"),
    }
    Ok(())
}
