//! Keeps freed memory in the process. glibc serves blocks above its mmap threshold (128 KiB at
//! first) with fresh mappings and unmaps them on free, and trims the heap top back to the kernel;
//! a training step allocates and frees hundreds of MB of activations and gradients, so every step
//! paid for page faults and for the kernel zeroing the same pages again (a fifth of the step's
//! time in `clear_page`). Raising both thresholds lets freed blocks be reused.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; called before any other thread starts.
    unsafe {
        // 32 MiB is the largest threshold glibc accepts on 64-bit.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
