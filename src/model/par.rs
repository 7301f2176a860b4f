//! The two pieces every parallel kernel here shares: an output buffer that the threads of one
//! call write in disjoint parts, and "split `0..n` across candle's worker pool unless the work is
//! too small to be worth waking it".
use std::ops::Range;

/// Below this much work (in multiply-adds or elements) a kernel runs on the calling thread.
pub(crate) const PAR_MIN_WORK: usize = 1 << 15;

/// An output buffer shared by the threads of one kernel call, each writing its own elements.
pub(crate) struct OutPtr<T = f32>(pub(crate) *mut T);
impl<T> Clone for OutPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for OutPtr<T> {}
// SAFETY: every kernel that shares one writes disjoint elements.
unsafe impl<T> Send for OutPtr<T> {}
unsafe impl<T> Sync for OutPtr<T> {}

impl<T> OutPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not its field).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }

    /// `len` elements from `start`.
    ///
    /// # Safety
    /// Within the buffer, and no other thread touches these elements during the borrow.
    pub(crate) unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Runs `f` over `0..n` in chunks on candle's spinning worker pool (the same threads as candle's
/// own ops, woken in microseconds), or inline when `work` is below [`PAR_MIN_WORK`].
pub(crate) fn run_split(n: usize, work: usize, f: impl Fn(Range<usize>) + Sync) {
    if work < PAR_MIN_WORK || n < 2 {
        f(0..n);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n, f);
    }
}
