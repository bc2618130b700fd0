//! Observers: read-only handles on any channel, that claim no end and write nothing to the
//! segment.
//!
//! An observer copies the newest value of a state channel ([`StateObserver`]), or the messages
//! of a queue it can still get ([`QueueObserver`]), out of the segment, and checks the copy
//! afterwards: a copy that the producer overwrote while it was being made is thrown away and
//! made again, so an observer never returns a torn value. Each result says how many updates or
//! messages the observer missed. [`RawObserver`] does the same without a Rust type: bytes, and
//! the channel's decoded schemas, for tools.
//!
//! Any number of observers may follow a channel, beside its producer and consumers. Their cost
//! to those is only the cache lines they read: the producer's words and the slot they copy.
//! The producer and the consumers never look at them.
//!
//! ```no_run
//! # use rtipc::{Object, Segment, StateObserver};
//! # #[derive(Object)] #[repr(C)] struct Pose { x: f64, y: f64 }
//! let seg = Segment::open("robot")?;
//! let mut watch = StateObserver::<Pose>::new(&seg, "pose")?;
//! if let Some(pose) = watch.observe()? {
//!     println!("x = {} (update {})", pose.x, rtipc::Observed::seq(&pose));
//! }
//! # Ok::<(), rtipc::Error>(())
//! ```
//!
//! The protocols' observer steps and their model checks are in the channel kinds'
//! `protocol.rs` files (`observe`, `observed`).

mod raw;
mod view;

pub use self::raw::{ObjectLayout, QueueObserver, RawObserver, StateObserver};
pub use self::view::Observed;
