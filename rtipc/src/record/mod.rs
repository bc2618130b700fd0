//! Record channels: variable-size records of one element type in a per-channel byte ring
//! (the protocol; the handles come next).

pub(crate) mod protocol;
