//! The child process: attaches to everything once, then serves the commands the parent writes
//! into the control block, so that rounds cost no setup.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use rtipc::{Segment, StateConsumer, StateRef};

use crate::payload::{check, Line64};
use crate::rt::{Ends, Method};
use crate::sys::{self, cmd, st, Ctrl, Ctx, Res, Shared, Spin, READY};

/// The hidden first argument that makes the binary the child.
pub const ROLE: &str = "--rtipc-bench-child";

/// Commands besides the round-trip methods (whose numbers are `Method::op`).
pub mod op {
    /// Sees `COUNT` updates of sweep channel number `ARG`.
    pub const SWEEP: u64 = 10;
    /// Fetches the determinism channel in a tight loop until `stop[0]` equals the command's
    /// sequence number; `RESULT` = updates seen.
    pub const FETCH_LOOP: u64 = 11;
    /// Pops `COUNT` messages numbered from `START` off throughput queue `ARG` (0: 8 bytes,
    /// 1: 1 KiB); `RESULT` = received, `RESULT2` = lost.
    pub const THROUGHPUT: u64 = 12;
    /// `ARG` consumer ends of `fanout_publish` fetch in turn in a tight loop until `stop[0]`
    /// equals the command's sequence number; `RESULT` = updates seen.
    pub const FAN_BUSY: u64 = 13;
    /// Takes `COUNT` records numbered from `START` off the record throughput channel, of size
    /// `ARG` (an index into `records::SIZES`); `RESULT` = records taken.
    pub const RECORD_THROUGHPUT: u64 = 14;
    /// Exits.
    pub const QUIT: u64 = 99;
}

/// The child's entry point: `ROLE ctrl_fd segment_fd uds_fd iceoryx2_prefix parent_pid`.
/// Errors are printed here, and flagged in the control block once it is mapped.
pub fn main(args: &[String]) -> Res<()> {
    let result = run(args);
    if let Err(e) = &result {
        eprintln!("child: {e}");
    }
    result
}

fn run(args: &[String]) -> Res<()> {
    let [ctrl_fd, seg_fd, uds_fd, prefix, parent] = args else {
        return Err(format!("{ROLE} takes 5 arguments, got {}", args.len()));
    };
    let fd = |s: &str| -> Res<RawFd> { s.parse().ctx("descriptor argument") };
    let parent: i32 = parent.parse().ctx("parent pid")?;
    let shared = Shared::inherit(fd(ctrl_fd)?).ctx("mapping the control block")?;
    let ctrl = shared.ctrl();
    let result = serve(ctrl, fd(seg_fd)?, fd(uds_fd)?, prefix, parent);
    if result.is_err() {
        ctrl.status.w[st::FAILED].store(1, Ordering::Release);
    }
    result
}

fn serve(ctrl: &Ctrl, seg_fd: RawFd, uds_fd: RawFd, prefix: &str, parent: i32) -> Res<()> {
    if let Err(e) = sys::pin_to(1) {
        eprintln!("child: could not pin to CPU 1 ({e}); figures will be noisier");
    }
    let seg_fd = sys::adopt(seg_fd).ctx("the segment's descriptor")?;
    let uds = sys::adopt(uds_fd).ctx("the socket's descriptor")?;
    let seg = Segment::from_fd(seg_fd).ctx("attaching the segment")?;
    let mut ends = Ends::child(&seg, prefix, uds)?;
    let mut sweep = crate::sweep::consumers(&seg)?;
    let mut det = StateConsumer::<Line64>::new(&seg, "determinism").ctx("determinism consumer")?;
    let mut tput = crate::tput::Consumers::new(&seg)?;
    let mut rec_tput = crate::records::Consumer::new(&seg)?;
    let mut fan: Vec<StateConsumer<Line64>> = (0..crate::payload::FANOUT_PUBLISH_CONSUMERS)
        .map(|_| StateConsumer::new(&seg, "fanout_publish").ctx("fan-out publish consumer"))
        .collect::<Res<_>>()?;
    // Release: everything above is set up before the parent sees READY.
    ctrl.status.w[st::READY].store(READY, Ordering::Release);

    let mut last = 0;
    loop {
        // Idle: wait politely for the next command, and leave if the parent is gone.
        let mut n = 0u32;
        let seq = loop {
            let seq = ctrl.cmd.w[cmd::SEQ].load(Ordering::Acquire);
            if seq != last {
                break seq;
            }
            std::hint::spin_loop();
            n = n.wrapping_add(1);
            // SAFETY: getppid has no preconditions.
            if n & 0xfffff == 0 && unsafe { libc::getppid() } != parent {
                return Err("the parent process is gone".into());
            }
        };
        last = seq;
        let op = ctrl.cmd.w[cmd::OP].load(Ordering::Relaxed);
        let count = ctrl.cmd.w[cmd::COUNT].load(Ordering::Relaxed);
        let start = ctrl.cmd.w[cmd::START].load(Ordering::Relaxed);
        let arg = ctrl.cmd.w[cmd::ARG].load(Ordering::Relaxed);
        let errors = if let Some(m) = Method::from_op(op) {
            ends.echo(ctrl, m, start, count)?
        } else {
            match op {
                op::SWEEP => {
                    let rx = sweep
                        .get_mut(arg as usize)
                        .ok_or_else(|| format!("no sweep channel {arg}"))?;
                    crate::sweep::see_block(ctrl, rx.as_mut(), start, count)?
                }
                op::FETCH_LOOP => {
                    let (seen, errors) = fetch_loop(ctrl, &mut det, seq)?;
                    ctrl.status.w[st::RESULT].store(seen, Ordering::Relaxed);
                    errors
                }
                op::THROUGHPUT => tput.drain(ctrl, seq, arg, start, count)?,
                op::RECORD_THROUGHPUT => rec_tput.drain(ctrl, seq, arg, start, count)?,
                op::FAN_BUSY => {
                    let (seen, errors) = crate::fanpub::busy_loop(ctrl, &mut fan, arg, seq)?;
                    ctrl.status.w[st::RESULT].store(seen, Ordering::Relaxed);
                    errors
                }
                op::QUIT => {
                    ctrl.status.w[st::DONE].store(seq, Ordering::Release);
                    return Ok(());
                }
                other => return Err(format!("unknown command {other}")),
            }
        };
        ctrl.status.w[st::ERRORS].fetch_add(errors, Ordering::Relaxed);
        // Release: the counters above are visible to the parent once it sees DONE.
        ctrl.status.w[st::DONE].store(seq, Ordering::Release);
    }
}

/// The busy consumer of the determinism test: fetches as fast as it can until told to stop,
/// checking every new update. Returns (updates seen, wrong updates).
fn fetch_loop(ctrl: &Ctrl, det: &mut StateConsumer<Line64>, seq: u64) -> Res<(u64, u64)> {
    let (mut seen, mut errors, mut last) = (0u64, 0u64, None::<u64>);
    let mut spin = Spin::new("the end of the determinism block");
    while ctrl.stop.w[0].load(Ordering::Relaxed) != seq {
        if let Some(r) = det.fetch().ctx("determinism fetch")? {
            if StateRef::is_new(&r) {
                seen += 1;
                let s = r.w[0];
                errors += u64::from(!check(&r.w, s) || last.is_some_and(|l| s <= l));
                last = Some(s);
            }
        }
        spin.tick()?;
    }
    Ok((seen, errors))
}
