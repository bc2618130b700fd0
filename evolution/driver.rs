//! The program that both revisions of `Pose` build, each in its own package: roles over one
//! named segment, every word of every value checked.
//!
//! Channels: `down` (state), `downq` (queue) and `downr` (records) from the creator to its
//! peer, `up`, `upq` and `upr` from the peer to the creator. Record `seq` holds `seq % 5 + 1`
//! elements, each update `seq`. Revision 1 of `Pose` has `x` and `y`;
//! revision 2 appends `z` and `w`. Update `seq` carries `x = seq`, `y = 3 seq`, and from
//! revision 2 `z = 5 seq + 1`, `w = !seq`.
//!
//! Roles (`<program> ROLE SEGMENT COUNT [FROM]`):
//! - `create-produce`: creates the segment and, once a peer holds both consumer ends, publishes
//!   and pushes updates 1..=COUNT, then waits until the peer lets go.
//! - `open-consume`: opens the segment and takes `down` and `downq` until update COUNT.
//! - `create-consume`: creates the segment and takes `up` and `upq` until update COUNT.
//! - `open-produce`: opens the segment and publishes and pushes updates FROM..=COUNT.
//!
//! Each prints what it did as `key=value` words, and every refusal as `refused <what>: <error>`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rtipc::{
    DataError, Direction, Error, Object, QueueConsumer, QueueCopier, QueueProducer, RecordConsumer,
    RecordCopier, RecordProducer, RecordSender, Segment, StateConsumer, StateCopier, StateProducer,
};

/// What each revision's `Pose` provides to the driver.
pub trait Rev: Object {
    /// The revision.
    const REV: u32;
    /// Update `seq` as this revision writes it.
    fn make(seq: u64) -> Self;
    /// The words of a value, in field order.
    fn words(&self) -> Vec<u64>;
}

/// The words that revision `rev` writes for update `seq`.
fn expected(seq: u64, rev: u32) -> Vec<u64> {
    let mut w = vec![seq, seq.wrapping_mul(3)];
    if rev >= 2 {
        w.push(seq.wrapping_mul(5).wrapping_add(1));
        w.push(!seq);
    }
    w
}

/// What a reader saw.
#[derive(Default)]
struct Tally {
    seen: u64,
    /// Values with every field this reader has written by a producer that has them all.
    full: u64,
    /// Values whose fields past revision 1 are zero: from a revision-1 producer (or copied
    /// from a revision-1 segment).
    zero_tail: u64,
    /// Anything else: a torn value, or a stale tail.
    bad: u64,
    last: u64,
    /// The first update with a zero tail, and the last with a full one.
    first_zero: u64,
    last_full: u64,
    backwards: u64,
}

impl Tally {
    fn check(&mut self, words: &[u64]) {
        let seq = words[0];
        self.seen += 1;
        if seq <= self.last {
            self.backwards += 1;
        }
        self.last = seq;
        let full = expected(seq, 2);
        let n = words.len();
        if words == &full[..n] {
            if n > 2 {
                self.full += 1;
                self.last_full = seq;
            } else {
                self.full += 1;
            }
            return;
        }
        let mut zero = expected(seq, 1);
        zero.resize(n, 0);
        if words == &zero[..] {
            self.zero_tail += 1;
            if self.first_zero == 0 {
                self.first_zero = seq;
            }
            return;
        }
        self.bad += 1;
    }

    fn print(&self, what: &str) {
        println!(
            "{what} seen={} full={} zero_tail={} bad={} backwards={} last={} first_zero={} last_full={}",
            self.seen,
            self.full,
            self.zero_tail,
            self.bad,
            self.backwards,
            self.last,
            self.first_zero,
            self.last_full
        );
    }
}

fn builder<T: Rev>() -> rtipc::SegmentBuilder {
    Segment::builder()
        .state::<T>("down", Direction::CreatorToPeer)
        .queue::<T>("downq", Direction::CreatorToPeer, 1024)
        .state::<T>("up", Direction::PeerToCreator)
        .queue::<T>("upq", Direction::PeerToCreator, 1024)
        .record::<T>("downr", Direction::CreatorToPeer, 1 << 16)
        .record::<T>("upr", Direction::PeerToCreator, 1 << 16)
}

/// A record producer: in place with the segment's element type, or copying an earlier
/// revision.
enum Rec<T: Object> {
    InPlace(RecordProducer<T>),
    Sender(RecordSender<T>),
}

impl<T: Rev> Rec<T> {
    fn open(seg: &Segment, name: &str) -> Option<Rec<T>> {
        if let Some(p) = refused("record producer", RecordProducer::<T>::new(seg, name)) {
            return Some(Rec::InPlace(p));
        }
        let s = refused("record sender", RecordSender::<T>::new(seg, name))?;
        report_evolution("record sender", s.evolution());
        Some(Rec::Sender(s))
    }

    /// Sends record `seq`, retrying while the ring is full.
    fn send(&mut self, seq: u64) -> Result<(), Error> {
        let items: Vec<T> = (0..seq % 5 + 1).map(|_| T::make(seq)).collect();
        loop {
            let r = match self {
                Rec::InPlace(p) => p.try_send(&items),
                Rec::Sender(s) => s.try_send(&items),
            };
            match r {
                Ok(_) => return Ok(()),
                Err(DataError::NoRoom { .. }) => std::thread::yield_now(),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn consumer_alive(&self) -> Result<bool, Error> {
        match self {
            Rec::InPlace(p) => p.consumer_alive(),
            Rec::Sender(s) => s.consumer_alive(),
        }
    }
}

/// A record consumer: in place, or copying another revision.
enum RecIn<T: Object> {
    InPlace(RecordConsumer<T>),
    Copier(RecordCopier<T>, Vec<T>),
}

impl<T: Rev> RecIn<T> {
    fn open(seg: &Segment, name: &str) -> Result<RecIn<T>, Error> {
        if let Some(c) = refused("record consumer", RecordConsumer::<T>::new(seg, name)) {
            return Ok(RecIn::InPlace(c));
        }
        let c = RecordCopier::<T>::new(seg, name)?;
        report_evolution("record copier", c.evolution());
        let buf = (0..5).map(|_| T::make(0)).collect();
        Ok(RecIn::Copier(c, buf))
    }

    /// Takes every record there is, checking each element; returns the revision copied (0
    /// when nothing was copied).
    fn drain(&mut self, t: &mut Tally, records: &mut u64) -> Result<u32, Error> {
        let mut revision = 0;
        loop {
            match self {
                RecIn::InPlace(c) => {
                    let Some(r) = c.pop()? else { break };
                    check_record(t, records, r.iter().map(|e| e.words()));
                }
                RecIn::Copier(c, buf) => {
                    let Some(r) = c.pop_into(buf)? else { break };
                    revision = r.revision;
                    assert_eq!(r.copied, r.len, "records are at most 5 elements");
                    check_record(t, records, buf[..r.copied].iter().map(|e| e.words()));
                }
            }
        }
        Ok(revision)
    }
}

/// Checks a record: `seq % 5 + 1` elements, each update `seq`, where `seq` is its first
/// element's first word. A record counts as one value, bad if any element is wrong.
fn check_record(t: &mut Tally, records: &mut u64, elems: impl Iterator<Item = Vec<u64>>) {
    *records += 1;
    let elems: Vec<Vec<u64>> = elems.collect();
    let first = elems.first().cloned().unwrap_or_default();
    let seq = first.first().copied().unwrap_or(0);
    if elems.len() as u64 != seq % 5 + 1 || elems.iter().any(|e| *e != first) {
        t.seen += 1;
        t.bad += 1;
        return;
    }
    t.check(&first);
}

/// Runs the role the command line names.
pub fn main<T: Rev>() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("describe") {
        println!("revision={} fields={}", T::REV, T::SCHEMA.fields().len());
        return ExitCode::SUCCESS;
    }
    let (Some(role), Some(seg), Some(count)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: ROLE SEGMENT COUNT [FROM]");
        return ExitCode::from(2);
    };
    let count: u64 = count.parse().expect("COUNT");
    let from: u64 = args.get(4).map_or(1, |f| f.parse().expect("FROM"));
    let r = match role.as_str() {
        "create-produce" => create_produce::<T>(seg, count),
        "open-consume" => open_consume::<T>(seg, count),
        "create-consume" => create_consume::<T>(seg, count),
        "open-produce" => open_produce::<T>(seg, from, count),
        _ => {
            eprintln!("unknown role {role}");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn produce<T: Rev>(
    tx: &mut Option<StateProducer<T>>,
    q: &mut Option<QueueProducer<T>>,
    r: &mut Option<Rec<T>>,
    from: u64,
    count: u64,
) -> Result<(), Error> {
    for seq in from..=count {
        if let Some(r) = r {
            r.send(seq)?;
        }
        if let Some(tx) = tx {
            tx.publish_copy(&T::make(seq))?;
        }
        if let Some(q) = q {
            while !q.try_push(&T::make(seq))? {
                std::thread::yield_now();
            }
        }
        if seq % 64 == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    Ok(())
}

fn refused<H>(what: &str, r: Result<H, Error>) -> Option<H> {
    match r {
        Ok(h) => Some(h),
        Err(e) => {
            println!("refused {what}: {e}");
            None
        }
    }
}

fn report_evolution(what: &str, e: Option<&rtipc::schema::Evolution>) {
    if let Some(e) = e {
        println!("evolution {what}: {e}");
    }
}

fn create_produce<T: Rev>(name: &str, count: u64) -> Result<(), Error> {
    let seg = builder::<T>().create(name)?;
    let mut tx = Some(StateProducer::<T>::new(&seg, "down")?);
    let mut q = Some(QueueProducer::<T>::new(&seg, "downq")?);
    let mut r = Some(Rec::InPlace(RecordProducer::<T>::new(&seg, "downr")?));
    println!("ready");
    // The peer's consumers, or its refusal: it lets go of both ends at once.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(tx.as_ref().unwrap().consumer_alive()? || q.as_ref().unwrap().consumer_alive()?) {
        if Instant::now() > deadline {
            return Err(Error::InvalidArgument("no consumer came".into()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The peer claims its queue consumer right after its state consumer, or is refused.
    let grace = Instant::now() + Duration::from_secs(1);
    while !q.as_ref().unwrap().consumer_alive()? && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(2));
    }
    if !q.as_ref().unwrap().consumer_alive()? {
        q = None;
    }
    let grace = Instant::now() + Duration::from_secs(1);
    while !r.as_ref().unwrap().consumer_alive()? && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(2));
    }
    if !r.as_ref().unwrap().consumer_alive()? {
        r = None;
    }
    produce(&mut tx, &mut q, &mut r, 1, count)?;
    println!("produced={count}");
    while tx.as_ref().unwrap().consumer_alive()?
        || q.as_ref()
            .is_some_and(|q| q.consumer_alive().unwrap_or(false))
        || r.as_ref()
            .is_some_and(|r| r.consumer_alive().unwrap_or(false))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn open_consume<T: Rev>(name: &str, count: u64) -> Result<(), Error> {
    let seg = Segment::wait_open(name, Duration::from_secs(20))?;
    let mut state = refused("state consumer", StateConsumer::<T>::new(&seg, "down"));
    let mut copier = None;
    if state.is_none() {
        let c = StateCopier::<T>::new(&seg, "down")?;
        report_evolution("state copier", c.evolution());
        copier = Some(c);
    }
    if let Some(s) = &state {
        report_evolution("state consumer", s.evolution());
    }
    let mut queue = refused("queue consumer", QueueConsumer::<T>::new(&seg, "downq"));
    if let Some(q) = &queue {
        report_evolution("queue consumer", q.evolution());
    }
    let mut qcopier = None;
    if queue.is_none() {
        let c = QueueCopier::<T>::new(&seg, "downq")?;
        report_evolution("queue copier", c.evolution());
        qcopier = Some(c);
    }
    let reading_queue = queue.is_some() || qcopier.is_some();
    let mut recs = RecIn::<T>::open(&seg, "downr")?;
    let (mut rt, mut records) = (Tally::default(), 0u64);
    let (mut st, mut qt) = (Tally::default(), Tally::default());
    let mut revision = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (st.last < count || (reading_queue && qt.last < count) || rt.last < count)
        && Instant::now() < deadline
    {
        let rev = recs.drain(&mut rt, &mut records)?;
        if rev != 0 {
            revision = rev;
        }
        if let Some(s) = &mut state {
            if let Some(v) = s.fetch()? {
                if rtipc::StateRef::is_new(&v) {
                    st.check(&v.words());
                }
            }
        }
        if let Some(c) = &mut copier {
            if let Some(v) = c.fetch()? {
                revision = v.revision;
                if v.new {
                    st.check(&v.value.words());
                }
            }
        }
        if let Some(q) = &mut queue {
            while let Some(m) = q.pop()? {
                qt.check(&m.words());
            }
        }
        if let Some(q) = &mut qcopier {
            while let Some(m) = q.pop()? {
                revision = m.revision;
                qt.check(&m.value.words());
            }
        }
    }
    st.print("state");
    if copier.is_some() {
        println!("copied revision={revision}");
    }
    if reading_queue {
        qt.print("queue");
    }
    rt.print("records");
    Ok(())
}

fn create_consume<T: Rev>(name: &str, count: u64) -> Result<(), Error> {
    let seg = builder::<T>().create(name)?;
    let mut s = StateConsumer::<T>::new(&seg, "up")?;
    let mut q = QueueConsumer::<T>::new(&seg, "upq")?;
    let mut recs = RecIn::InPlace(RecordConsumer::<T>::new(&seg, "upr")?);
    println!("ready");
    let (mut st, mut qt, mut rt) = (Tally::default(), Tally::default(), Tally::default());
    let mut records = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (st.last < count || qt.last < count || rt.last < count) && Instant::now() < deadline {
        recs.drain(&mut rt, &mut records)?;
        if let Some(v) = s.fetch()? {
            if rtipc::StateRef::is_new(&v) {
                st.check(&v.words());
            }
        }
        while let Some(m) = q.pop()? {
            qt.check(&m.words());
        }
    }
    st.print("state");
    qt.print("queue");
    rt.print("records");
    Ok(())
}

fn open_produce<T: Rev>(name: &str, from: u64, count: u64) -> Result<(), Error> {
    let seg = Segment::wait_open(name, Duration::from_secs(20))?;
    let mut tx = refused("state producer", StateProducer::<T>::new(&seg, "up"));
    let mut q = refused("queue producer", QueueProducer::<T>::new(&seg, "upq"));
    let mut r = Rec::<T>::open(&seg, "upr");
    if let Some(tx) = &tx {
        report_evolution("state producer", tx.evolution());
    }
    if let Some(q) = &q {
        report_evolution("queue producer", q.evolution());
    }
    if tx.is_none() && q.is_none() && r.is_none() {
        return Ok(());
    }
    produce(&mut tx, &mut q, &mut r, from, count)?;
    println!("produced={}", count + 1 - from);
    Ok(())
}
