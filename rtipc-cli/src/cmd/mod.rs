//! One module per command: its arguments and what it does.

pub mod check;
pub mod echo;
pub mod hz;
pub mod ls;
pub mod rm;
pub mod schema;
pub mod show;

use rtipc::{ChannelKind, Direction};

/// A channel's kind in one word.
pub fn kind(k: ChannelKind, consumers: u32) -> String {
    match k {
        ChannelKind::State if consumers > 1 => format!("state×{consumers}"),
        k => k.to_string(),
    }
}

/// Which side produces, in one word.
pub fn direction(d: Direction) -> &'static str {
    match d {
        Direction::CreatorToPeer => "creator→peer",
        Direction::PeerToCreator => "peer→creator",
    }
}
