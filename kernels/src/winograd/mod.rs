//! 3×3 stride-1 convolution by Winograd's minimal filtering.
//!
//! STUB (to be replaced by F(4×4,3×3) / F(2×2,3×3)): weights kept HWIO and
//! computed by the scalar reference.

use crate::isa::Isa;
use crate::reference;
use crate::shape::{ConvShape, Epilogue};

/// Floats of packed weights for `cin → cout`.
pub fn packed_len(cin: usize, cout: usize) -> usize {
    crate::buffer::round_up_floats(9 * cin * cout)
}

/// Transforms HWIO 3×3 weights into `out` (`packed_len` floats).
pub fn pack(cin: usize, cout: usize, weights_hwio: &[f32], out: &mut [f32]) {
    out[..9 * cin * cout].copy_from_slice(weights_hwio);
}

/// Scratch floats [`conv3x3`] needs.
pub fn scratch_len(_shape: &ConvShape, _threads: usize) -> usize {
    0
}

/// 3×3, stride 1, pad 1 convolution with a fused epilogue.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(
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
