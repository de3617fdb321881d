//! The crate's error type: every failure is a typed value whose message names
//! the offending value.

use std::path::PathBuf;

/// Everything that can go wrong building or running a model.
///
/// Every variant implements [`std::error::Error`] and [`std::fmt::Display`];
/// messages name the offending value.
///
/// ```
/// use resnet50::{Error, ResNet50};
/// let err = ResNet50::new().input_shape(16, 224, 3).build().unwrap_err();
/// assert!(matches!(err, Error::Config(_)));
/// assert_eq!(err.to_string(), "invalid configuration: input size must be at least 32x32, got 16x224");
/// let boxed: Box<dyn std::error::Error> = Box::new(err); // a std error
/// assert!(boxed.to_string().contains("16x224"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration Keras would refuse too (bad input shape, classes, pooling…).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An input tensor of the wrong size or content.
    #[error("invalid input: {0}")]
    Input(String),
    /// A weights source that is missing, malformed or does not match the model.
    #[error("weights: {0}")]
    Weights(String),
    /// A feature that is not implemented yet.
    #[error("not available yet: {0}")]
    NotAvailable(String),
    /// A file that could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `.npy` file that is not a little-endian f32 C-order array of the expected shape.
    #[error("{}: {msg}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// An image file that could not be decoded (corrupt, truncated or an unsupported format).
    #[error("{}: {msg}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Memory for the arena or the weights could not be allocated.
    #[error("out of memory: {0}")]
    Alloc(String),
    /// A configuration whose activation memory (one session's arena) would
    /// exceed the memory limit ([`crate::ResNet50::memory_limit`]). Raised by
    /// `build`/`reshape` before anything large is allocated.
    ///
    /// ```
    /// use resnet50::{Error, ResNet50};
    /// let err = ResNet50::new().input_shape(4096, 4096, 3).memory_limit(Some(1 << 30)).build().unwrap_err();
    /// let Error::ResourceLimit { needed_bytes, limit_bytes, .. } = &err else { panic!("{err}") };
    /// assert_eq!(*limit_bytes, 1 << 30);
    /// assert!(needed_bytes.unwrap() > 1 << 30);
    /// assert!(err.to_string().contains("input 4096x4096x3, batch 1 would need at least"), "{err}");
    /// ```
    #[error(
        "{what} would need {}{} of activation memory; the limit is {} (ResNet50::memory_limit)",
        if *lower_bound && needed_bytes.is_some() { "at least " } else { "" },
        needed_bytes.map_or_else(|| "more than usize::MAX bytes".to_string(), human_bytes),
        human_bytes(*limit_bytes)
    )]
    ResourceLimit {
        /// What was asked for, e.g. `input 100000x100000x3, batch 1`.
        what: String,
        /// Bytes it would need; `None` when the count overflows `usize`.
        needed_bytes: Option<usize>,
        /// True when `needed_bytes` is a lower bound (computed from the
        /// configuration before planning), false when it is the planned arena.
        lower_bound: bool,
        /// The limit in effect.
        limit_bytes: usize,
    },
}

/// `bytes` for people: binary units with at most two decimals, then the exact
/// count, e.g. `2.62 TiB (2880000000000 bytes)`.
///
/// ```
/// assert_eq!(resnet50::error::human_bytes(16 << 30), "16 GiB (17179869184 bytes)");
/// assert_eq!(resnet50::error::human_bytes(1536), "1.5 KiB (1536 bytes)");
/// assert_eq!(resnet50::error::human_bytes(12), "12 bytes");
/// ```
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let mut text = format!("{value:.2}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text} {} ({bytes} bytes)", UNITS[unit])
}

/// `Result` with [`Error`].
///
/// ```
/// fn build() -> resnet50::Result<usize> {
///     let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(4).build()?;
///     Ok(model.output_len())
/// }
/// assert_eq!(build().unwrap(), 4);
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
