//! ResNet50 inference on CPUs with hand-written SIMD kernels.
//!
//! The crate reads top-down: [`config`] (Keras' `ResNet50(...)` arguments) →
//! [`arch`] (the 53 convolutions) → [`weights`] / [`init`] (canonical weights)
//! → [`prepare`] (BatchNorm folding, packing) → [`plan`] (static plan, arena
//! layout) → executor → [`model`] (the API). Kernels live in the
//! `resnet50-kernels` crate.
//!
//! ```
//! use resnet50::{ResNet50, Variant};
//! let model = ResNet50::new().variant(Variant::V1).input_shape(32, 32, 3).classes(10).build()?;
//! let mut session = model.session()?;
//! let probs = session.predict(&vec![0.5; 32 * 32 * 3])?;
//! assert_eq!(probs.len(), 10);
//! # Ok::<(), resnet50::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod arch;
#[cfg(feature = "ndarray")]
pub mod array;
pub mod config;
pub mod error;
mod executor;
pub mod imagenet;
pub mod init;
pub mod loaders;
pub mod model;
pub mod npy;
pub mod plan;
pub mod prepare;
pub mod preprocess;
pub mod summary;
pub mod weights;

pub use config::{ClassifierActivation, Config, Pooling, Variant, WeightsSource};
pub use error::{Error, Result};
pub use model::{Features, Model, ResNet50, Session, StepTime};
pub use resnet50_kernels::Isa;
pub use weights::CanonicalWeights;

#[cfg(feature = "ndarray")]
pub use array::FeatureArrays;
/// The [`ndarray`](https://docs.rs/ndarray) crate this one was built with
/// (feature `ndarray`), so callers can name the same version.
#[cfg(feature = "ndarray")]
pub use ndarray;
