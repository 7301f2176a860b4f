//! Keeps freed memory in the process. glibc serves blocks above its mmap threshold (128 KiB at
//! first) with fresh mappings and unmaps them on free, and trims the heap top back to the kernel;
//! a training step allocates and frees hundreds of MB of activations and gradients, so every step
//! paid for page faults and for the kernel zeroing the same pages again (a fifth of the step's
//! time in `clear_page`). Serving every block from the heap and not trimming it lets freed
//! blocks be reused.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; called before any other thread starts.
    unsafe {
        // No mmap-backed blocks at all (the threshold cannot go above 32 MiB, and a training
        // step's logits and their gradient are larger), and no trimming below 1 GiB.
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
