//! A 64-byte-aligned, zero-initialised `f32` buffer: the arena's backing store
//! and the home of packed weights.
//!
//! 64 bytes is a cache line and an AVX-512 register, so every tensor placed at
//! a multiple of 16 floats inside it is aligned for every ISA we target.

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

/// Owned, zero-initialised, 64-byte-aligned storage of `len` floats.
pub struct AlignedBuf {
    ptr: NonNull<f32>,
    len: usize,
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
            return Ok(AlignedBuf { ptr: NonNull::dangling(), len: 0 });
        }
        let layout = Layout::from_size_align(bytes, ALIGN).map_err(|_| AllocError { bytes })?;
        // SAFETY: layout has non-zero size (len > 0) and a valid power-of-two alignment.
        let raw = unsafe { alloc::alloc_zeroed(layout) } as *mut f32;
        let ptr = NonNull::new(raw).ok_or(AllocError { bytes })?;
        Ok(AlignedBuf { ptr, len })
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
        if self.len > 0 {
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
    fn absurd_size_is_an_error_not_an_abort() {
        assert!(AlignedBuf::zeroed(usize::MAX / 2).is_err());
    }
}
