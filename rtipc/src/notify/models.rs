//! The wake-up protocol against each channel kind's protocol: a consumer waits for every update of a triple buffer, or every message of a queue,
//! while a producer publishes; the kernel's futex and eventfd are modelled with a mutex and
//! a condition variable, exactly the guarantees the kernel gives (the futex value check is
//! atomic with queueing the waiter; an eventfd stays readable until read). A lost wake-up
//! leaves the consumer asleep with the producer finished: loom reports the deadlock.
use crate::queue::protocol as q;
use crate::segment::wake::protocol::{after_publish, wait, Slept, EVENTFD, FUTEX};
use crate::state::protocol::{self as tb, Consumer, Fetched, Producer, DIRTY};
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

/// State channel: the consumer waits for each update and fetches it until it has the last.
fn model_with(publishes: u64, how: u32, after_publish: fn(&AtomicU32) -> u32) {
    loom::model(move || {
        let middle = Arc::new(AtomicU64::new(1));
        let kernel = Arc::new(Kernel::new());
        let (pm, pk) = (middle.clone(), kernel.clone());
        let producer = loom::thread::spawn(move || {
            let mut p = Producer { back: 0, seq: 0 };
            for _ in 0..publishes {
                tb::publish(&pm, &mut p).unwrap();
                pk.notify(after_publish);
            }
        });
        let mut c = Consumer { front: 2, seq: 0 };
        while c.seq < publishes {
            let ready = kernel.wait(how, || middle.load(Ordering::Relaxed) & DIRTY != 0);
            assert!(ready, "no timeout was set, so wait returns only with data");
            assert!(matches!(
                tb::fetch(&middle, &mut c).unwrap(),
                Fetched::New { .. }
            ));
        }
        producer.join().unwrap();
    });
}

/// Queue of capacity 2: the consumer waits for messages and pops until it has the last.
fn queue_model(messages: u64, how: u32) {
    loom::model(move || {
        let shape = q::Shape::new(2);
        let cells: Arc<Vec<AtomicU64>> = Arc::new(
            (0..shape.capacity)
                .map(|i| AtomicU64::new(q::initial_cell(i)))
                .collect(),
        );
        let tail = Arc::new(AtomicU64::new(0));
        let kernel = Arc::new(Kernel::new());
        let (pc, pt, pk) = (cells.clone(), tail.clone(), kernel.clone());
        let producer = loom::thread::spawn(move || {
            let mut p = q::Producer {
                head: 0,
                slot: shape.capacity,
            };
            for _ in 0..messages {
                q::push(&pc, &pt, shape, &mut p, true).unwrap();
                pk.notify(after_publish);
            }
        });
        let mut c = q::Consumer {
            tail: 0,
            slot: shape.capacity + 1,
        };
        loop {
            let ready = kernel.wait(how, || q::has_message(&cells, shape, &c));
            assert!(ready);
            if let q::Popped::Message { pos, .. } = q::pop(&cells, shape, &mut c).unwrap() {
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
