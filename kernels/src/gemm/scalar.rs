//! Portable microkernel (4×16): the fallback on every CPU and the twin the
//! SIMD kernels are read against. Accumulates with `acc += a * b` (no fused
//! multiply-add), like [`crate::reference::conv2d`].

use super::loops::{Microkernel, Tile};

/// Scalar 4×16 microkernel.
pub(crate) struct Scalar;

const NR: usize = 16;

impl Microkernel for Scalar {
    const MR: usize = 4;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 128;
    const NC: usize = 1024;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded contract of `Microkernel::tile` (mr checked here).
        unsafe {
            match t.mr {
                4 => kernel::<4>(t),
                3 => kernel::<3>(t),
                2 => kernel::<2>(t),
                1 => kernel::<1>(t),
                _ => unreachable!("scalar microkernel: mr {} out of 1..=4", t.mr),
            }
        }
    }
}

/// # Safety
/// As [`Microkernel::tile`], with `t.mr == MR`.
unsafe fn kernel<const MR: usize>(t: &Tile) {
    let nr = t.nr;
    let mut acc = [[0.0f32; NR]; MR];
    if t.accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: C row r has nr valid columns at c + r·ldc.
            let c = unsafe { std::slice::from_raw_parts(t.c.add(r * t.ldc), nr) };
            row[..nr].copy_from_slice(c);
        }
    }
    let a: [&[f32]; MR] = std::array::from_fn(|r| {
        // SAFETY: row r of A holds kc floats at a[r].
        unsafe { std::slice::from_raw_parts(t.a[r], t.kc) }
    });
    // SAFETY: the B micro-panel holds kc rows of 16 floats at b.
    let b = unsafe { std::slice::from_raw_parts(t.b, t.kc * NR) };
    for (k, bk) in b.chunks_exact(NR).enumerate() {
        for (row, ar) in acc.iter_mut().zip(&a) {
            let av = ar[k];
            for (c, &bv) in row.iter_mut().zip(bk) {
                *c += av * bv;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // Raw stores, no `&mut` slice over C: the residual may be C itself
        // (Epilogue::residual_in_output), read element by element just before
        // it is overwritten.
        let c = t.c.wrapping_add(r * t.ldc);
        for (j, &v) in row[..nr].iter().enumerate() {
            let mut y = v;
            if t.last {
                if !t.bias.is_null() {
                    // SAFETY: the bias has nr valid floats at t.bias.
                    y += unsafe { *t.bias.add(j) };
                }
                if !t.res[r].is_null() {
                    // SAFETY: residual row r has nr valid floats at res[r].
                    y += unsafe { *t.res[r].add(j) };
                }
                if t.relu {
                    y = y.max(0.0);
                }
            }
            // SAFETY: this task owns C row r, nr columns at c + r·ldc.
            unsafe { *c.add(j) = y };
        }
    }
}
