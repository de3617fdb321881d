//! `weights = "imagenet"`: the pretrained weights from the local caches the
//! frameworks already fill. Nothing is downloaded.
//!
//! - v1 (Keras): `resnet50_weights_tf_dim_ordering_tf_kernels.h5` (or
//!   `..._notop.h5` for a model without the top) in `$KERAS_HOME/models`,
//!   `~/.keras/models` or `/tmp/.keras/models` (Keras' fallback when the home
//!   directory is not writable). A file with the top also serves a model
//!   without it.
//! - v1.5 (torchvision): `resnet50-v1.5.safetensors` in `$RESNET50_HOME` or
//!   `~/.cache/resnet50` (a file of one's own), else torchvision's own
//!   download of `IMAGENET1K_V1`, `resnet50-0676ba61.pth`, in torch's hub
//!   cache (`$TORCH_HOME/hub/checkpoints`, else
//!   `$XDG_CACHE_HOME/torch/hub/checkpoints`, else
//!   `~/.cache/torch/hub/checkpoints`), which the command [`fetch_command`]
//!   prints fills. torchvision's `IMAGENET1K_V2` file (`resnet50-11ad3fa6.pth`,
//!   the `DEFAULT`) is not picked silently: its accuracy assumes a different
//!   preprocessing (`--preprocess torch-v2`); name it with `--weights`.

use std::path::{Path, PathBuf};

use crate::config::Variant;
use crate::error::{Error, Result};

/// Keras' file name with the top.
///
/// ```
/// use resnet50::{loaders::imagenet, Variant};
/// assert!(imagenet::candidates(Variant::V1, true).iter().all(|p| p.ends_with(imagenet::KERAS_TOP)));
/// ```
pub const KERAS_TOP: &str = "resnet50_weights_tf_dim_ordering_tf_kernels.h5";
/// Keras' file name without the top.
///
/// ```
/// use resnet50::{loaders::imagenet, Variant};
/// // Without the top, the notop file is preferred and the full file serves too.
/// let c = imagenet::candidates(Variant::V1, false);
/// assert!(c[0].ends_with(imagenet::KERAS_NOTOP) && c[1].ends_with(imagenet::KERAS_TOP));
/// ```
pub const KERAS_NOTOP: &str = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5";
/// The v1.5 file name.
///
/// ```
/// use resnet50::{loaders::imagenet, Variant};
/// assert!(imagenet::candidates(Variant::V1_5, true)[0].ends_with(imagenet::TORCH_FILE));
/// ```
pub const TORCH_FILE: &str = "resnet50-v1.5.safetensors";
/// torchvision's `IMAGENET1K_V1` download, as its hub cache names it.
///
/// ```
/// use resnet50::{loaders::imagenet, Variant};
/// let c = imagenet::candidates(Variant::V1_5, true);
/// assert!(c.last().unwrap().ends_with(imagenet::TORCHVISION_FILE));
/// ```
pub const TORCHVISION_FILE: &str = "resnet50-0676ba61.pth";
/// torchvision's `IMAGENET1K_V2` download (its `DEFAULT`), named in the
/// error when it is the one in the cache.
pub const TORCHVISION_V2_FILE: &str = "resnet50-11ad3fa6.pth";

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Where torchvision downloads weights: `torch.hub.get_dir()`'s
/// `checkpoints`, i.e. `$TORCH_HOME`, else `$XDG_CACHE_HOME/torch`, else
/// `~/.cache/torch`, then `hub/checkpoints`.
fn torch_checkpoints_dir() -> Option<PathBuf> {
    let torch_home = env_dir("TORCH_HOME")
        .or_else(|| env_dir("XDG_CACHE_HOME").map(|x| x.join("torch")))
        .or_else(|| env_dir("HOME").map(|h| h.join(".cache").join("torch")))?;
    Some(torch_home.join("hub").join("checkpoints"))
}

/// Every path tried for `variant`, in order of preference: the directory the
/// environment names first (`$KERAS_HOME/models`, `$RESNET50_HOME`; see
/// `tests/cli.rs`), then the ones under `$HOME`; for v1.5, torch's hub cache
/// last.
///
/// ```
/// use resnet50::{loaders::imagenet, Variant};
/// let c = imagenet::candidates(Variant::V1_5, true);
/// assert!(c[..c.len() - 1].iter().all(|p| p.ends_with(imagenet::TORCH_FILE)));
/// // Keras looks in /tmp/.keras/models when the home directory is not writable.
/// let keras = imagenet::candidates(Variant::V1, true);
/// assert!(keras.contains(&std::path::Path::new("/tmp/.keras/models").join(imagenet::KERAS_TOP)));
/// ```
pub fn candidates(variant: Variant, include_top: bool) -> Vec<PathBuf> {
    let home = env_dir("HOME");
    let mut dirs = Vec::new();
    match variant {
        Variant::V1 => {
            if let Some(k) = env_dir("KERAS_HOME") {
                dirs.push(k.join("models"));
            }
            if let Some(h) = &home {
                dirs.push(h.join(".keras").join("models"));
            }
            dirs.push(Path::new("/tmp/.keras/models").to_path_buf());
            let names: &[&str] = if include_top { &[KERAS_TOP] } else { &[KERAS_NOTOP, KERAS_TOP] };
            dirs.iter().flat_map(|d| names.iter().map(move |n| d.join(n))).collect()
        }
        Variant::V1_5 => {
            if let Some(r) = env_dir("RESNET50_HOME") {
                dirs.push(r);
            }
            if let Some(h) = &home {
                dirs.push(h.join(".cache").join("resnet50"));
            }
            let mut paths: Vec<PathBuf> = dirs.iter().map(|d| d.join(TORCH_FILE)).collect();
            paths.extend(torch_checkpoints_dir().map(|d| d.join(TORCHVISION_FILE)));
            paths
        }
    }
}

/// The one command that puts the file where [`candidates`] looks.
///
/// ```
/// use resnet50::{loaders::imagenet, Variant};
/// assert!(imagenet::fetch_command(Variant::V1, false).contains("include_top=False"));
/// assert!(imagenet::fetch_command(Variant::V1_5, true).contains("IMAGENET1K_V1"));
/// ```
pub fn fetch_command(variant: Variant, include_top: bool) -> String {
    match variant {
        Variant::V1 => format!(
            "python -c \"import keras; keras.applications.ResNet50(weights='imagenet', include_top={})\"",
            if include_top { "True" } else { "False" }
        ),
        // torchvision downloads the file into its hub cache, where
        // `candidates` looks.
        Variant::V1_5 => {
            "python -c \"import torchvision; torchvision.models.resnet50(weights='IMAGENET1K_V1')\"".to_string()
        }
    }
}

/// The first existing file of [`candidates`], or an error listing every path
/// tried and the command that puts the file there.
///
/// ```
/// use resnet50::{loaders::imagenet, Variant};
/// match imagenet::find(Variant::V1_5, true) {
///     Ok(path) => assert!(path.ends_with(imagenet::TORCH_FILE) || path.ends_with(imagenet::TORCHVISION_FILE)),
///     // Nothing cached: the error names every path tried and the command
///     // that fills the cache.
///     Err(e) => assert!(e.to_string().contains(imagenet::TORCHVISION_FILE) && e.to_string().contains("IMAGENET1K_V1")),
/// }
/// ```
pub fn find(variant: Variant, include_top: bool) -> Result<PathBuf> {
    let tried = candidates(variant, include_top);
    if let Some(p) = tried.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    // torchvision's DEFAULT weights in the same cache: say how to use them.
    let v2 = torch_checkpoints_dir()
        .map(|d| d.join(TORCHVISION_V2_FILE))
        .filter(|p| variant == Variant::V1_5 && p.is_file())
        .map(|p| {
            format!(
                ". torchvision's IMAGENET1K_V2 weights are there ({}): they expect another preprocessing, so name them: --weights {} --preprocess torch-v2",
                p.display(),
                p.display()
            )
        })
        .unwrap_or_default();
    Err(Error::Weights(format!(
        "weights=\"imagenet\" for ResNet50 {variant}: no cached weights file found (nothing is downloaded); tried {}. To put it there, run: {}{v2}",
        list.join(", "),
        fetch_command(variant, include_top)
    )))
}
