//! ResNet50 inference on CPUs with hand-written SIMD kernels: Keras's
//! `tf.keras.applications.ResNet50` (v1) and torchvision's `resnet50` (v1.5),
//! NHWC f32.
//!
//! # Architecture
//!
//! A [`ResNet50`] builder takes Keras's arguments ([`config::Config`]) and
//! builds a [`Model`]: the weights — seeded random ([`init`]), a Keras HDF5,
//! safetensors or PyTorch file, or the native memory-mapped file
//! ([`loaders`]) — become
//! [`CanonicalWeights`] ([`weights`]: the 53 convolutions of [`arch`] in a
//! fixed order, with their BatchNorm), which [`prepare`] folds and packs for
//! the kernel each layer uses; [`plan`] lays out a static list of steps for
//! one (input size, batch) and places every activation in one arena by
//! liveness. A `Model` is immutable and cheap to clone (an `Arc` inside): share
//! it between threads. Each thread opens a [`Session`], which allocates its
//! arena once; [`Session::predict`] then runs the plan with no heap
//! allocation. The kernels (GEMM, Winograd, pools, classifier; scalar, AVX2,
//! AVX-512, NEON, chosen at run time per [`Isa`]) are in the
//! `resnet50-kernels` crate. Around the model: [`preprocess`] (Keras's and
//! torchvision's image preprocessing), [`imagenet`] (class names,
//! `decode_predictions`), [`npy`] (`.npy` tensors), [`summary`] (Keras's
//! `model.summary()`), and every failure is an [`Error`] naming the offending
//! value ([`error`]). Limits: [`config::MAX_SIDE`], [`config::MAX_BATCH`] and
//! [`ResNet50::memory_limit`] refuse absurd requests before allocating.
//!
//! # Use
//!
//! ```
//! use resnet50::{ResNet50, Variant};
//! let model = ResNet50::new().variant(Variant::V1).input_shape(32, 32, 3).classes(10).build()?;
//! let mut session = model.session()?;
//! let probs = session.predict(&vec![0.5; 32 * 32 * 3])?;
//! assert_eq!(probs.len(), 10);
//! # Ok::<(), resnet50::Error>(())
//! ```
//!
//! Threads: one `Model`, one [`Session`] per thread; [`ResNet50::threads`]
//! sets the threads *inside* each layer: the calling thread and `threads − 1`
//! helper threads owned by the model, which spin between layers during a
//! predict and park between predicts (see [`resnet50_kernels::par::Helpers`]).
//! While other busy processes keep
//! those threads waiting for each other, a session falls back to one thread
//! and tries its threads again now and then ([`ResNet50::adaptive_threads`]);
//! outputs are bit-identical at any thread count.
//!
//! ```
//! let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).threads(2).build()?;
//! let workers: Vec<_> = (0..2)
//!     .map(|i| {
//!         let model = model.clone(); // shares the weights and plan
//!         std::thread::spawn(move || {
//!             let mut session = model.session().unwrap();
//!             session.predict(&vec![i as f32; model.input_len()]).unwrap().to_vec()
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     assert_eq!(w.join().unwrap().len(), 2);
//! }
//! # Ok::<(), resnet50::Error>(())
//! ```
//!
//! Backbone: without the top, with [`ResNet50::feature_maps`], a run also
//! leaves C2…C5 and the pooled embedding readable ([`Session::features`]).
//!
//! ```
//! use resnet50::{Pooling, ResNet50};
//! let model = ResNet50::new().include_top(false).pooling(Pooling::None).feature_maps(true)
//!     .input_shape(64, 64, 3).build()?;
//! let mut session = model.session()?;
//! session.predict(&vec![0.1; 64 * 64 * 3])?;
//! let features = session.features().unwrap();
//! assert_eq!(features.stages[0].1, [1, 16, 16, 256]); // C2, stride 4
//! assert_eq!(features.stages[3].1, [1, 2, 2, 2048]); // C5, stride 32
//! assert_eq!(features.embedding.len(), 2048);
//! # Ok::<(), resnet50::Error>(())
//! ```
//!
//! # Cargo features
//!
//! - `ndarray` (off by default): `Session::predict_array`,
//!   `Session::predict_into_array` and `Session::feature_arrays` take and
//!   return [`ndarray`](https://docs.rs/ndarray) views (module `array`).
//! - `cli` (on by default): the `resnet50` command-line tool and its own
//!   dependencies (clap, indicatif). The library needs none of it:
//!   `resnet50 = { version = "0.1", default-features = false }` leaves them out.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod adaptive;
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
pub mod placement;
pub mod plan;
pub mod prepare;
pub mod preprocess;
pub mod steal;
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
