//! The parent's handle on the child process: spawning it and commanding it through the
//! control block.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::Instant;

use rtipc::Segment;

use crate::child::{op, ROLE};
use crate::sys::{self, cmd, st, Ctrl, Ctx, Res, Shared, PATIENCE, READY};

/// The child process and the control block shared with it.
pub struct Peer {
    shared: Shared,
    child: Child,
    seq: u64,
    /// The next unused sequence number: every message of every method gets its own.
    pub next_s: u64,
}

impl Peer {
    /// Spawns this binary as the child, handing it the control block, the segment and its end
    /// of the socketpair as inherited descriptors, and waits until it has attached.
    pub fn spawn(seg: &Segment, uds_child: OwnedFd, iox_prefix: &str) -> Res<Peer> {
        let shared = Shared::create().ctx("creating the control block")?;
        let seg_fd = sys::inheritable(seg.as_fd().as_raw_fd()).ctx("duplicating the segment")?;
        let uds_fd = sys::inheritable(uds_child.as_raw_fd()).ctx("duplicating the socket")?;
        drop(uds_child);
        let exe = std::env::current_exe().ctx("locating this binary")?;
        let child = Command::new(exe)
            .arg(ROLE)
            .arg(shared.raw_fd().to_string())
            .arg(seg_fd.as_raw_fd().to_string())
            .arg(uds_fd.as_raw_fd().to_string())
            .arg(iox_prefix)
            .arg(std::process::id().to_string())
            .spawn()
            .ctx("spawning the child process")?;
        // The child has its copies; ours are no longer needed.
        drop((seg_fd, uds_fd));
        let mut peer = Peer {
            shared,
            child,
            seq: 0,
            next_s: 1,
        };
        peer.wait_word(st::READY, READY, "the child to attach")?;
        Ok(peer)
    }

    pub fn ctrl(&self) -> &Ctrl {
        self.shared.ctrl()
    }

    /// Tells the child to run `op`; returns the command's sequence number.
    pub fn issue(&mut self, op: u64, count: u64, start: u64, arg: u64) -> u64 {
        self.seq += 1;
        let c = &self.shared.ctrl().cmd;
        c.w[cmd::OP].store(op, Ordering::Relaxed);
        c.w[cmd::COUNT].store(count, Ordering::Relaxed);
        c.w[cmd::START].store(start, Ordering::Relaxed);
        c.w[cmd::ARG].store(arg, Ordering::Relaxed);
        // Release: the arguments above are visible to the child once it sees the new number.
        c.w[cmd::SEQ].store(self.seq, Ordering::Release);
        self.seq
    }

    /// Waits until the child has finished command `seq`.
    pub fn wait_done(&mut self, seq: u64) -> Res<()> {
        self.wait_word(st::DONE, seq, "the child to finish a command")
    }

    fn wait_word(&mut self, word: usize, value: u64, what: &str) -> Res<()> {
        let status = &self.shared.ctrl().status;
        let mut n = 0u32;
        let start = Instant::now();
        // Acquire: the child's counters, stored before this word, are visible after it.
        while status.w[word].load(Ordering::Acquire) != value {
            std::hint::spin_loop();
            n = n.wrapping_add(1);
            if n & 0xfff == 0 {
                if status.w[st::FAILED].load(Ordering::Acquire) != 0 {
                    return Err(format!("the child failed while we waited for {what}"));
                }
                if let Ok(Some(exit)) = self.child.try_wait() {
                    return Err(format!(
                        "the child exited ({exit}) while we waited for {what}"
                    ));
                }
                if start.elapsed() > PATIENCE {
                    return Err(format!("gave up waiting for {what}"));
                }
            }
        }
        Ok(())
    }

    /// Data errors the child has counted so far.
    pub fn errors(&self) -> u64 {
        self.shared.ctrl().status.w[st::ERRORS].load(Ordering::Acquire)
    }

    /// The result word of the last command.
    pub fn result(&self) -> u64 {
        self.shared.ctrl().status.w[st::RESULT].load(Ordering::Acquire)
    }

    /// Tells the child to exit and reaps it.
    pub fn quit(mut self) -> Res<()> {
        let seq = self.issue(op::QUIT, 0, 0, 0);
        self.wait_done(seq)?;
        let status = self.child.wait().ctx("waiting for the child")?;
        if !status.success() {
            return Err(format!("the child exited with {status}"));
        }
        Ok(())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // On an error path the child may still run: end it (this is the process we spawned).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
