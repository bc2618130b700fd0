//! In-process: one publish plus one fetch of an 8-byte value in the same thread, rtipc (state
//! channel on an anonymous segment) against the `triple_buffer` crate, in alternating batches.

use std::hint::black_box;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use rtipc::{
    Direction, MessageRef, QueueConsumer, QueueProducer, Segment, StateConsumer, StateProducer,
    StateRef,
};
use triple_buffer::{Input, Output};

use crate::payload::Word;
use crate::stats::median_f;
use crate::sys::{self, Ctx, Res};
use crate::Cfg;

pub struct InprocResult {
    /// Median over batches of ns per publish + fetch.
    pub rtipc_ns: f64,
    pub tb_ns: f64,
    /// Median over batches of the paired ratio rtipc / triple_buffer.
    pub ratio: f64,
    pub batches: usize,
    pub iters: u64,
    pub errors: u64,
}

/// Both ends of the in-process rtipc channel and of a triple_buffer, and both ends of an rtipc
/// queue (for `--inproc-loop queue`, the queue's instruction count).
pub struct Pair {
    tx: StateProducer<Word>,
    rx: StateConsumer<Word>,
    qtx: QueueProducer<Word>,
    qrx: QueueConsumer<Word>,
    input: Input<u64>,
    output: Output<u64>,
    _segs: (Segment, Segment),
}

impl Pair {
    pub fn new() -> Res<Pair> {
        let seg = Segment::builder()
            .state::<Word>("inproc", Direction::CreatorToPeer)
            .queue::<Word>("inproc_queue", Direction::CreatorToPeer, 16)
            .create_anonymous()
            .ctx("creating the in-process segment")?;
        let fd = sys::inheritable(seg.as_fd().as_raw_fd()).ctx("duplicating the segment")?;
        let peer = Segment::from_fd(fd).ctx("attaching the in-process segment")?;
        let tx = StateProducer::new(&seg, "inproc").ctx("in-process producer")?;
        let rx = StateConsumer::new(&peer, "inproc").ctx("in-process consumer")?;
        let qtx = QueueProducer::new(&seg, "inproc_queue").ctx("in-process queue producer")?;
        let qrx = QueueConsumer::new(&peer, "inproc_queue").ctx("in-process queue consumer")?;
        let (input, output) = triple_buffer::triple_buffer(&0u64);
        Ok(Pair {
            tx,
            rx,
            qtx,
            qrx,
            input,
            output,
            _segs: (seg, peer),
        })
    }

    /// `iters` rtipc publishes, each followed by a fetch that must see it. Returns the errors.
    #[inline(never)]
    pub fn rtipc_loop(&mut self, start: u64, iters: u64) -> Res<u64> {
        let mut errors = 0;
        for s in start..start + iters {
            let mut g = self.tx.write().ctx("in-process write")?;
            g.w[0] = black_box(s);
            g.publish().ctx("in-process publish")?;
            match self.rx.fetch().ctx("in-process fetch")? {
                Some(r) if StateRef::is_new(&r) => errors += u64::from(black_box(r.w[0]) != s),
                _ => errors += 1,
            }
        }
        Ok(errors)
    }

    /// `iters` queue pushes (`force_push`, written in place), each followed by a pop that must
    /// find it, none missed. Returns the errors.
    #[inline(never)]
    pub fn queue_loop(&mut self, start: u64, iters: u64) -> Res<u64> {
        let mut errors = 0;
        for s in start..start + iters {
            let mut m = self.qtx.write().ctx("in-process queue write")?;
            m.w[0] = black_box(s);
            m.force_push().ctx("in-process push")?;
            match self.qrx.pop().ctx("in-process pop")? {
                Some(m) if MessageRef::missed(&m) == 0 => {
                    errors += u64::from(black_box(m.w[0]) != s)
                }
                _ => errors += 1,
            }
        }
        Ok(errors)
    }

    /// The same with triple_buffer's in-place API (`input_buffer_mut` + `publish`, `update`
    /// + `output_buffer`).
    #[inline(never)]
    pub fn tb_loop(&mut self, start: u64, iters: u64) -> u64 {
        let mut errors = 0;
        for s in start..start + iters {
            *self.input.input_buffer_mut() = black_box(s);
            self.input.publish();
            let updated = self.output.update();
            errors += u64::from(!updated || black_box(*self.output.output_buffer()) != s);
        }
        errors
    }
}

pub fn run(cfg: &Cfg) -> Res<InprocResult> {
    let mut p = Pair::new()?;
    let iters = cfg.inproc_iters;
    let (mut r_ns, mut t_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = 0;
    let mut s = 1;
    // Warm-up.
    errors += p.rtipc_loop(s, iters)?;
    errors += p.tb_loop(s, iters);
    s += iters;
    for b in 0..cfg.inproc_batches {
        let (mut r, mut t) = (0.0, 0.0);
        for rtipc_turn in [b % 2 == 0, b % 2 == 1] {
            let t0 = Instant::now();
            if rtipc_turn {
                errors += p.rtipc_loop(s, iters)?;
            } else {
                errors += p.tb_loop(s, iters);
            }
            let ns = t0.elapsed().as_nanos() as f64 / iters as f64;
            s += iters;
            if rtipc_turn {
                r = ns;
            } else {
                t = ns;
            }
        }
        r_ns.push(r);
        t_ns.push(t);
        ratios.push(r / t);
    }
    Ok(InprocResult {
        rtipc_ns: median_f(&mut r_ns),
        tb_ns: median_f(&mut t_ns),
        ratio: median_f(&mut ratios),
        batches: cfg.inproc_batches,
        iters,
        errors,
    })
}

/// For `valgrind --tool=callgrind`: runs one of the two loops `iters` times and nothing else.
pub fn loop_only(which: &str, iters: u64) -> Res<()> {
    let mut p = Pair::new()?;
    let errors = match which {
        "rtipc" => p.rtipc_loop(1, iters)?,
        "triple_buffer" => p.tb_loop(1, iters),
        "queue" => p.queue_loop(1, iters)?,
        other => {
            return Err(format!(
                "unknown loop `{other}`: rtipc, triple_buffer or queue"
            ))
        }
    };
    if errors != 0 {
        return Err(format!("{errors} errors"));
    }
    Ok(())
}
