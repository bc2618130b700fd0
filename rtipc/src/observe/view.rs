//! What an observer returns.

use std::ops::Deref;

/// A value an observer copied out of a channel: derefs to the value (`T`, or `[u8]` for a
/// [`RawObserver`](super::RawObserver)). Valid until the observer's next call.
///
/// Its facts are associated functions, so that they never hide a field of `T`:
/// [`Observed::seq`], [`Observed::missed`], [`Observed::is_new`].
pub struct Observed<'a, T: ?Sized> {
    pub(super) value: &'a T,
    pub(super) seq: u64,
    pub(super) missed: u64,
    pub(super) new: bool,
}

impl<'a, T: ?Sized> Observed<'a, T> {
    /// The update's sequence number (state), or the message's number (queue): 1 for the
    /// producer's first.
    #[inline]
    pub fn seq(this: &Self) -> u64 {
        this.seq
    }

    /// How many updates or messages this observer did not see between its previous result and
    /// this one.
    #[inline]
    pub fn missed(this: &Self) -> u64 {
        this.missed
    }

    /// Whether this differs from the observer's previous result (a state observer returns the
    /// same update again while there is nothing newer).
    #[inline]
    pub fn is_new(this: &Self) -> bool {
        this.new
    }

    /// The value, for the lifetime of the borrow of the observer.
    #[inline]
    pub fn value(this: &Self) -> &'a T {
        this.value
    }
}

impl<T: ?Sized> Deref for Observed<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Observed<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("seq", &self.seq)
            .field("missed", &self.missed)
            .field("new", &self.new)
            .field("value", &self.value)
            .finish()
    }
}
