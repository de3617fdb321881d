//! Prepare: fold BatchNorm into each convolution, choose its kernel, and pack
//! every weight into one 64-byte-aligned store in the kernels' layout.
//!
//! The store is either an aligned heap buffer ([`PreparedWeights::new`]) or
//! the data region of a memory-mapped native weights file
//! ([`PreparedWeights::from_mapped`], used in place, zero copy).

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use resnet50_kernels::buffer::{round_up_floats, ALIGN};
use resnet50_kernels::mapped::Mmap;
use resnet50_kernels::{AlignedBuf, ConvAlgo, ConvKernel, ConvParams};

use crate::arch::{conv_input_sizes, conv_specs, conv_strides, ConvSpec};
use crate::error::{Error, Result};
use crate::weights::{first_non_finite, fold_batch_norm, CanonicalWeights, ConvWeights};

/// Weights ready for the kernels: one aligned store, and where each layer's
/// packed tensor lives in it.
///
/// ```
/// use resnet50::prepare::{KernelChoice, PreparedWeights};
/// use resnet50::{init, Variant};
/// let p = PreparedWeights::new(&init::deterministic(Variant::V1, Some(10)), 1e-5, KernelChoice::Reference, true)?;
/// assert_eq!(p.convs.len(), 53);
/// let (kernel, bias, classes) = p.fc.clone().unwrap();
/// assert_eq!((kernel.len(), bias.len(), classes), (2048 * 10, 10, 10));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Debug)]
pub struct PreparedWeights {
    store: Store,
    /// Kernel and packed range of each of the 53 convolutions.
    pub convs: Vec<(ConvKernel, Range<usize>)>,
    /// Classifier: `[2048, classes]` kernel range, bias range, classes.
    pub fc: Option<(Range<usize>, Range<usize>, usize)>,
}

/// Where the packed floats live.
enum Store {
    /// Our own 64-byte-aligned allocation.
    Heap(AlignedBuf),
    /// `floats` floats at byte offset `start` of a read-only file mapping.
    Mapped { map: Arc<Mmap>, start: usize, floats: usize },
}

impl Store {
    fn as_slice(&self) -> &[f32] {
        match self {
            Store::Heap(b) => b.as_slice(),
            // Alignment and length were checked when the store was created;
            // the mapping is immutable, so the cast cannot fail afterwards.
            Store::Mapped { map, start, floats } => bytemuck::cast_slice(&map[*start..*start + *floats * 4]),
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Heap(b) => write!(f, "Heap({b:?})"),
            Store::Mapped { map, start, floats } => {
                write!(f, "Mapped({floats} floats at byte {start} of a {}-byte mapping)", map.len())
            }
        }
    }
}

/// Which kernels to pack for.
///
/// ```
/// use resnet50::prepare::{conv_params, KernelChoice, PreparedWeights};
/// use resnet50::{arch::conv_specs, init, Variant};
/// use resnet50_kernels::ConvAlgo;
/// let w = init::deterministic(Variant::V1, None);
/// let fast = KernelChoice::FastFor {
///     batch: 1, height: 64, width: 64, early_stride: true, portable: true, full_width_avx512: false,
/// };
/// for choice in [KernelChoice::Reference, KernelChoice::Fast, fast] {
///     let p = PreparedWeights::new(&w, 1e-5, choice, false)?;
///     // These choices keep each layer's parameters; only the algorithm differs.
///     assert!(p.kernels().iter().zip(conv_specs(Variant::V1)).all(|(k, s)| k.params == conv_params(&s)));
///     let direct = p.kernels().iter().all(|k| k.algo == ConvAlgo::Direct);
///     assert!(direct || choice != KernelChoice::Reference);
/// }
/// // Not portable: v1's early-stride 3×3 layers that get a stride-2 Winograd
/// // tile are packed as stride-2 kernels (the plan must apply the early stride).
/// let only = KernelChoice::FastFor {
///     batch: 1, height: 224, width: 224, early_stride: true, portable: false, full_width_avx512: false,
/// };
/// let p = PreparedWeights::new(&w, 1e-5, only, false)?;
/// let strided = p.kernels().into_iter().zip(conv_specs(Variant::V1)).filter(|(k, s)| k.params.stride != s.stride);
/// assert!(strided.count() >= 1);
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// The scalar direct reference for every convolution.
    Reference,
    /// The fastest algorithm for each convolution, whatever the input size:
    /// Winograd for every 3×3 stride-1 layer.
    Fast,
    /// The fastest algorithm for each convolution at this input size and batch
    /// ([`ConvParams::best_algo_for_cpu`]); another size still runs, maybe slower.
    FastFor {
        /// Images per call.
        batch: usize,
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
        /// Pack for v1's early stride ([`crate::plan::Plan::new`]; the plan
        /// applies it whenever the model keeps no feature maps).
        early_stride: bool,
        /// With `early_stride`: pick for the 3×3 layers it strides only
        /// algorithms that also run at the layer's own stride 1 (implicit
        /// GEMM), so that a plan with feature maps (no early stride) runs the
        /// same weights — what a native file needs. Without it those layers
        /// may get a stride-2 Winograd tile, packed as stride-2 kernels that
        /// only a plan with the early stride accepts.
        portable: bool,
        /// Pick for AVX-512 kernels on a CPU with two full-width 512-bit FMA
        /// pipes ([`resnet50_kernels::gemm::peak::avx512_full_width`]): see
        /// [`ConvParams::best_algo_for_cpu`]. False for any other CPU or ISA,
        /// and for weights meant for any machine (a native file).
        full_width_avx512: bool,
    },
}

/// Parameters of a convolution layer for the kernels.
///
/// ```
/// use resnet50::{arch::conv_specs, prepare::conv_params, Variant};
/// let p = conv_params(&conv_specs(Variant::V1)[0]);
/// assert_eq!((p.kh, p.kw, p.cin, p.cout, p.stride, p.pad), (7, 7, 3, 64, 2, [3; 4]));
/// ```
pub fn conv_params(s: &ConvSpec) -> ConvParams {
    ConvParams { kh: s.k, kw: s.k, cin: s.cin, cout: s.cout, stride: s.stride, pad: [s.pad; 4] }
}

/// Folds BatchNorm into one layer and packs it into `out` for kernel `k`.
fn pack_layer(spec: &ConvSpec, cw: &ConvWeights, k: &ConvKernel, eps: f32, out: &mut [f32]) -> Result<()> {
    let (kernel, bias) = fold_batch_norm(spec, cw, eps);
    let bad = first_non_finite(&kernel).or_else(|| first_non_finite(&bias).map(|i| kernel.len() + i));
    if let Some(i) = bad {
        return Err(Error::Weights(format!(
            "{}: folding BatchNorm gives a non-finite value at index {i} (variance + epsilon too small?)",
            spec.name
        )));
    }
    k.pack(&kernel, &bias, out);
    Ok(())
}

impl PreparedWeights {
    /// Folds BN with `eps`, packs each convolution for `choice`, and copies
    /// the classifier (if `with_top`). Called inside a rayon thread pool (as
    /// a model with two threads or more does), it packs the layers in
    /// parallel on that pool; outside one, in order on the calling thread.
    /// The result is the same bit for bit.
    ///
    /// ```
    /// use resnet50::prepare::{KernelChoice, PreparedWeights};
    /// use resnet50::{init, Variant};
    /// let w = init::deterministic(Variant::V1_5, Some(10));
    /// let with_top = PreparedWeights::new(&w, 1e-5, KernelChoice::Reference, true)?;
    /// let no_top = PreparedWeights::new(&w, 1e-5, KernelChoice::Reference, false)?;
    /// assert!(with_top.fc.is_some() && no_top.fc.is_none());
    /// assert!(with_top.bytes() > no_top.bytes());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn new(w: &CanonicalWeights, eps: f32, choice: KernelChoice, with_top: bool) -> Result<Self> {
        w.validate()?;
        let specs = conv_specs(w.variant);
        let sizes = match choice {
            KernelChoice::FastFor { height, width, early_stride, .. } => {
                conv_input_sizes(w.variant, height, width, early_stride)
            }
            _ => Vec::new(),
        };
        let strides = match choice {
            KernelChoice::FastFor { early_stride, .. } => conv_strides(w.variant, early_stride),
            _ => Vec::new(),
        };
        let kernels: Vec<ConvKernel> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let p = conv_params(s);
                let (p, algo) = match choice {
                    KernelChoice::Reference => (p, ConvAlgo::Direct),
                    KernelChoice::Fast => (p, p.best_algo()),
                    KernelChoice::FastFor { batch, portable, full_width_avx512, .. } => {
                        let q = ConvParams { stride: strides[i], ..p };
                        let algo = q.best_algo_for_cpu(batch, sizes[i][0], sizes[i][1], full_width_avx512);
                        // A layer the plan runs at another stride than its own
                        // (v1's early stride), with an algorithm that runs
                        // only at that stride (a strided Winograd tile): a
                        // kernel of that stride, unless portable.
                        if p.supports(algo) {
                            (p, algo)
                        } else if portable {
                            (p, ConvAlgo::ImplicitGemm)
                        } else {
                            (q, algo)
                        }
                    }
                };
                ConvKernel::new(p, algo).expect("best_algo supports its params")
            })
            .collect();
        let mut total = 0;
        let mut convs = Vec::with_capacity(specs.len());
        for k in &kernels {
            let len = round_up_floats(k.packed_len());
            convs.push((*k, total..total + k.packed_len()));
            total += len;
        }
        let fc_w = if with_top { w.fc.as_ref() } else { None };
        let fc = fc_w.map(|fc| {
            let kr = total..total + fc.kernel.len();
            total += round_up_floats(fc.kernel.len());
            let br = total..total + fc.bias.len();
            total += round_up_floats(fc.bias.len());
            (kr, br, fc.classes)
        });
        let mut store = AlignedBuf::zeroed(total).map_err(|e| Error::Alloc(format!("weights: {e}")))?;
        let data = store.as_mut_slice();
        // Each layer's own part of the store (the ranges are in order and disjoint).
        let mut parts = Vec::with_capacity(convs.len());
        let mut rest = &mut data[..];
        let mut at = 0;
        for (_, range) in &convs {
            let (part, tail) = std::mem::take(&mut rest)[range.start - at..].split_at_mut(range.len());
            parts.push(part);
            (rest, at) = (tail, range.end);
        }
        let layers: Vec<(&ConvSpec, &ConvWeights, &ConvKernel, &mut [f32])> =
            specs.iter().zip(&w.convs).zip(&convs).zip(parts).map(|(((s, cw), (k, _)), out)| (s, cw, k, out)).collect();
        let pack = |(spec, cw, k, out)| pack_layer(spec, cw, k, eps, out);
        // Inside a thread pool (a model's, see `Model::new`) the layers are
        // packed in parallel; elsewhere in order on this thread. Either way the
        // first failing layer in network order is the one reported.
        // (In order, the first error stops the packing of the later layers.)
        if rayon::current_thread_index().is_some() {
            let packed: Vec<Result<()>> = layers.into_par_iter().map(pack).collect();
            packed.into_iter().collect::<Result<()>>()?;
        } else {
            layers.into_iter().try_for_each(pack)?;
        }
        if let (Some(fc), Some((kr, br, _))) = (fc_w, &fc) {
            data[kr.clone()].copy_from_slice(&fc.kernel);
            data[br.clone()].copy_from_slice(&fc.bias);
        }
        Ok(PreparedWeights { store: Store::Heap(store), convs, fc })
    }

    /// Uses `floats` floats at byte offset `start` of `map` as the store, in
    /// place. `convs` and `fc` index into that region (in floats). The region
    /// must be 64-byte aligned in memory and every range must lie inside it
    /// with the length its kernel expects; anything else is an error (the
    /// native loader validates the file first, this is the last guard).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use resnet50::{arch::conv_specs, prepare::{conv_params, PreparedWeights}, Variant};
    /// use resnet50_kernels::{ConvAlgo, ConvKernel};
    /// let k = ConvKernel::new(conv_params(&conv_specs(Variant::V1)[0]), ConvAlgo::Direct).unwrap();
    /// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.bin", line!(), std::process::id()));
    /// std::fs::write(&path, vec![0u8; 4 * k.packed_len()]).unwrap();
    /// let map = Arc::new(resnet50_kernels::mapped::map_file(&std::fs::File::open(&path).unwrap()).unwrap());
    /// let n = k.packed_len();
    /// let p = PreparedWeights::from_mapped(map.clone(), 0, n, vec![(k, 0..n)], None)?;
    /// assert!(p.mapped_range().is_some() && p.conv(0).1.iter().all(|&v| v == 0.0));
    /// assert!(PreparedWeights::from_mapped(map, 0, n, vec![(k, 0..n - 1)], None).is_err()); // wrong length
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn from_mapped(
        map: Arc<Mmap>,
        start: usize,
        floats: usize,
        convs: Vec<(ConvKernel, Range<usize>)>,
        fc: Option<(Range<usize>, Range<usize>, usize)>,
    ) -> Result<Self> {
        let bad = |m: String| Err(Error::Weights(format!("mapped weights: {m}")));
        let end = floats.checked_mul(4).and_then(|b| b.checked_add(start));
        match end {
            Some(end) if end <= map.len() => {}
            _ => {
                return bad(format!(
                    "region of {floats} floats at byte {start} exceeds the {} mapped bytes",
                    map.len()
                ));
            }
        }
        if !(map.as_ptr() as usize + start).is_multiple_of(ALIGN) {
            return bad(format!("region at byte {start} is not {ALIGN}-byte aligned in memory"));
        }
        for (i, (k, r)) in convs.iter().enumerate() {
            if r.start > r.end || r.end > floats || r.len() != k.packed_len() {
                return bad(format!(
                    "convolution {i}: range {r:?} does not hold {} floats inside {floats}",
                    k.packed_len()
                ));
            }
        }
        if let Some((kr, br, classes)) = &fc {
            if kr.start > kr.end || kr.end > floats || br.start > br.end || br.end > floats {
                return bad(format!("classifier ranges {kr:?}, {br:?} exceed {floats} floats"));
            }
            if kr.len() != crate::arch::FEATURES * classes || br.len() != *classes {
                return bad(format!("classifier ranges {kr:?}, {br:?} do not fit {classes} classes"));
            }
        }
        Ok(PreparedWeights { store: Store::Mapped { map, start, floats }, convs, fc })
    }

    /// The address range of the file mapping the weights are read from, or
    /// `None` when they live on the heap.
    ///
    /// ```
    /// use resnet50::{init, loaders::native, Variant};
    /// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.rn50w", line!(), std::process::id()));
    /// native::write(&init::deterministic(Variant::V1, None), 1e-5, &path)?;
    /// let mapped = native::open(&path)?.weights;
    /// assert_eq!(mapped.mapped_range().unwrap().len() as u64, std::fs::metadata(&path).unwrap().len());
    /// # std::fs::remove_file(&path).ok();
    /// let heap = resnet50::prepare::PreparedWeights::new(&init::deterministic(Variant::V1, None), 1e-5,
    ///     resnet50::prepare::KernelChoice::Reference, false)?;
    /// assert!(heap.mapped_range().is_none());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn mapped_range(&self) -> Option<Range<usize>> {
        match &self.store {
            Store::Heap(_) => None,
            Store::Mapped { map, .. } => Some(map.as_ptr() as usize..map.as_ptr() as usize + map.len()),
        }
    }

    /// The whole store.
    ///
    /// ```
    /// use resnet50::prepare::{KernelChoice, PreparedWeights};
    /// use resnet50::{init, Variant};
    /// let p = PreparedWeights::new(&init::deterministic(Variant::V1, None), 1e-5, KernelChoice::Reference, false)?;
    /// assert_eq!(p.data().len() * 4, p.bytes());
    /// assert_eq!(p.data()[p.convs[5].1.clone()], *p.conv(5).1);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn data(&self) -> &[f32] {
        self.store.as_slice()
    }

    /// Packed weights of convolution `i`.
    ///
    /// ```
    /// use resnet50::prepare::{KernelChoice, PreparedWeights};
    /// use resnet50::{init, Variant};
    /// let p = PreparedWeights::new(&init::deterministic(Variant::V1, None), 1e-5, KernelChoice::Reference, false)?;
    /// let (k, packed) = p.conv(0);
    /// assert_eq!((k.params.kh, k.params.cout, packed.len()), (7, 64, k.packed_len()));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn conv(&self, i: usize) -> (&ConvKernel, &[f32]) {
        let (k, r) = &self.convs[i];
        (k, &self.store.as_slice()[r.clone()])
    }

    /// The kernels chosen, in canonical order.
    ///
    /// ```
    /// use resnet50::prepare::{KernelChoice, PreparedWeights};
    /// use resnet50::{init, Variant};
    /// let p = PreparedWeights::new(&init::deterministic(Variant::V1, None), 1e-5, KernelChoice::Reference, false)?;
    /// let kernels = p.kernels();
    /// assert_eq!(kernels.len(), 53);
    /// assert!(kernels.iter().all(|k| k.algo == resnet50_kernels::ConvAlgo::Direct));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn kernels(&self) -> Vec<ConvKernel> {
        self.convs.iter().map(|(k, _)| *k).collect()
    }

    /// Bytes of packed weights.
    ///
    /// ```
    /// use resnet50::prepare::{KernelChoice, PreparedWeights};
    /// use resnet50::{arch::conv_specs, init, Variant};
    /// let p = PreparedWeights::new(&init::deterministic(Variant::V1, None), 1e-5, KernelChoice::Reference, false)?;
    /// // Kernels plus folded biases.
    /// let weights: usize = conv_specs(Variant::V1).iter().map(|s| s.kernel_len() + s.cout).sum();
    /// assert!(p.bytes() >= 4 * weights);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn bytes(&self) -> usize {
        self.store.as_slice().len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Variant;
    use crate::init;

    /// Inside a thread pool the layers are packed in parallel: the same store,
    /// bit for bit, and the same error (the first bad layer in network order).
    #[test]
    fn packing_in_a_pool_gives_the_same_store_and_error() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let choice = KernelChoice::FastFor {
            batch: 1,
            height: 64,
            width: 64,
            early_stride: true,
            portable: false,
            full_width_avx512: false,
        };
        for variant in [Variant::V1, Variant::V1_5] {
            let mut w = init::deterministic(variant, Some(10));
            let alone = PreparedWeights::new(&w, 1e-5, choice, true).unwrap();
            let in_pool = pool.install(|| PreparedWeights::new(&w, 1e-5, choice, true)).unwrap();
            assert!(alone.data().iter().zip(in_pool.data()).all(|(a, b)| a.to_bits() == b.to_bits()), "{variant:?}");
            assert_eq!(alone.kernels(), in_pool.kernels());
            // A zero variance in two layers with ε = 0: folding divides by
            // zero there (validation allows it); layer 7 is reported.
            for i in [30, 7] {
                w.convs[i].bn.var[0] = 0.0;
            }
            let want = PreparedWeights::new(&w, 0.0, choice, true).unwrap_err().to_string();
            let got = pool.install(|| PreparedWeights::new(&w, 0.0, choice, true)).unwrap_err().to_string();
            assert!(want.contains(&conv_specs(variant)[7].name) && want.contains("folding BatchNorm"), "{want}");
            assert_eq!(got, want);
        }
    }
}
