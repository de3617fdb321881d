//! The crate's error type: every failure is a typed value whose message names
//! the offending value.

use std::path::PathBuf;

/// Everything that can go wrong building or running a model.
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
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
