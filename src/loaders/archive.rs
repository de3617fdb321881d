//! Zip archives among weight files: a PyTorch checkpoint (a `data.pkl`
//! member: [`super::pytorch`]) or a Keras 3 `.keras` model (a
//! `model.weights.h5` member, read as a `.weights.h5` file:
//! [`super::keras_h5`]). Both store their members uncompressed (`torch.save`
//! and Keras' `saving_lib` alike), so a member is a slice of the mapped file;
//! a compressed one is refused. The archive's directory is read by the `zip`
//! crate (no default features: no decompressors).

use std::fs::File;
use std::io::Cursor;
use std::path::Path;

use zip::{CompressionMethod, ZipArchive};

use super::{file_err, io_err, Loaded};
use crate::error::Result;

/// The member of a `.keras` archive that holds the weights.
pub const KERAS_WEIGHTS: &str = "model.weights.h5";

/// An opened zip archive over `bytes`, with its member names.
pub(crate) struct Archive<'b> {
    zip: ZipArchive<Cursor<&'b [u8]>>,
    bytes: &'b [u8],
    /// Member names, in directory order (names that are not UTF-8 left out).
    pub(crate) names: Vec<String>,
}

impl<'b> Archive<'b> {
    /// Reads the directory of the zip archive `bytes`.
    pub(crate) fn new(path: &Path, bytes: &'b [u8]) -> Result<Self> {
        let zip = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| file_err(path, format!("not a valid zip archive (truncated or corrupt?): {e}")))?;
        let names = zip.file_names().filter_map(|n| n.ok()).map(|n| n.into_owned()).collect();
        Ok(Archive { zip, bytes, names })
    }

    /// The bytes of the stored (uncompressed) member `name`, or why not.
    pub(crate) fn member(&mut self, name: &str) -> std::result::Result<&'b [u8], String> {
        let Some(i) = self.zip.index_for_name(name) else {
            return Err(format!("the archive has no member {name:?}"));
        };
        let f = self.zip.by_index_raw(i).map_err(|e| format!("member {name:?}: {e}"))?;
        if f.compression() != CompressionMethod::Stored {
            return Err(format!(
                "member {name:?} is compressed ({:?}); PyTorch and Keras store their members uncompressed",
                f.compression()
            ));
        }
        let start = f.data_start().ok_or_else(|| format!("member {name:?}: no data offset"))?;
        let (start, len) = (usize::try_from(start).ok(), usize::try_from(f.compressed_size()).ok());
        start
            .zip(len)
            .and_then(|(s, n)| self.bytes.get(s..s.checked_add(n)?))
            .ok_or_else(|| format!("member {name:?} runs past the end of the file (truncated?)"))
    }
}

/// Loads a zip archive of weights (a PyTorch checkpoint or a `.keras`
/// model), reading it through a read-only mapping.
///
/// ```
/// use resnet50::loaders::{archive, export::{self, H5Layout}, Format};
/// use resnet50::{init, Variant};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.keras", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1, Some(10), 0);
/// let layout = H5Layout::Keras3 { names: true };
/// let h5 = export::keras_h5_bytes(&export::keras_h5_layers(&w, layout), layout, false)?;
/// std::fs::write(&path, export::keras_archive_bytes(&h5)?).unwrap();
/// let loaded = archive::load_file(&path, &std::fs::File::open(&path).unwrap())?;
/// assert_eq!((loaded.format, &loaded.weights), (Format::Keras3, &w));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn load_file(path: &Path, file: &File) -> Result<Loaded> {
    let map = resnet50_kernels::mapped::map_file(file).map_err(|e| io_err(path, e))?;
    from_bytes(path, &map)
}

/// Maps the zip archive `bytes` (named `path` in messages) onto canonical
/// weights: a PyTorch checkpoint when it has a `data.pkl`, a Keras model
/// when it has a `model.weights.h5`.
///
/// ```
/// use resnet50::loaders::{archive, export, names::Scheme, Format};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1_5, None, 0);
/// let pth = export::pytorch_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?;
/// assert_eq!(archive::from_bytes(std::path::Path::new("mem"), &pth)?.format, Format::PyTorch(Scheme::Torchvision));
/// let err = archive::from_bytes(std::path::Path::new("mem"), &pth[..100]).unwrap_err();
/// assert!(err.to_string().contains("not a valid zip archive"), "{err}");
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    let mut archive = Archive::new(path, bytes)?;
    if super::pytorch::data_pkl(&archive.names).is_some() {
        return super::pytorch::from_archive(path, archive);
    }
    if archive.names.iter().any(|n| n == KERAS_WEIGHTS) {
        let h5 = archive.member(KERAS_WEIGHTS).map_err(|msg| file_err(path, msg))?;
        return super::keras_h5::from_bytes(path, h5);
    }
    let mut shown: Vec<&str> = archive.names.iter().map(String::as_str).take(4).collect();
    if archive.names.len() > 4 {
        shown.push("…");
    }
    Err(file_err(
        path,
        format!(
            "is a zip archive with neither a data.pkl (a PyTorch checkpoint) nor a {KERAS_WEIGHTS} (a Keras .keras model): members {shown:?}"
        ),
    ))
}
