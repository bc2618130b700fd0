//! A Zenoh bridge for rtipc channels (in progress): what it puts on the network is in
//! [`wire`].

pub mod wire;
