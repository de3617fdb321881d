//! A 64-byte-aligned, zero-initialised `f32` buffer: the arena's backing store
//! and the home of packed weights.
//!
//! 64 bytes is a cache line and an AVX-512 register, so every tensor placed at
//! a multiple of 16 floats inside it is aligned for every ISA we target.
//!
//! Buffers of [`HUGE_MIN_BYTES`] or more (the prepared weights, about 100 MB,
//! and the arena) are anonymous memory maps starting on a 2 MiB boundary and,
//! on Linux, advised for transparent huge pages (`MADV_HUGEPAGE`; systems set
//! to `madvise` mode use them only when asked). At batch 1 every inference
//! streams all the weights from DRAM: with 4 KiB pages that is some 25 000
//! TLB misses per inference, and the GEMM's prefetches of the next weight
//! panel cross a page boundary every 4 KiB.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment of every [`AlignedBuf`], in bytes.
pub const ALIGN: usize = 64;
/// Floats per alignment unit (`ALIGN / 4`).
pub const ALIGN_FLOATS: usize = ALIGN / std::mem::size_of::<f32>();

/// Rounds `n` floats up to a whole number of 64-byte lines.
pub const fn round_up_floats(n: usize) -> usize {
    n.div_ceil(ALIGN_FLOATS) * ALIGN_FLOATS
}

/// Size from which an [`AlignedBuf`] is a huge-page-advised memory map.
pub const HUGE_MIN_BYTES: usize = 4 << 20;
/// Huge page size the maps are aligned to.
const HUGE_PAGE: usize = 2 << 20;

/// Owned, zero-initialised, 64-byte-aligned storage of `len` floats.
pub struct AlignedBuf {
    ptr: NonNull<f32>,
    len: usize,
    /// The anonymous map `ptr` points into (large buffers), or `None` (heap).
    map: Option<memmap2::MmapMut>,
}

// SAFETY: AlignedBuf uniquely owns its allocation (like Vec<f32>), so moving it
// to or sharing `&` references with another thread is sound.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out `&[f32]`; mutation needs `&mut self`.
unsafe impl Sync for AlignedBuf {}

/// Why an [`AlignedBuf`] could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocError {
    /// Bytes requested.
    pub bytes: usize,
}

impl std::fmt::Display for AllocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not allocate {} bytes ({:.1} MiB)", self.bytes, self.bytes as f64 / 1048576.0)
    }
}
impl std::error::Error for AllocError {}

impl AlignedBuf {
    /// Allocates `len` zeroed floats; returns an error (instead of aborting)
    /// when the size overflows or the allocator refuses.
    pub fn zeroed(len: usize) -> Result<Self, AllocError> {
        let bytes = len.checked_mul(std::mem::size_of::<f32>()).ok_or(AllocError { bytes: usize::MAX })?;
        if len == 0 {
            return Ok(AlignedBuf { ptr: NonNull::dangling(), len: 0, map: None });
        }
        if bytes >= HUGE_MIN_BYTES {
            return Self::mapped(len, bytes);
        }
        let layout = Layout::from_size_align(bytes, ALIGN).map_err(|_| AllocError { bytes })?;
        // SAFETY: layout has non-zero size (len > 0) and a valid power-of-two alignment.
        let raw = unsafe { alloc::alloc_zeroed(layout) } as *mut f32;
        let ptr = NonNull::new(raw).ok_or(AllocError { bytes })?;
        Ok(AlignedBuf { ptr, len, map: None })
    }

    /// A zeroed anonymous map of `bytes + 2 MiB`, used from its first 2 MiB
    /// boundary so that every whole 2 MiB of the buffer can be a huge page.
    fn mapped(len: usize, bytes: usize) -> Result<Self, AllocError> {
        let err = AllocError { bytes };
        let total = bytes.checked_add(HUGE_PAGE).ok_or(err.clone())?;
        let mut map = memmap2::MmapMut::map_anon(total).map_err(|_| err.clone())?;
        #[cfg(target_os = "linux")]
        {
            // Only advice: a kernel without THP keeps 4 KiB pages.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        let base = map.as_mut_ptr();
        let skip = base.align_offset(HUGE_PAGE);
        if skip + bytes > total {
            return Err(err);
        }
        // SAFETY: skip + bytes <= total, so the pointer and the `bytes` after
        // it are inside the map; the map is page-aligned and skip makes the
        // start 2 MiB-aligned, which is also 64-byte and f32 aligned.
        let ptr = NonNull::new(unsafe { base.add(skip) } as *mut f32).ok_or(err)?;
        Ok(AlignedBuf { ptr, len, map: Some(map) })
    }

    /// Copies `data` into a new aligned buffer.
    pub fn from_slice(data: &[f32]) -> Result<Self, AllocError> {
        let mut b = Self::zeroed(data.len())?;
        b.as_mut_slice().copy_from_slice(data);
        Ok(b)
    }

    /// Number of floats.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no floats.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The floats.
    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: ptr is valid for len initialised (zeroed) floats, or dangling
        // and well-aligned with len == 0; the borrow ties the slice to self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The floats, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in as_slice, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // A mapped buffer is unmapped when `map` drops.
        if self.len > 0 && self.map.is_none() {
            let layout = Layout::from_size_align(self.len * std::mem::size_of::<f32>(), ALIGN)
                .expect("layout was valid at allocation");
            // SAFETY: ptr was returned by alloc_zeroed with this exact layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr() as *mut u8, layout) };
        }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} floats)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        for len in [1usize, 3, 16, 1000] {
            let b = AlignedBuf::zeroed(len).unwrap();
            assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
            assert!(b.as_slice().iter().all(|&v| v == 0.0));
        }
        assert!(AlignedBuf::zeroed(0).unwrap().is_empty());
    }

    #[test]
    fn large_buffers_are_maps_on_a_huge_page_boundary() {
        let len = HUGE_MIN_BYTES / 4 + 5;
        let mut b = AlignedBuf::zeroed(len).unwrap();
        assert!(b.map.is_some());
        assert_eq!(b.as_slice().as_ptr() as usize % HUGE_PAGE, 0);
        assert!(b.as_slice().iter().all(|&v| v == 0.0));
        b.as_mut_slice()[len - 1] = 1.5;
        assert_eq!(b.as_slice()[len - 1], 1.5);
        let small = AlignedBuf::zeroed(HUGE_MIN_BYTES / 4 - 16).unwrap();
        assert!(small.map.is_none());
    }

    #[test]
    fn absurd_size_is_an_error_not_an_abort() {
        assert!(AlignedBuf::zeroed(usize::MAX / 2).is_err());
    }
}
