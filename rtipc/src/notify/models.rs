//! The wake-up protocol against each channel kind's protocol: a consumer waits for every update of a triple buffer, or every message of a queue,
//! while a producer publishes; the kernel's futex and eventfd are modelled with a mutex and
//! a condition variable, exactly the guarantees the kernel gives (the futex value check is
//! atomic with queueing the waiter; an eventfd stays readable until read). A lost wake-up
//! leaves the consumer asleep with the producer finished: loom reports the deadlock.
use crate::queue::protocol as q;
use crate::segment::wake::protocol::{after_publish, wait, Slept, EVENTFD, FUTEX};
use crate::state::protocol as tb;
use crate::sync::AtomicU64;
use crate::sync::{AtomicU32, Ordering};
use loom::sync::{Arc, Condvar, Mutex};

/// The `waiting` word and what the kernel provides for one channel.
struct Kernel {
    waiting: AtomicU32,
    lock: Mutex<u64>, // the eventfd counter
    cv: Condvar,
}

impl Kernel {
    fn new() -> Kernel {
        Kernel {
            waiting: AtomicU32::new(0),
            lock: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    /// `FUTEX_WAIT`: sleep only if the word still holds `expected`, checked under the lock
    /// that `FUTEX_WAKE` takes too.
    fn futex_wait(&self, expected: u32) -> Slept {
        let g = self.lock.lock().unwrap();
        if self.waiting.load(Ordering::Relaxed) == expected {
            drop(self.cv.wait(g).unwrap());
        }
        Slept::Woken
    }

    /// `poll` for readability; the drain comes before the next announcement.
    fn eventfd_poll(&self) -> Slept {
        let mut count = self.lock.lock().unwrap();
        while *count == 0 {
            count = self.cv.wait(count).unwrap();
        }
        Slept::Woken
    }

    /// The producer's side after a publish.
    fn notify(&self, after_publish: fn(&AtomicU32) -> u32) {
        let w = after_publish(&self.waiting);
        if w & FUTEX != 0 {
            let _g = self.lock.lock().unwrap();
            self.cv.notify_all();
        }
        if w & EVENTFD != 0 {
            *self.lock.lock().unwrap() += 1;
            self.cv.notify_all();
        }
    }

    /// The consumer's `wait` without a timeout.
    fn wait(&self, how: u32, has_data: impl Fn() -> bool) -> bool {
        wait::<()>(
            &self.waiting,
            how,
            has_data,
            || {
                if how == EVENTFD {
                    *self.lock.lock().unwrap() = 0;
                }
                Ok(())
            },
            |how| {
                Ok(if how == FUTEX {
                    self.futex_wait(how)
                } else {
                    self.eventfd_poll()
                })
            },
        )
        .unwrap()
    }
}

/// `after_publish` without its fence: the bug the model must catch.
fn after_publish_unfenced(waiting: &AtomicU32) -> u32 {
    if waiting.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    waiting.swap(0, Ordering::Relaxed)
}

fn model(publishes: u64, how: u32) {
    model_with(publishes, how, after_publish)
}

/// The words of one state channel.
struct StateWords {
    state: AtomicU64,
    seqs: [AtomicU64; 3],
}

impl StateWords {
    fn words(&self) -> tb::Words<'_> {
        tb::Words {
            state: &self.state,
            seqs: &self.seqs,
        }
    }
}

/// State channel: the consumer waits for each update and fetches it until it has the last.
fn model_with(publishes: u64, how: u32, after_publish: fn(&AtomicU32) -> u32) {
    loom::model(move || {
        let w = Arc::new(StateWords {
            state: AtomicU64::new(tb::initial_word()),
            seqs: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        });
        let kernel = Arc::new(Kernel::new());
        let (pw, pk) = (w.clone(), kernel.clone());
        let producer = loom::thread::spawn(move || {
            let mut p = tb::claim_producer(pw.words()).unwrap();
            for _ in 0..publishes {
                tb::publish(pw.words(), &mut p).unwrap();
                pk.notify(after_publish);
            }
        });
        let mut c = tb::claim_consumer(w.words()).unwrap();
        while c.seq < publishes {
            let ready = kernel.wait(how, || tb::has_data(w.words()));
            assert!(ready, "no timeout was set, so wait returns only with data");
            assert!(matches!(
                tb::fetch(w.words(), &mut c).unwrap(),
                tb::Fetched::New { .. }
            ));
        }
        producer.join().unwrap();
    });
}

/// The words of one queue of capacity 2.
struct QueueWords {
    cells: Vec<AtomicU64>,
    headers: Vec<AtomicU64>,
    words: [AtomicU64; 5],
}

impl QueueWords {
    fn new() -> QueueWords {
        let capacity = 2;
        let mut cells = Vec::new();
        for i in 0..capacity {
            let (pos, st) = q::initial_cell(i, capacity);
            cells.push(AtomicU64::new(pos));
            cells.push(AtomicU64::new(st));
        }
        let (p, c) = q::initial_records(capacity);
        QueueWords {
            cells,
            headers: (0..capacity + 2).map(|_| AtomicU64::new(0)).collect(),
            words: [
                AtomicU64::new(0),
                AtomicU64::new(p),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(c),
            ],
        }
    }

    fn w(&self) -> q::Words<'_> {
        q::Words {
            cells: &self.cells,
            headers: &self.headers,
            head: &self.words[0],
            producer: &self.words[1],
            tail: &self.words[2],
            pending: &self.words[3],
            consumer: &self.words[4],
        }
    }
}

/// Queue of capacity 2: the consumer waits for messages and pops until it has the last.
fn queue_model(messages: u64, how: u32) {
    loom::model(move || {
        let w = Arc::new(QueueWords::new());
        let kernel = Arc::new(Kernel::new());
        let (pw, pk) = (w.clone(), kernel.clone());
        let producer = loom::thread::spawn(move || {
            let mut p = q::claim_producer(&pw.w()).unwrap();
            for _ in 0..messages {
                q::push(&pw.w(), &mut p, true).unwrap();
                pk.notify(after_publish);
            }
        });
        let mut c = q::claim_consumer(&w.w()).unwrap();
        loop {
            let ready = kernel.wait(how, || q::has_message(&w.w(), &c));
            assert!(ready);
            if let q::Popped::Message { pos, .. } = q::pop(&w.w(), &mut c).unwrap() {
                if pos + 1 == messages {
                    break;
                }
            }
        }
        producer.join().unwrap();
    });
}

#[test]
fn loom_futex_wake_one_publish() {
    model(1, FUTEX);
}

#[test]
fn loom_futex_wake_two_publishes() {
    model(2, FUTEX);
}

#[test]
fn loom_eventfd_wake_one_publish() {
    model(1, EVENTFD);
}

#[test]
fn loom_eventfd_wake_two_publishes() {
    model(2, EVENTFD);
}

#[test]
fn loom_queue_futex_wake_two_messages() {
    queue_model(2, FUTEX);
}

#[test]
fn loom_queue_eventfd_wake_two_messages() {
    queue_model(2, EVENTFD);
}

/// The model is sharp enough to see the lost wake-up that the producer's fence prevents.
#[test]
#[should_panic(expected = "deadlock")]
fn loom_finds_the_lost_wake_up_without_the_producer_fence() {
    model_with(1, FUTEX, after_publish_unfenced);
}
