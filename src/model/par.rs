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
    if work < PAR_MIN_WORK {
        f(0..n);
    } else {
        run_chunked(n, f);
    }
}

/// `f` over `0..n` in chunks taken from a shared cursor by every thread of the pool, or inline
/// on a pool thread or inside [`run_parts`].
pub(crate) fn run_chunked(n: usize, f: impl Fn(Range<usize>) + Sync) {
    if n < 2 || on_pool_thread() {
        f(0..n);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n, f);
    }
}

thread_local! {
    /// Set while this thread runs its part of [`run_parts`]: its kernels run inline.
    static IN_PART: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread must run its kernels inline: a pool thread cannot dispatch to
/// its own pool (candle runs such calls inline too), nor can the calling thread while the pool
/// runs [`run_parts`] (the pool takes one call at a time).
fn on_pool_thread() -> bool {
    IN_PART.with(|p| p.get())
        || std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("candle-bp-"))
}

/// Threads a parallel call from this thread runs on: the pool's and this one, or only this
/// one where its kernels run inline.
pub(crate) fn pool_threads() -> usize {
    if on_pool_thread() {
        1
    } else {
        candle_core::utils::barrier_pool().n_workers() + 1
    }
}

/// `f(part)` for every part in `0..parts` (at most [`pool_threads`]), each on its own thread of
/// the pool, every kernel inside running inline on that thread: independent pieces of work run
/// side by side with no synchronisation between their kernels.
pub(crate) fn run_parts(parts: usize, f: impl Fn(usize) + Sync) {
    if parts < 2 || pool_threads() < parts {
        (0..parts).for_each(f);
        return;
    }
    /// Clears the thread's mark when its part ends, unwinding included.
    struct InPart(bool);
    impl Drop for InPart {
        fn drop(&mut self) {
            IN_PART.with(|p| p.set(self.0));
        }
    }
    candle_core::utils::barrier_pool().execute(|t| {
        if t < parts {
            let _mark = InPart(IN_PART.with(|p| p.replace(true)));
            f(t);
        }
    });
}

/// `f(i, next)` once for every `i` in `0..n`, across the pool with a fixed first owner per
/// item: thread `t` of `T` takes its own items `t, t + T, ...` in order, then, from the end,
/// any the others have not started. `next` is the item this thread means to take after `i`
/// (`None` past its own), so `f` can ask memory for it while working on `i`; with items taken
/// first come first served the next one was as likely to run on the other core.
pub(crate) fn run_owned(n: usize, f: impl Fn(usize, Option<usize>) + Sync) {
    use std::sync::atomic::{AtomicBool, Ordering};

    let threads = pool_threads();
    if n < 2 || threads < 2 {
        (0..n).for_each(|i| f(i, (i + 1 < n).then_some(i + 1)));
        return;
    }
    let taken: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
    let claim = |i: usize| !taken[i].swap(true, Ordering::Relaxed);
    candle_core::utils::barrier_pool().execute(|t| {
        let mut own = (t..n).step_by(threads).peekable();
        while let Some(i) = own.next() {
            if claim(i) {
                f(i, own.peek().copied());
            }
        }
        for i in (0..n).rev() {
            if claim(i) {
                f(i, None);
            }
        }
    });
}

/// `first` over `0..n1`, then, once all of it is done, `second` over `0..n2`: in one dispatch
/// of the worker pool when the work is worth it (`work1 + work2` against [`PAR_MIN_WORK`]),
/// every thread taking chunks of `first` and then of `second` from shared cursors and waiting
/// between the two only for chunks still running. A matmul quantizing its input this way
/// splits that pass across the threads even for a few rows, where a dispatch of its own would
/// cost more than it saves, and the other thread no longer waits through it.
pub(crate) fn run_two(
    (n1, work1, first): (usize, usize, impl Fn(Range<usize>) + Sync),
    (n2, work2, second): (usize, usize, impl Fn(Range<usize>) + Sync),
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let threads = pool_threads();
    if work1 + work2 < PAR_MIN_WORK || threads < 2 || n1 == 0 {
        run_split(n1, work1, first);
        run_split(n2, work2, second);
        return;
    }
    let (next1, done1, next2) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let failed = AtomicBool::new(false);
    let (chunk1, chunk2) = (n1.div_ceil(threads).max(1), n2.div_ceil(threads * 8).max(1));
    /// Marks the call failed if a thread unwinds out of `first`, so the others stop waiting.
    struct Unwinding<'a>(&'a AtomicBool);
    impl Drop for Unwinding<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }
    candle_core::utils::barrier_pool().execute(|_| {
        {
            let _guard = Unwinding(&failed);
            loop {
                let start = next1.fetch_add(chunk1, Ordering::Relaxed);
                if start >= n1 {
                    break;
                }
                let end = n1.min(start + chunk1);
                first(start..end);
                done1.fetch_add(end - start, Ordering::Release);
            }
        }
        while done1.load(Ordering::Acquire) < n1 {
            if failed.load(Ordering::Relaxed) {
                return;
            }
            std::hint::spin_loop();
        }
        loop {
            let start = next2.fetch_add(chunk2, Ordering::Relaxed);
            if start >= n2 {
                break;
            }
            second(start..n2.min(start + chunk2));
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{run_owned, run_two, PAR_MIN_WORK};

    #[test]
    fn run_owned_runs_every_item_once_and_names_a_later_item_as_next() {
        for n in [0, 1, 2, 3, 16, 101] {
            let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            run_owned(n, |i, next| {
                runs[i].fetch_add(1, Ordering::Relaxed);
                if let Some(j) = next {
                    assert!(j > i && j < n, "next {j} after {i} of {n}");
                }
            });
            for (i, r) in runs.iter().enumerate() {
                assert_eq!(r.load(Ordering::Relaxed), 1, "item {i} of {n}");
            }
        }
    }

    #[test]
    fn run_two_finishes_the_first_pass_before_the_second_reads_it() {
        // inline (little work) and across the pool (much)
        for (n1, n2, work) in [(3, 5, 10), (16, 64, PAR_MIN_WORK), (1000, 7, PAR_MIN_WORK)] {
            let firsts: Vec<AtomicUsize> = (0..n1).map(|_| AtomicUsize::new(0)).collect();
            let seconds: Vec<AtomicUsize> = (0..n2).map(|_| AtomicUsize::new(0)).collect();
            run_two(
                (n1, work, |r: std::ops::Range<usize>| {
                    r.for_each(|i| {
                        firsts[i].fetch_add(1, Ordering::Relaxed);
                    })
                }),
                (n2, work, |r: std::ops::Range<usize>| {
                    // every item of the first pass done, once, before any of the second
                    assert!(firsts.iter().all(|f| f.load(Ordering::Relaxed) == 1));
                    r.for_each(|i| {
                        seconds[i].fetch_add(1, Ordering::Relaxed);
                    })
                }),
            );
            assert!(
                seconds.iter().all(|s| s.load(Ordering::Relaxed) == 1),
                "{n1} {n2}"
            );
        }
    }
}
