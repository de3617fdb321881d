//! Shapes and epilogues shared by every kernel family.

/// Geometry of a 2-D convolution over an NHWC batch.
///
/// Padding is given per side because Keras' `ZeroPadding2D` + `valid`
/// convolution and PyTorch's symmetric padding both reduce to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Zero rows added above the input.
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
    /// Zero rows added below the input.
    pub pad_bottom: usize,
    /// Zero columns added right of the input.
    pub pad_right: usize,
}

impl ConvShape {
    /// A square `k`×`k` convolution with equal stride and symmetric padding.
    #[allow(clippy::too_many_arguments)]
    pub fn square(
        batch: usize,
        in_h: usize,
        in_w: usize,
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        ConvShape {
            batch,
            in_h,
            in_w,
            in_c,
            out_c,
            kh: k,
            kw: k,
            stride_h: stride,
            stride_w: stride,
            pad_top: pad,
            pad_left: pad,
            pad_bottom: pad,
            pad_right: pad,
        }
    }

    /// Output height: `floor((in + pad_top + pad_bottom - kh) / stride) + 1`.
    /// Zero when the kernel does not fit (callers validate shapes first).
    pub fn out_h(&self) -> usize {
        out_dim(self.in_h, self.pad_top + self.pad_bottom, self.kh, self.stride_h)
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        out_dim(self.in_w, self.pad_left + self.pad_right, self.kw, self.stride_w)
    }

    /// Elements of the NHWC input.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Elements of the NHWC output.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h() * self.out_w() * self.out_c
    }

    /// Elements of the HWIO weight tensor.
    pub fn weights_len(&self) -> usize {
        self.kh * self.kw * self.in_c * self.out_c
    }

    /// Multiply-accumulates performed by the direct convolution.
    pub fn macs(&self) -> u64 {
        (self.batch * self.out_h() * self.out_w()) as u64 * (self.kh * self.kw * self.in_c * self.out_c) as u64
    }

    /// True when the shape is usable: non-zero sizes and strides, and a kernel
    /// that fits inside the padded input.
    pub fn is_valid(&self) -> bool {
        self.batch > 0
            && self.in_c > 0
            && self.out_c > 0
            && self.kh > 0
            && self.kw > 0
            && self.stride_h > 0
            && self.stride_w > 0
            && self.in_h + self.pad_top + self.pad_bottom >= self.kh
            && self.in_w + self.pad_left + self.pad_right >= self.kw
            && self.in_h > 0
            && self.in_w > 0
    }
}

/// Geometry of a 2-D max-pool over an NHWC batch (padding never wins the max).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels.
    pub c: usize,
    /// Window size (square).
    pub k: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Padding on every side.
    pub pad: usize,
}

impl PoolShape {
    /// Output height.
    pub fn out_h(&self) -> usize {
        out_dim(self.in_h, 2 * self.pad, self.k, self.stride)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        out_dim(self.in_w, 2 * self.pad, self.k, self.stride)
    }
    /// Elements of the NHWC input.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.c
    }
    /// Elements of the NHWC output.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h() * self.out_w() * self.c
    }
}

/// `floor((input + pad - k) / stride) + 1`, or 0 when the window does not fit.
pub fn out_dim(input: usize, pad: usize, k: usize, stride: usize) -> usize {
    if stride == 0 || input + pad < k {
        0
    } else {
        (input + pad - k) / stride + 1
    }
}

/// A residual read at a subset of its pixels (see [`Epilogue::residual_subsample`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subsample {
    /// Residual image height.
    pub h: usize,
    /// Residual image width.
    pub w: usize,
    /// Output pixel `(y, x)` adds residual pixel `(stride·y, stride·x)`.
    pub stride: usize,
}

/// What a kernel does to each value before it stores it:
/// `y = relu?(acc + bias[c] + residual[…])`.
///
/// The order (add the residual, then ReLU) is the ResNet bottleneck's
/// `Add` → `Activation('relu')`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// Per-output-channel bias (BatchNorm folded in), length `out_c`.
    pub bias: Option<&'a [f32]>,
    /// Tensor added element-wise before the activation: of the output's shape,
    /// or see [`Epilogue::residual_subsample`].
    pub residual: Option<&'a [f32]>,
    /// `None`: the residual has the output's shape. `Some(s)`: it is a
    /// `batch × s.h × s.w × out_c` image read at every `s.stride`-th pixel
    /// in each direction. A ResNet v1 block whose only consumers are stride-2
    /// 1×1 convolutions is computed at those pixels only, and adds its
    /// full-resolution shortcut in place this way (no gather pass).
    pub residual_subsample: Option<Subsample>,
    /// The residual is the output's own current contents (`residual` and
    /// `residual_subsample` are `None`): `output = relu?(acc + bias + output)`.
    ///
    /// A bottleneck block's last 1×1 convolution writes over its shortcut in
    /// place: the network needs one buffer fewer, and each output cache line
    /// is filled once (the residual read) instead of twice (the residual read
    /// plus the output store's read-for-ownership). GEMM and direct algorithms
    /// only (see [`crate::ConvAlgo::adds_residual_in_output`]).
    pub residual_in_output: bool,
    /// Apply `max(0, y)` last.
    pub relu: bool,
}

impl<'a> Epilogue<'a> {
    /// Bias, then optional ReLU.
    pub fn bias_relu(bias: &'a [f32], relu: bool) -> Self {
        Epilogue { bias: Some(bias), relu, ..Default::default() }
    }

    /// Offset in the residual of channel 0 at output pixel `(n, oy, ox)` of `shape`.
    #[inline(always)]
    pub fn residual_offset(&self, shape: &ConvShape, n: usize, oy: usize, ox: usize) -> usize {
        let pixel = match self.residual_subsample {
            None => (n * shape.out_h() + oy) * shape.out_w() + ox,
            Some(s) => (n * s.h + oy * s.stride) * s.w + ox * s.stride,
        };
        pixel * shape.out_c
    }

    /// Checks the bias and residual lengths (and the subsample's geometry)
    /// against `shape`; `what` names the caller in the panic message.
    ///
    /// # Panics
    /// If a length or the subsample does not fit the shape.
    pub fn check(&self, shape: &ConvShape, what: &str) {
        if let Some(b) = self.bias {
            assert_eq!(b.len(), shape.out_c, "{what}: bias length");
        }
        let want = match self.residual_subsample {
            None => shape.output_len(),
            Some(s) => {
                let (oh, ow) = (shape.out_h(), shape.out_w());
                assert!(
                    s.stride >= 1 && (oh == 0 || s.stride * (oh - 1) < s.h) && (ow == 0 || s.stride * (ow - 1) < s.w),
                    "{what}: residual subsample {s:?} does not cover a {oh}x{ow} output"
                );
                shape.batch * s.h * s.w * shape.out_c
            }
        };
        if let Some(r) = self.residual {
            assert_eq!(r.len(), want, "{what}: residual length");
        }
        assert!(
            !self.residual_in_output || (self.residual.is_none() && self.residual_subsample.is_none()),
            "{what}: a residual in the output excludes a separate or subsampled residual"
        );
    }

    /// Applies the epilogue to one accumulated value of channel `c` whose
    /// residual is at index `ri` (see [`Epilogue::residual_offset`]). The
    /// reference every fused store must match.
    #[inline(always)]
    pub fn apply(&self, acc: f32, ri: usize, c: usize) -> f32 {
        self.finish(acc, self.residual.map(|r| r[ri]), c)
    }

    /// [`Epilogue::apply`] with the residual value given (`None`: no residual):
    /// `relu?(acc + bias[c] + residual)`, in that order.
    #[inline(always)]
    pub fn finish(&self, acc: f32, residual: Option<f32>, c: usize) -> f32 {
        let mut y = acc;
        if let Some(b) = self.bias {
            y += b[c];
        }
        if let Some(r) = residual {
            y += r;
        }
        if self.relu {
            y = y.max(0.0);
        }
        y
    }
}
