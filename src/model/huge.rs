//! Weight storage on transparent huge pages.
//!
//! A decode step streams every weight once (about 140 MB for the int8 backbone). On 4 KiB pages
//! that is 35,000 TLB misses a step, each a two-level page walk under a hypervisor, and the
//! batched int8 kernel waited on them. Linux hands out 2 MiB pages for anonymous memory marked
//! `MADV_HUGEPAGE` (the default `madvise` mode of transparent huge pages), so weight buffers are
//! carved from 2 MiB-aligned mappings of 32 MiB (chunks), marked before their pages are first
//! touched. Many small matrices share one chunk, so no huge page is mostly empty; a chunk is
//! unmapped when the last buffer in it is dropped, and a dropped buffer hands its whole pages
//! back at once. KV caches live here too ([`HugeBuf::zeroed`]: a batched step reads thousands of
//! short key/value runs, one or two pages each on 4 KiB pages). Where mappings are refused
//! (another OS, `mmap` failing) the buffer is an ordinary `Vec`, and only the speed differs.
use std::ops::{Deref, DerefMut};

/// Bytes of one huge page (x86-64 and aarch64 with 4 KiB base pages).
const HUGE: usize = 2 << 20;

/// Bytes of one shared chunk; larger buffers get a chunk of their own.
const CHUNK: usize = 16 * HUGE;

/// Alignment of each buffer inside a chunk (one cache line).
const ALIGN: usize = 64;

/// A fixed-length buffer of plain values, on huge pages where the OS grants them.
pub struct HugeBuf<T: Copy + Default> {
    inner: Inner<T>,
}

enum Inner<T> {
    Heap(Vec<T>),
    #[cfg(target_os = "linux")]
    Mapped(mapped::Slot<T>),
}

impl<T: Copy + Default> HugeBuf<T> {
    /// `len` copies of `T::default()`.
    pub fn new(len: usize) -> Self {
        #[cfg(target_os = "linux")]
        if len > 0 && std::mem::align_of::<T>() <= ALIGN && huge_pages_wanted() {
            if let Some(s) = mapped::Slot::new(len) {
                return HugeBuf {
                    inner: Inner::Mapped(s),
                };
            }
        }
        HugeBuf {
            inner: Inner::Heap(vec![T::default(); len]),
        }
    }

    /// `len` zeros, like [`Self::new`] for types whose default is all zero bits, but a mapped
    /// buffer is left as the OS hands it out (fresh pages read as zero), so pages are faulted in
    /// when first written, not all at once here (for caches that fill gradually).
    pub fn zeroed(len: usize) -> Self
    where
        T: ZeroBits,
    {
        #[cfg(target_os = "linux")]
        if len > 0 && std::mem::align_of::<T>() <= ALIGN && huge_pages_wanted() {
            if let Some(s) = mapped::Slot::new_untouched(len) {
                return HugeBuf {
                    inner: Inner::Mapped(s),
                };
            }
        }
        Self::new(len)
    }

    /// A copy of `src`.
    pub fn from_slice(src: &[T]) -> Self {
        let mut b = Self::new(src.len());
        b.copy_from_slice(src);
        b
    }

    /// Whether the buffer lives in a huge-page chunk (else an ordinary heap block).
    pub fn is_mapped(&self) -> bool {
        !matches!(self.inner, Inner::Heap(_))
    }
}

/// Types whose default value is all zero bits (so fresh anonymous pages already hold it).
///
/// # Safety
/// `T::default()` must be the all-zero bit pattern, and all-zero bits a valid `T`.
pub unsafe trait ZeroBits: Copy + Default {}
// SAFETY: 0.0 is all zero bits in both formats.
unsafe impl ZeroBits for f32 {}
unsafe impl ZeroBits for half::f16 {}
unsafe impl ZeroBits for i8 {}

/// `MEIT_NO_HUGEPAGES` keeps every buffer on the heap (for measurements).
fn huge_pages_wanted() -> bool {
    use std::sync::OnceLock;
    static WANT: OnceLock<bool> = OnceLock::new();
    *WANT.get_or_init(|| std::env::var_os("MEIT_NO_HUGEPAGES").is_none())
}

impl<T: Copy + Default> Deref for HugeBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.inner {
            Inner::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Inner::Mapped(m) => m.as_slice(),
        }
    }
}

impl<T: Copy + Default> DerefMut for HugeBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.inner {
            Inner::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Inner::Mapped(m) => m.as_mut_slice(),
        }
    }
}

impl<T: Copy + Default> Clone for HugeBuf<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Copy + Default> std::fmt::Debug for HugeBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeBuf")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

#[cfg(target_os = "linux")]
mod mapped {
    use std::marker::PhantomData;
    use std::ptr::NonNull;
    use std::sync::{Arc, Mutex};

    use super::{ALIGN, CHUNK, HUGE};

    /// An anonymous private mapping whose usable part starts 2 MiB-aligned and is marked
    /// `MADV_HUGEPAGE`.
    struct Chunk {
        /// The whole mapping (for `munmap`).
        base: NonNull<u8>,
        map_len: usize,
        /// The aligned start and usable bytes.
        start: NonNull<u8>,
        cap: usize,
    }

    // SAFETY: a chunk is only an address range; the slots carved from it are disjoint and
    // each is owned by one buffer.
    unsafe impl Send for Chunk {}
    unsafe impl Sync for Chunk {}

    impl Chunk {
        fn new(bytes: usize) -> Option<Self> {
            let cap = bytes.checked_add(HUGE - 1)? & !(HUGE - 1);
            // One spare huge page so the start can be aligned.
            let map_len = cap.checked_add(HUGE)?;
            // SAFETY: a fresh anonymous mapping; no existing memory is touched.
            let raw = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if raw == libc::MAP_FAILED {
                return None;
            }
            let base = NonNull::new(raw.cast::<u8>())?;
            let offset = (HUGE - (raw as usize) % HUGE) % HUGE;
            // SAFETY: `offset < HUGE`, so `offset + cap <= map_len`.
            let start = NonNull::new(unsafe { base.as_ptr().add(offset) })?;
            // Marked before the first touch, so the first page faults get huge pages. A refusal
            // (huge pages off) leaves ordinary pages: still correct.
            // SAFETY: the range lies inside the mapping.
            unsafe { libc::madvise(start.as_ptr().cast(), cap, libc::MADV_HUGEPAGE) };
            Some(Chunk {
                base,
                map_len,
                start,
                cap,
            })
        }
    }

    impl Drop for Chunk {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, unmapped once, after every slot is gone.
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
        }
    }

    /// The chunk new slots are carved from, and the bytes of it already handed out.
    static CURRENT: Mutex<Option<(Arc<Chunk>, usize)>> = Mutex::new(None);

    /// `len` values of `T` inside a chunk, which the slot keeps alive.
    pub struct Slot<T> {
        _chunk: Arc<Chunk>,
        data: NonNull<T>,
        len: usize,
        _values: PhantomData<T>,
    }

    impl<T> Drop for Slot<T> {
        /// A chunk is unmapped only when its last slot goes, so a dropped slot gives its whole
        /// pages back now (a chunk shared with a long-lived buffer would otherwise keep a
        /// finished sequence's cache resident). Only pages wholly inside the slot: the partial
        /// pages at its ends may hold neighbours' data.
        fn drop(&mut self) {
            const PAGE: usize = 4096;
            let start = self.data.as_ptr() as usize;
            let end = start + self.len * std::mem::size_of::<T>();
            let (lo, hi) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
            if hi > lo {
                // SAFETY: whole pages inside this slot's range, which no one else uses and no
                // one reads after the drop; the mapping stays valid (zero pages on next touch).
                unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
            }
        }
    }

    // SAFETY: the slot's range is owned exclusively, like a `Vec<T>`'s buffer.
    unsafe impl<T: Send> Send for Slot<T> {}
    unsafe impl<T: Sync> Sync for Slot<T> {}

    impl<T: Copy + Default> Slot<T> {
        pub fn new(len: usize) -> Option<Self> {
            let slot = Self::new_untouched(len)?;
            // Fresh anonymous pages read as zero; fill with the default value as a `Vec` would
            // (which also faults the pages in now rather than in the first step).
            // SAFETY: the range is this slot's alone.
            unsafe {
                for i in 0..len {
                    slot.data.as_ptr().add(i).write(T::default());
                }
            }
            Some(slot)
        }

        /// A slot whose memory is as mapped: never handed out before, so still the zero pages
        /// of a fresh anonymous mapping (callers use it only for types valid as zero bits).
        pub fn new_untouched(len: usize) -> Option<Self> {
            let bytes = len.checked_mul(std::mem::size_of::<T>())?;
            let (chunk, offset) = if bytes > CHUNK / 2 {
                (Arc::new(Chunk::new(bytes)?), 0)
            } else {
                let mut cur = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
                let fits = cur.as_ref().is_some_and(|(c, used)| used + bytes <= c.cap);
                if !fits {
                    *cur = Some((Arc::new(Chunk::new(CHUNK)?), 0));
                }
                let (c, used) = cur.as_mut()?;
                let offset = *used;
                *used = (offset + bytes).next_multiple_of(ALIGN);
                (c.clone(), offset)
            };
            // SAFETY: `offset + bytes <= cap`, a 64-byte-aligned offset from a 2 MiB-aligned
            // start (so aligned for `T`, checked by the caller), not handed out before.
            let data = unsafe { chunk.start.as_ptr().add(offset) }.cast::<T>();
            let data = NonNull::new(data)?;
            Some(Slot {
                _chunk: chunk,
                data,
                len,
                _values: PhantomData,
            })
        }

        pub fn as_slice(&self) -> &[T] {
            // SAFETY: `len` initialised values from `data`, owned by `self`.
            unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
        }

        pub fn as_mut_slice(&mut self) -> &mut [T] {
            // SAFETY: as `as_slice`, borrowed mutably through `self`.
            unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_hold_their_values_apart() {
        let n = 3 * HUGE / 4 + 5; // not a whole number of pages
        let mut b = HugeBuf::<f32>::new(n);
        let mut small = HugeBuf::<i8>::from_slice(&[1, -2, 3]);
        let big = HugeBuf::<u16>::new(CHUNK); // a chunk of its own
        assert_eq!(b.len(), n);
        assert!(b.iter().all(|&v| v == 0.0));
        for (i, v) in b.iter_mut().enumerate() {
            *v = i as f32;
        }
        let c = b.clone();
        assert_eq!(c[n - 1], (n - 1) as f32);
        assert_eq!(&c[..], &b[..]);
        small[1] = 7;
        assert_eq!(&small[..], &[1, 7, 3]);
        assert_eq!(b[1], 1.0, "neighbouring slots do not overlap");
        assert!(big.iter().all(|&v| v == 0));
        if cfg!(target_os = "linux") && huge_pages_wanted() {
            assert!(b.is_mapped() && small.is_mapped() && big.is_mapped());
            assert_eq!(big.as_ptr() as usize % HUGE, 0);
            assert_eq!(small.as_ptr() as usize % ALIGN, 0);
        }
        let empty = HugeBuf::<f32>::new(0);
        assert!(empty.is_empty());
        let mut z = HugeBuf::<half::f16>::zeroed(5000);
        assert!(z.iter().all(|v| v.to_f32() == 0.0));
        z[4999] = half::f16::ONE;
        assert_eq!(z[4999], half::f16::ONE);
        assert_eq!(b[1], 1.0, "a zeroed slot does not overlap earlier ones");
    }
}
