//! The objects the benchmarks send, and the channels of the shared segment.

use rtipc::{Direction, Object, SegmentBuilder};

/// XORed into the last word of a payload, so that a first and last word that were swapped,
/// torn or left stale are told apart.
pub const LAST: u64 = 0x5a5a_5a5a_0f0f_0f0f;

/// Access to a payload as 64-bit words, for the checks.
pub trait Words {
    fn words(&self) -> &[u64];
    fn words_mut(&mut self) -> &mut [u64];
}

/// Fills a payload for sequence number `s`: `s` in every word but the last, which holds
/// `s ^ LAST`.
#[inline(always)]
pub fn fill(w: &mut [u64], s: u64) {
    w.fill(s);
    let n = w.len();
    if n > 1 {
        w[n - 1] = s ^ LAST;
    }
}

/// Checks the first and the last word of a payload filled or marked for `s`.
#[inline(always)]
pub fn check(w: &[u64], s: u64) -> bool {
    let n = w.len();
    w[0] == s && (n == 1 || w[n - 1] == s ^ LAST)
}

/// Checks every word of a payload filled for `s` (a record of the throughput test: a torn or
/// stale word anywhere in it shows).
#[inline(always)]
pub fn check_all(w: &[u64], s: u64) -> bool {
    let Some((&last, body)) = w.split_last() else {
        return false;
    };
    // An OR of differences rather than `all`: no early exit, so the loop vectorises.
    let diff = body.iter().fold(0, |d, &x| d | (x ^ s));
    let want = if body.is_empty() { s } else { s ^ LAST };
    diff == 0 && last == want
}

/// A record of [`Word`] elements as 64-bit words.
#[inline(always)]
pub fn record_words(r: &[Word]) -> &[u64] {
    // SAFETY: `Word` is `repr(C)` around one `u64`: same size, alignment and validity, so
    // `r.len()` of them are `r.len()` `u64`s, borrowed as long as `r`.
    unsafe { std::slice::from_raw_parts(r.as_ptr().cast::<u64>(), r.len()) }
}

/// A record of [`Word`] elements as 64-bit words, to write.
#[inline(always)]
pub fn record_words_mut(r: &mut [Word]) -> &mut [u64] {
    // SAFETY: as for `record_words`; the borrow is unique because `r` is.
    unsafe { std::slice::from_raw_parts_mut(r.as_mut_ptr().cast::<u64>(), r.len()) }
}

macro_rules! payloads {
    ($($(#[$doc:meta])* $name:ident = $bytes:expr;)*) => {
        $(
            $(#[$doc])*
            #[derive(Object)]
            #[repr(C)]
            pub struct $name {
                pub w: [u64; ($bytes) / 8],
            }

            impl Words for $name {
                #[inline(always)]
                fn words(&self) -> &[u64] {
                    &self.w
                }
                #[inline(always)]
                fn words_mut(&mut self) -> &mut [u64] {
                    &mut self.w
                }
            }
        )*
    };
}

payloads! {
    /// The 8-byte payload of `state_8` and of the in-process comparison, and the element of
    /// every record channel.
    Word = 8;
    /// The 4 KiB payload of `state_4k`.
    Page = 4096;
    /// The 64-byte payload of the determinism test.
    Line64 = 64;
    /// The 1 KiB message of the queue throughput test.
    Kib = 1024;
    /// The update of the open-loop test: an 8-byte payload (the publisher's sequence number,
    /// `w[0]`) and the publisher's `CLOCK_MONOTONIC` stamp taken just before the publish
    /// (`w[1]`).
    Stamped = 16;
    Sweep8 = 8;
    Sweep32 = 32;
    Sweep128 = 128;
    Sweep512 = 512;
    Sweep2k = 2 << 10;
    Sweep8k = 8 << 10;
    Sweep32k = 32 << 10;
    Sweep128k = 128 << 10;
    Sweep512k = 512 << 10;
    Sweep2m = 2 << 20;
    Sweep4m = 4 << 20;
}

/// Calls `$m!(Type, "label")` for every size of the payload sweep, smallest first.
#[macro_export]
macro_rules! for_each_sweep {
    ($m:ident) => {
        $m!(
            (Sweep8, "8 B"),
            (Sweep32, "32 B"),
            (Sweep128, "128 B"),
            (Sweep512, "512 B"),
            (Sweep2k, "2 KiB"),
            (Sweep8k, "8 KiB"),
            (Sweep32k, "32 KiB"),
            (Sweep128k, "128 KiB"),
            (Sweep512k, "512 KiB"),
            (Sweep2m, "2 MiB"),
            (Sweep4m, "4 MiB")
        )
    };
}

/// The name of the sweep channel for `bytes`.
pub fn sweep_channel(bytes: usize) -> String {
    format!("sweep/{bytes}")
}

/// Capacity of the round-trip queues (one message is ever in flight).
pub const QUEUE_RT_CAPACITY: u32 = 16;
/// Consumer ends of the channel whose publish cost is measured with busy consumers.
pub const FANOUT_PUBLISH_CONSUMERS: u32 = 4;
/// Capacity of the throughput queues.
pub const QUEUE_CAPACITY: u32 = 1024;
/// Ring of each round-trip record channel: 64 KiB, room for 15 records of 4 KiB.
pub const RECORD_RT_RING: u64 = 64 << 10;
/// Ring of the record throughput channel: 4 MiB, which carries records of up to 2 MiB (so
/// three records of 1 MiB at a time).
pub const RECORD_TPUT_RING: u64 = 4 << 20;
/// Elements ([`Word`]) in a `record_4k` round-trip record.
pub const RECORD_4K_LEN: usize = 4096 / 8;

/// Declares every channel that the two processes share. The parent creates the segment; the
/// child attaches.
pub fn declare() -> SegmentBuilder {
    use Direction::{CreatorToPeer as Out, PeerToCreator as Back};
    let mut b = rtipc::Segment::builder()
        .state::<Word>("state_8/ping", Out)
        .state::<Word>("state_8/pong", Back)
        .state::<Page>("state_4k/ping", Out)
        .state::<Page>("state_4k/pong", Back)
        .state::<Line64>("determinism", Out)
        .queue::<Word>("queue_8/ping", Out, QUEUE_RT_CAPACITY)
        .queue::<Word>("queue_8/pong", Back, QUEUE_RT_CAPACITY)
        .queue::<Word>("throughput_8", Out, QUEUE_CAPACITY)
        .queue::<Kib>("throughput_1k", Out, QUEUE_CAPACITY)
        .state::<Word>("fanout_2/ping", Out)
        .consumers(2)
        .state::<Word>("fanout_4/ping", Out)
        .consumers(4)
        .state::<Word>("fanout/pong", Back)
        .state::<Line64>("fanout_publish", Out)
        .consumers(FANOUT_PUBLISH_CONSUMERS)
        .record::<Word>("record_8/ping", Out, RECORD_RT_RING)
        .record::<Word>("record_8/pong", Back, RECORD_RT_RING)
        .record::<Word>("record_4k/ping", Out, RECORD_RT_RING)
        .record::<Word>("record_4k/pong", Back, RECORD_RT_RING)
        .record::<Word>("record_throughput", Out, RECORD_TPUT_RING);
    macro_rules! sweep {
        ($(($t:ident, $label:expr)),*) => {
            $( b = b.state::<$t>(sweep_channel(size_of::<$t>()), Out); )*
        };
    }
    for_each_sweep!(sweep);
    b
}
