//! AVX2 vector loops for pooling and the classifier.

use std::arch::x86_64::*;

/// `acc[i] = max(acc[i], x[i])`. Caller guarantees AVX2 (dispatch checks `Isa::is_supported`).
pub(super) fn max_into(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len());
    // SAFETY: dispatch only reaches here when AVX2 is supported; lengths are equal.
    unsafe { max_into_avx2(acc, x) }
}

#[target_feature(enable = "avx2")]
unsafe fn max_into_avx2(acc: &mut [f32], x: &[f32]) {
    let n = acc.len() / 8 * 8;
    let (a, b) = (acc.as_mut_ptr(), x.as_ptr());
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices; unaligned loads/stores.
        unsafe {
            let v = _mm256_max_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)));
            _mm256_storeu_ps(a.add(i), v);
        }
    }
    for i in n..acc.len() {
        acc[i] = acc[i].max(x[i]);
    }
}

/// `acc[i] += x[i]`.
pub(super) fn add_into(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len());
    // SAFETY: dispatch only reaches here when AVX2 is supported; lengths are equal.
    unsafe { add_into_avx2(acc, x) }
}

#[target_feature(enable = "avx2")]
unsafe fn add_into_avx2(acc: &mut [f32], x: &[f32]) {
    let n = acc.len() / 8 * 8;
    let (a, b) = (acc.as_mut_ptr(), x.as_ptr());
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices; unaligned loads/stores.
        unsafe {
            let v = _mm256_add_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)));
            _mm256_storeu_ps(a.add(i), v);
        }
    }
    for i in n..acc.len() {
        acc[i] += x[i];
    }
}

/// `acc[i] += a·x[i]`, multiply then add (not fused) to match the reference bit for bit.
pub(super) fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(acc.len(), x.len());
    // SAFETY: dispatch only reaches here when AVX2 is supported; lengths are equal.
    unsafe { axpy_avx2(acc, a, x) }
}

#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(acc: &mut [f32], a: f32, x: &[f32]) {
    let n = acc.len() / 8 * 8;
    let (o, w) = (acc.as_mut_ptr(), x.as_ptr());
    let va = _mm256_set1_ps(a);
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices; unaligned loads/stores.
        unsafe {
            let v = _mm256_add_ps(_mm256_loadu_ps(o.add(i)), _mm256_mul_ps(va, _mm256_loadu_ps(w.add(i))));
            _mm256_storeu_ps(o.add(i), v);
        }
    }
    for i in n..acc.len() {
        acc[i] += a * x[i];
    }
}
