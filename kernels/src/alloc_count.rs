//! A counting global allocator for tests that prove code paths allocate
//! nothing (`#[global_allocator] static A: CountingAllocator = CountingAllocator::new();`).
//! It lives here because it needs `unsafe`, which only this crate may contain.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Forwards to the system allocator and counts allocations (alloc, zeroed
/// alloc and realloc calls).
#[derive(Debug, Default)]
pub struct CountingAllocator {
    count: AtomicUsize,
}

impl CountingAllocator {
    /// A counter at zero.
    pub const fn new() -> Self {
        CountingAllocator { count: AtomicUsize::new(0) }
    }

    /// Allocations so far (all threads).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Allocations made while `f` runs (by any thread).
    pub fn during(&self, f: impl FnOnce()) -> usize {
        let before = self.count();
        f();
        self.count() - before
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counter has no effect
// on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        self.count.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract for `l`.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        self.count.fetch_add(1, Ordering::SeqCst);
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        self.count.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller guarantees `p` came from this allocator (hence System) with layout `l`.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller guarantees `p` came from this allocator (hence System) with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
}
