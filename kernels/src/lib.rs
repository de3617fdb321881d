//! NHWC f32 kernels for ResNet-style convolutional networks.
//!
//! This crate knows nothing about ResNet50 itself: it provides convolution,
//! GEMM, Winograd, pooling and classifier kernels over NHWC `f32` tensors, each
//! with a plain scalar reference ([`reference`](mod@reference)) that every fast path is tested
//! against.
//!
//! Layout conventions used throughout:
//! - activations are NHWC, row-major (`n`, then `h`, then `w`, then `c`);
//! - convolution weights, before packing, are HWIO (`kh`, `kw`, `cin`, `cout`),
//!   the layout Keras stores;
//! - every epilogue ([`Epilogue`]) is applied in the store of the kernel that
//!   produces a value: `y = act(conv + bias + residual)`.
#![warn(missing_docs)]

pub mod alloc_count;
pub mod buffer;
pub mod conv;
pub mod gemm;
pub mod isa;
pub mod mapped;
pub mod par;
pub mod pool;
pub mod reference;
pub mod shape;
pub mod winograd;

pub use buffer::AlignedBuf;
pub use conv::{ConvAlgo, ConvKernel, ConvParams};
pub use isa::Isa;
pub use shape::{ConvShape, Epilogue, PoolShape, Subsample};
pub use winograd::WinogradTile;
