//! 1×1 convolution as GEMM: `C[pixels × cout] = A[pixels × cin] · B[cin × cout]`.
//!
//! STUB (to be replaced by the packed, register-blocked implementation): B is
//! stored row-major `[cin × cout]` and computed by the scalar reference.

use crate::isa::Isa;
use crate::reference;
use crate::shape::{ConvShape, Epilogue};

/// Floats of packed B for a `k × n` matrix.
pub fn packed_b_len(k: usize, n: usize) -> usize {
    crate::buffer::round_up_floats(k * n)
}

/// Packs row-major `b` (`k × n`) into `out` (`packed_b_len(k, n)` floats).
pub fn pack_b(k: usize, n: usize, b: &[f32], out: &mut [f32]) {
    out[..k * n].copy_from_slice(&b[..k * n]);
}

/// Scratch floats [`conv1x1`] needs.
pub fn conv1x1_scratch_len(_shape: &ConvShape, _threads: usize) -> usize {
    0
}

/// 1×1 convolution (any stride, no padding) with a fused epilogue.
#[allow(clippy::too_many_arguments)]
pub fn conv1x1(
    _isa: Isa,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &mut [f32],
    _scratch: &mut [f32],
    _threads: usize,
) {
    reference::conv2d(shape, input, &packed[..shape.weights_len()], ep, output);
}
