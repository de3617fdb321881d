//! Prepare: fold BatchNorm into each convolution, choose its kernel, and pack
//! every weight into one 64-byte-aligned store in the kernels' layout.

use std::ops::Range;

use resnet50_kernels::buffer::round_up_floats;
use resnet50_kernels::{AlignedBuf, ConvAlgo, ConvKernel, ConvParams};

use crate::arch::{conv_specs, ConvSpec};
use crate::error::{Error, Result};
use crate::weights::{fold_batch_norm, CanonicalWeights};

/// Weights ready for the kernels: one aligned store, and where each layer's
/// packed tensor lives in it.
#[derive(Debug)]
pub struct PreparedWeights {
    store: AlignedBuf,
    /// Kernel and packed range of each of the 53 convolutions.
    pub convs: Vec<(ConvKernel, Range<usize>)>,
    /// Classifier: `[2048, classes]` kernel range, bias range, classes.
    pub fc: Option<(Range<usize>, Range<usize>, usize)>,
}

/// Which kernels to pack for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// The scalar direct reference for every convolution.
    Reference,
    /// The fastest algorithm for each convolution.
    Fast,
}

/// Parameters of a convolution layer for the kernels.
pub fn conv_params(s: &ConvSpec) -> ConvParams {
    ConvParams { kh: s.k, kw: s.k, cin: s.cin, cout: s.cout, stride: s.stride, pad: [s.pad; 4] }
}

impl PreparedWeights {
    /// Folds BN with `eps`, packs each convolution for `choice`, and copies
    /// the classifier (if `with_top`).
    pub fn new(w: &CanonicalWeights, eps: f32, choice: KernelChoice, with_top: bool) -> Result<Self> {
        w.validate()?;
        let specs = conv_specs(w.variant);
        let kernels: Vec<ConvKernel> = specs
            .iter()
            .map(|s| {
                let p = conv_params(s);
                let algo = match choice {
                    KernelChoice::Reference => ConvAlgo::Direct,
                    KernelChoice::Fast => p.best_algo(),
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
        for ((spec, cw), (k, range)) in specs.iter().zip(&w.convs).zip(&convs) {
            let (kernel, bias) = fold_batch_norm(spec, cw, eps);
            if let Some(i) = kernel.iter().chain(&bias).position(|v| !v.is_finite()) {
                return Err(Error::Weights(format!(
                    "{}: folding BatchNorm gives a non-finite value at index {i} (variance + epsilon too small?)",
                    spec.name
                )));
            }
            k.pack(&kernel, &bias, &mut data[range.clone()]);
        }
        if let (Some(fc), Some((kr, br, _))) = (fc_w, &fc) {
            data[kr.clone()].copy_from_slice(&fc.kernel);
            data[br.clone()].copy_from_slice(&fc.bias);
        }
        Ok(PreparedWeights { store, convs, fc })
    }

    /// The whole store.
    pub fn data(&self) -> &[f32] {
        self.store.as_slice()
    }

    /// Packed weights of convolution `i`.
    pub fn conv(&self, i: usize) -> (&ConvKernel, &[f32]) {
        let (k, r) = &self.convs[i];
        (k, &self.store.as_slice()[r.clone()])
    }

    /// The kernels chosen, in canonical order.
    pub fn kernels(&self) -> Vec<ConvKernel> {
        self.convs.iter().map(|(k, _)| *k).collect()
    }

    /// Bytes of packed weights.
    pub fn bytes(&self) -> usize {
        self.store.len() * 4
    }
}
