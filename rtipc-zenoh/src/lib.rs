//! A Zenoh bridge for rtipc channels (work in progress).
