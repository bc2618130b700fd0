//! Handshake (in progress).
