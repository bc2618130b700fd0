//! Object types and helpers shared by the cross-process tests and their peer binary.
#![allow(dead_code)]

use rtipc::Object;

/// 4 KiB: every word carries the update number.
#[derive(Object)]
#[repr(C)]
pub struct Big {
    pub words: [u64; 512],
}

/// A small message with a channel tag and a check word.
#[derive(Object)]
#[repr(C)]
pub struct Small {
    pub seq: u64,
    pub tag: u32,
    pub check: u32,
}

/// 256 bytes.
#[derive(Object)]
#[repr(C)]
pub struct Mid {
    pub seq: u64,
    pub data: [u32; 62],
}

/// First object of the multi-object channel.
#[derive(Object)]
#[repr(C)]
pub struct Pose {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// Second object of the multi-object channel.
#[derive(Object)]
#[repr(C)]
pub struct Battery {
    pub seq: u64,
    pub volts: f32,
    pub amps: f32,
}

/// The check word of a `Small` with this sequence number and tag.
pub fn small_check(seq: u64, tag: u32) -> u32 {
    (seq as u32).wrapping_mul(2_654_435_761) ^ tag
}

pub fn small(seq: u64, tag: u32) -> Small {
    Small {
        seq,
        tag,
        check: small_check(seq, tag),
    }
}

pub fn small_ok(s: &Small, tag: u32) -> bool {
    s.tag == tag && s.check == small_check(s.seq, tag)
}

pub fn mid_fill(m: &mut Mid, seq: u64) {
    m.seq = seq;
    for (i, d) in m.data.iter_mut().enumerate() {
        *d = (seq as u32).wrapping_add(i as u32);
    }
}

pub fn mid_ok(m: &Mid) -> bool {
    m.data
        .iter()
        .enumerate()
        .all(|(i, &d)| d == (m.seq as u32).wrapping_add(i as u32))
}

pub fn big_ok(b: &Big, seq: u64) -> bool {
    b.words.iter().all(|&w| w == seq)
}

pub const TAG_DOWN: u32 = 0xD0D0;
pub const TAG_UP: u32 = 0x0B0B;

/// A wake-up probe: its sequence number and when it was published.
#[derive(Object)]
#[repr(C)]
pub struct Stamp {
    pub seq: u64,
    /// `CLOCK_MONOTONIC` at publish, in nanoseconds (the same clock in every process).
    pub sent_ns: u64,
}

/// `CLOCK_MONOTONIC` in nanoseconds: comparable across processes, unlike `Instant`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The channels of the wake-up tests: `ping` from the peer (or client), `pong` back, both
/// notify-enabled.
pub fn wake_channels(builder: rtipc::SegmentBuilder) -> rtipc::SegmentBuilder {
    use rtipc::{ChannelSpec, Direction};
    builder
        .channel(
            ChannelSpec::state("ping", Direction::PeerToCreator)
                .object::<Stamp>()
                .notify(true),
        )
        .channel(
            ChannelSpec::state("pong", Direction::CreatorToPeer)
                .object::<Stamp>()
                .notify(true),
        )
}

/// The channels of the handshake tests: `cmd` from the client, `echo` back.
pub fn echo_channels(builder: rtipc::SegmentBuilder) -> rtipc::SegmentBuilder {
    use rtipc::handshake::{CLIENT_TO_SERVER, SERVER_TO_CLIENT};
    use rtipc::ChannelSpec;
    builder
        .channel(
            ChannelSpec::state("cmd", CLIENT_TO_SERVER)
                .object::<Small>()
                .notify(true)
                .user_meta(*b"commands"),
        )
        .channel(
            ChannelSpec::state("echo", SERVER_TO_CLIENT)
                .object::<Small>()
                .notify(true),
        )
}

/// Waits (blocking, notified) until `rx` has an update with sequence number `seq` or more;
/// false on a 10 s timeout.
pub fn wait_for_seq<T: rtipc::Object>(
    rx: &mut rtipc::StateConsumer<T>,
    seq: u64,
    got: impl Fn(&T) -> u64,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(Some(s)) = rx.fetch() {
            if got(&s) >= seq {
                return true;
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || !rx.wait(Some(left)).unwrap_or(false) {
            return false;
        }
    }
}
/// A numbered queue message with a check word.
#[derive(Object)]
#[repr(C)]
pub struct Numbered {
    pub n: u64,
    pub check: u64,
}

pub fn numbered(n: u64) -> Numbered {
    Numbered {
        n,
        check: n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    }
}

pub fn numbered_ok(m: &Numbered) -> bool {
    m.check == m.n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
