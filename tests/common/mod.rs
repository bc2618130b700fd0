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
