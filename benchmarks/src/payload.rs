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
    /// The 8-byte payload of `state_8` and of the in-process comparison.
    Word = 8;
    /// The 4 KiB payload of `state_4k`.
    Page = 4096;
    /// The 64-byte payload of the determinism test.
    Line64 = 64;
    /// The 1 KiB message of the queue throughput test.
    Kib = 1024;
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
        .consumers(FANOUT_PUBLISH_CONSUMERS);
    macro_rules! sweep {
        ($(($t:ident, $label:expr)),*) => {
            $( b = b.state::<$t>(sweep_channel(size_of::<$t>()), Out); )*
        };
    }
    for_each_sweep!(sweep);
    b
}
