//! From an image file to the NHWC f32 tensor the model eats, exactly as Keras
//! and torchvision (PIL path) prepare it.
//!
//! * **Keras** ([`load_keras`], [`keras_from_image`]): `keras.utils.load_img(path,
//!   target_size=(h, w))` (straight resize, aspect ratio not kept, default
//!   interpolation `"nearest"`) then `resnet50.preprocess_input` in `caffe` mode:
//!   RGB→BGR, subtract the ImageNet means B 103.939, G 116.779, R 123.68, no
//!   scaling. Output `[h, w, 3]` BGR.
//! * **torchvision** ([`load_torch`], [`torch_from_image`]): the
//!   `ResNet50_Weights.IMAGENET1K_V1.transforms()` pipeline on a PIL image —
//!   `Resize(256)` of the shorter side (bilinear, antialiased), `CenterCrop(224)`,
//!   `/255`, `Normalize(mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225))`.
//!   `IMAGENET1K_V2` uses `Resize(232)`. Output `[crop, crop, 3]` RGB (NHWC, not
//!   torchvision's CHW: the model is NHWC).
//!
//! Both frameworks resize with PIL. This module reimplements PIL's two resamplers
//! bit for bit (`Image.resize(size, NEAREST)`: source pixel
//! `floor((x + 0.5) · in/out)` accumulated in double precision as PIL does;
//! `Image.resize(size, BILINEAR)`: triangle filter whose support widens by
//! `in/out` when downscaling, 22-bit fixed-point weights, two separable passes
//! each rounded to 8 bits, in Pillow 13's order), so on lossless files (PNG,
//! BMP…) the tensors match Keras and torchvision to the last bit.
//!
//! Decoding follows PIL's `Image.open(path).convert("RGB")`: gray is replicated,
//! alpha is dropped (not composited), 16-bit samples keep their high byte (PIL's
//! rule for 16-bit RGB(A) PNGs; PIL clips 16-bit *gray* to 255 instead, which is
//! not copied here). EXIF orientation is ignored, as Keras and torchvision do.
//! JPEGs are decoded by `zune-jpeg`, not libjpeg-turbo: decoded pixels may
//! differ from PIL's by a few levels (see `tests/preprocess.rs`).

use std::path::Path;

pub use image;
use image::{DynamicImage, ImageFormat, ImageReader, RgbImage};

use crate::error::{Error, Result};

/// Keras `caffe` means, in the order of the output channels (B, G, R).
///
/// ```
/// use resnet50::preprocess::{keras_from_image, Interp, KERAS_CAFFE_MEAN_BGR};
/// let black = image::RgbImage::new(8, 8);
/// let x = keras_from_image(&black, 4, 4, Interp::Nearest);
/// assert_eq!(x[..3], KERAS_CAFFE_MEAN_BGR.map(|m| -m)); // 0 minus the mean, BGR order
/// ```
pub const KERAS_CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];
/// torchvision ImageNet mean (R, G, B).
///
/// ```
/// use resnet50::preprocess::{torch_from_image, TORCH_MEAN, TORCH_STD};
/// let x = torch_from_image(&image::RgbImage::new(8, 8), 8, 8); // black
/// for c in 0..3 {
///     assert!((x[c] + TORCH_MEAN[c] / TORCH_STD[c]).abs() < 1e-6);
/// }
/// ```
pub const TORCH_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// torchvision ImageNet standard deviation (R, G, B).
///
/// ```
/// use resnet50::preprocess::{torch_from_image, TORCH_MEAN, TORCH_STD};
/// let white = image::RgbImage::from_pixel(8, 8, image::Rgb([255; 3]));
/// let x = torch_from_image(&white, 8, 8);
/// for c in 0..3 {
///     assert!((x[c] - (1.0 - TORCH_MEAN[c]) / TORCH_STD[c]).abs() < 1e-6);
/// }
/// ```
pub const TORCH_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Resampling filter, named as in PIL / Keras' `interpolation` argument.
///
/// ```
/// use resnet50::preprocess::Interp;
/// assert_eq!("Bilinear".parse::<Interp>()?, Interp::Bilinear);
/// assert_eq!(Interp::default(), Interp::Nearest); // Keras' default
/// assert!("bicubic".parse::<Interp>().is_err());
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Interp {
    /// PIL `NEAREST` (Keras' default).
    #[default]
    Nearest,
    /// PIL `BILINEAR` (antialiased when downscaling; torchvision's choice).
    Bilinear,
}

impl std::str::FromStr for Interp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nearest" => Ok(Interp::Nearest),
            "bilinear" => Ok(Interp::Bilinear),
            _ => Err(Error::Config(format!("unknown interpolation {s:?}: expected nearest or bilinear"))),
        }
    }
}

/// A whole preprocessing pipeline: what `resnet50 classify` and `resnet50
/// preprocess` apply to every image.
///
/// ```
/// use resnet50::preprocess::Preprocessing;
/// let img = image::RgbImage::from_pixel(300, 200, image::Rgb([255, 128, 0]));
/// let x = Preprocessing::TORCH_V1.apply(&img);
/// assert_eq!(x.len(), Preprocessing::TORCH_V1.output_len()); // 224*224*3, HWC RGB
/// assert!((x[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
/// assert!(Preprocessing::Torch { resize: 0, height: 224, width: 224 }.validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preprocessing {
    /// Keras `load_img(target_size=(height, width), interpolation)` + caffe `preprocess_input`.
    Keras {
        /// Target height.
        height: usize,
        /// Target width.
        width: usize,
        /// Resampling filter (Keras default: nearest).
        interp: Interp,
    },
    /// torchvision `Resize(resize)` (shorter side, bilinear) + `CenterCrop((height, width))`
    /// + `ToTensor` + `Normalize`.
    Torch {
        /// Length of the shorter side after resizing (256 for IMAGENET1K_V1, 232 for V2).
        resize: usize,
        /// Crop height.
        height: usize,
        /// Crop width.
        width: usize,
    },
}

impl Preprocessing {
    /// Keras at 224×224 with nearest interpolation, as in the Keras ResNet50 example.
    ///
    /// ```
    /// use resnet50::preprocess::{Interp, Preprocessing};
    /// assert_eq!(Preprocessing::KERAS, Preprocessing::Keras { height: 224, width: 224, interp: Interp::Nearest });
    /// assert_eq!(Preprocessing::KERAS.output_len(), 224 * 224 * 3);
    /// ```
    pub const KERAS: Preprocessing = Preprocessing::Keras { height: 224, width: 224, interp: Interp::Nearest };
    /// torchvision `ResNet50_Weights.IMAGENET1K_V1.transforms()`.
    ///
    /// ```
    /// use resnet50::preprocess::Preprocessing;
    /// assert_eq!(Preprocessing::TORCH_V1, Preprocessing::Torch { resize: 256, height: 224, width: 224 });
    /// ```
    pub const TORCH_V1: Preprocessing = Preprocessing::Torch { resize: 256, height: 224, width: 224 };
    /// torchvision `ResNet50_Weights.IMAGENET1K_V2.transforms()`.
    ///
    /// ```
    /// use resnet50::preprocess::Preprocessing;
    /// assert_eq!(Preprocessing::TORCH_V2, Preprocessing::Torch { resize: 232, height: 224, width: 224 });
    /// assert_eq!(Preprocessing::TORCH_V2.output_hw(), Preprocessing::TORCH_V1.output_hw());
    /// ```
    pub const TORCH_V2: Preprocessing = Preprocessing::Torch { resize: 232, height: 224, width: 224 };

    /// `(height, width)` of the tensor produced.
    ///
    /// ```
    /// use resnet50::preprocess::{Interp, Preprocessing};
    /// assert_eq!(Preprocessing::Torch { resize: 40, height: 32, width: 24 }.output_hw(), (32, 24));
    /// assert_eq!(Preprocessing::Keras { height: 16, width: 8, interp: Interp::Bilinear }.output_hw(), (16, 8));
    /// ```
    pub fn output_hw(&self) -> (usize, usize) {
        match *self {
            Preprocessing::Keras { height, width, .. } | Preprocessing::Torch { height, width, .. } => (height, width),
        }
    }

    /// Number of f32 values produced per image (`height · width · 3`).
    ///
    /// ```
    /// use resnet50::preprocess::Preprocessing;
    /// let p = Preprocessing::Torch { resize: 40, height: 32, width: 24 };
    /// assert_eq!(p.output_len(), 32 * 24 * 3);
    /// assert_eq!(p.apply(&image::RgbImage::new(50, 40)).len(), p.output_len());
    /// ```
    pub fn output_len(&self) -> usize {
        let (h, w) = self.output_hw();
        h * w * 3
    }

    /// Checks that every size is positive.
    ///
    /// ```
    /// use resnet50::preprocess::{Interp, Preprocessing};
    /// assert!(Preprocessing::KERAS.validate().is_ok());
    /// assert!(Preprocessing::Keras { height: 0, width: 32, interp: Interp::Nearest }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let ok = match *self {
            Preprocessing::Keras { height, width, .. } => height > 0 && width > 0,
            Preprocessing::Torch { resize, height, width } => resize > 0 && height > 0 && width > 0,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Config(format!("preprocessing sizes must be positive, got {self:?}")))
        }
    }

    /// Applies the pipeline to an RGB image; returns `[h, w, 3]` f32 (HWC).
    ///
    /// ```
    /// use resnet50::preprocess::{Interp, Preprocessing};
    /// let img = image::RgbImage::from_pixel(12, 9, image::Rgb([10, 20, 30]));
    /// let x = Preprocessing::Keras { height: 4, width: 6, interp: Interp::Bilinear }.apply(&img);
    /// assert_eq!(x.len(), 4 * 6 * 3);
    /// assert_eq!(x[..3], x[x.len() - 3..]); // a flat image stays flat
    /// ```
    pub fn apply(&self, img: &RgbImage) -> Vec<f32> {
        let mut out = vec![0.0; self.output_len()];
        self.apply_into(img, &mut out);
        out
    }

    /// Like [`Preprocessing::apply`], writing into `out` (length [`Preprocessing::output_len`]),
    /// e.g. one slot of a batch.
    ///
    /// # Panics
    /// If `out` has the wrong length or a size is zero.
    ///
    /// ```
    /// use resnet50::preprocess::Preprocessing;
    /// let p = Preprocessing::Torch { resize: 32, height: 32, width: 32 };
    /// let imgs = [image::RgbImage::new(40, 32), image::RgbImage::from_pixel(32, 48, image::Rgb([255; 3]))];
    /// let mut batch = vec![0.0; imgs.len() * p.output_len()];
    /// for (img, slot) in imgs.iter().zip(batch.chunks_mut(p.output_len())) {
    ///     p.apply_into(img, slot);
    /// }
    /// assert_eq!(batch[p.output_len()..], p.apply(&imgs[1])[..]);
    /// ```
    pub fn apply_into(&self, img: &RgbImage, out: &mut [f32]) {
        assert_eq!(out.len(), self.output_len(), "output slice length");
        match *self {
            Preprocessing::Keras { height, width, interp } => {
                let r = resize(img, width as u32, height as u32, interp);
                keras_caffe_into(&r, out);
            }
            Preprocessing::Torch { resize: short, height, width } => {
                let c = resize_shorter_side_and_crop(img, short, width as u32, height as u32);
                torch_normalize_into(&c, out);
            }
        }
    }

    /// Opens, decodes and preprocesses an image file.
    ///
    /// ```
    /// use resnet50::preprocess::Preprocessing;
    /// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.png", line!(), std::process::id()));
    /// let img = image::RgbImage::from_pixel(48, 40, image::Rgb([200, 100, 50]));
    /// img.save(&path).unwrap();
    /// let p = Preprocessing::Torch { resize: 32, height: 32, width: 32 };
    /// assert_eq!(p.load(&path)?, p.apply(&img)); // PNG is lossless
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn load(&self, path: &Path) -> Result<Vec<f32>> {
        self.validate()?;
        Ok(self.apply(&open_rgb(path)?))
    }
}

/// Keras: `preprocess_input(img_to_array(load_img(path, target_size=(height, width),
/// interpolation=...)))` for `resnet50`; returns `[height, width, 3]` BGR f32.
///
/// ```
/// use resnet50::preprocess::{load_keras, Interp};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}.png", std::process::id()));
/// image::RgbImage::from_pixel(64, 64, image::Rgb([200, 100, 50])).save(&path).unwrap();
/// let x = load_keras(&path, 32, 32, Interp::Bilinear)?;
/// assert_eq!(x.len(), 32 * 32 * 3);
/// std::fs::remove_file(&path).ok();
/// assert!(load_keras(&path, 32, 32, Interp::Nearest).is_err()); // gone: an error naming it
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn load_keras(path: &Path, height: usize, width: usize, interp: Interp) -> Result<Vec<f32>> {
    Preprocessing::Keras { height, width, interp }.load(path)
}

/// torchvision on a PIL image: `Resize(resize)`, `CenterCrop(crop)`, `ToTensor`,
/// `Normalize`; returns `[crop, crop, 3]` RGB f32 (NHWC order, not CHW).
///
/// ```
/// use resnet50::preprocess::load_torch;
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.png", line!(), std::process::id()));
/// image::RgbImage::new(64, 48).save(&path).unwrap(); // black
/// let x = load_torch(&path, 40, 32)?;
/// assert_eq!(x.len(), 32 * 32 * 3);
/// assert!((x[0] + 0.485 / 0.229).abs() < 1e-6);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn load_torch(path: &Path, resize: usize, crop: usize) -> Result<Vec<f32>> {
    Preprocessing::Torch { resize, height: crop, width: crop }.load(path)
}

/// [`load_keras`] on an image already in memory.
///
/// ```
/// use resnet50::preprocess::{keras_from_image, Interp};
/// let img = image::RgbImage::from_pixel(64, 48, image::Rgb([10, 20, 30]));
/// let x = keras_from_image(&img, 32, 32, Interp::Nearest);
/// // caffe mode: BGR minus the ImageNet mean (103.939, 116.779, 123.68).
/// assert_eq!(&x[..3], &[30.0 - 103.939, 20.0 - 116.779, 10.0 - 123.68]);
/// ```
pub fn keras_from_image(img: &RgbImage, height: usize, width: usize, interp: Interp) -> Vec<f32> {
    Preprocessing::Keras { height, width, interp }.apply(img)
}

/// [`load_torch`] on an image already in memory.
///
/// ```
/// let img = image::RgbImage::from_pixel(80, 60, image::Rgb([0, 0, 0]));
/// let x = resnet50::preprocess::torch_from_image(&img, 40, 32);
/// assert_eq!(x.len(), 32 * 32 * 3);
/// assert!((x[0] + 0.485 / 0.229).abs() < 1e-6);
/// ```
pub fn torch_from_image(img: &RgbImage, resize: usize, crop: usize) -> Vec<f32> {
    Preprocessing::Torch { resize, height: crop, width: crop }.apply(img)
}

/// The formats this build decodes, for messages.
///
/// ```
/// use resnet50::preprocess::{decode_rgb, SUPPORTED_FORMATS};
/// assert!(SUPPORTED_FORMATS.contains("PNG") && SUPPORTED_FORMATS.contains("JPEG"));
/// let err = decode_rgb(b"plain text, not an image", "notes.txt").unwrap_err();
/// assert!(err.to_string().contains(SUPPORTED_FORMATS), "{err}");
/// ```
pub const SUPPORTED_FORMATS: &str = "JPEG, PNG, GIF, BMP, WebP, PNM, TGA, ICO";

/// Whether a file name has the extension of a supported image format (used to
/// pick files out of a directory).
///
/// ```
/// use std::path::Path;
/// use resnet50::preprocess::has_image_extension;
/// assert!(has_image_extension(Path::new("cat.JPG")) && !has_image_extension(Path::new("cat.txt")));
/// ```
pub fn has_image_extension(path: &Path) -> bool {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else { return false };
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "jpg"
            | "jpeg"
            | "jpe"
            | "jfif"
            | "png"
            | "gif"
            | "bmp"
            | "dib"
            | "webp"
            | "ppm"
            | "pgm"
            | "pbm"
            | "pnm"
            | "pam"
            | "tga"
            | "ico"
    )
}

fn image_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Image { path: path.to_path_buf(), msg: msg.into() }
}

/// Opens and decodes an image file (format from its content, falling back to
/// the extension) and converts it to 8-bit RGB like PIL's `.convert("RGB")`.
///
/// ```
/// use resnet50::preprocess::open_rgb;
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.png", line!(), std::process::id()));
/// image::RgbaImage::from_pixel(3, 2, image::Rgba([1, 2, 3, 4])).save(&path).unwrap();
/// let img = open_rgb(&path)?;
/// assert_eq!((img.dimensions(), img.get_pixel(0, 0).0), ((3, 2), [1, 2, 3])); // alpha dropped
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn open_rgb(path: &Path) -> Result<RgbImage> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(image_err(path, "not a regular file"));
    }
    let reader = ImageReader::open(path).map_err(io)?.with_guessed_format().map_err(io)?;
    match reader.format() {
        None => Err(unrecognised(path)),
        // Its decoder reads the whole file into memory anyway: read it once,
        // check that it is whole (`jpeg_truncated`), decode from those bytes.
        Some(ImageFormat::Jpeg) => decode_bytes(&std::fs::read(path).map_err(io)?, path, Some(ImageFormat::Jpeg)),
        Some(_) => decode(reader, path),
    }
}

/// Decodes an image held in memory (`name` is used in error messages).
///
/// ```
/// let mut png = Vec::new();
/// image::RgbImage::from_pixel(2, 3, image::Rgb([1, 2, 3]))
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
///     .unwrap();
/// let img = resnet50::preprocess::decode_rgb(&png, "pixel.png")?;
/// assert_eq!(img.dimensions(), (2, 3));
/// let err = resnet50::preprocess::decode_rgb(&png[..20], "cut.png").unwrap_err();
/// assert!(err.to_string().contains("cut.png"), "{err}");
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn decode_rgb(bytes: &[u8], name: &str) -> Result<RgbImage> {
    decode_bytes(bytes, Path::new(name), None)
}

/// [`decode_rgb`] for `path`'s bytes: the format from the content, else
/// `fallback` (as [`ImageReader::open`] falls back on the extension); a JPEG
/// cut off inside its image data is an error.
fn decode_bytes(bytes: &[u8], path: &Path, fallback: Option<ImageFormat>) -> Result<RgbImage> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if let (None, Some(format)) = (reader.format(), fallback) {
        reader.set_format(format);
    }
    match reader.format() {
        None => Err(unrecognised(path)),
        Some(ImageFormat::Jpeg) if jpeg_truncated(bytes) => {
            Err(image_err(path, "truncated JPEG: no end-of-image marker after its last scan"))
        }
        Some(_) => decode(reader, path),
    }
}

/// Decodes with the reader's format and converts like PIL's `convert("RGB")`;
/// an image with no pixels is an error.
fn decode<R: std::io::BufRead + std::io::Seek>(reader: ImageReader<R>, path: &Path) -> Result<RgbImage> {
    let img = reader.decode().map_err(|e| image_err(path, describe(e)))?;
    non_empty(path, to_rgb_like_pil(img))
}

fn unrecognised(path: &Path) -> Error {
    image_err(path, format!("not a recognised image format (supported: {SUPPORTED_FORMATS})"))
}

/// Whether a JPEG stream stops inside its image data: no end-of-image marker
/// (`FF D9`) after its last start-of-scan (`FF DA`).
///
/// Why: the JPEG decoder behind `image` fills the rows a cut-off file lacks
/// with gray and reports success (a 64×48 picture cut to 80 % of its bytes
/// decoded with a quarter of its pixels wrong), where PIL — and so Keras's
/// `load_img` and torchvision — raise "image file is truncated". In the scan
/// data every `FF` byte is followed by `00` or a restart marker, so an
/// `FF DA` pair is a real marker, except inside the segments before the first
/// scan (an EXIF thumbnail), which come before the image's own scans; data
/// appended after the image (a second picture, as phones write) ends with its
/// own `FF D9`.
fn jpeg_truncated(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_sos.is_some_and(|i| !bytes[i + 2..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// A decoded image with no pixels (a 0-pixel side some formats' headers
/// allow) is an error: there is nothing to resize.
fn non_empty(path: &Path, img: RgbImage) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(image_err(path, format!("image is {w}×{h} pixels: nothing to classify")));
    }
    Ok(img)
}

fn describe(e: image::ImageError) -> String {
    use image::ImageError as E;
    match e {
        E::Unsupported(u) => format!("unsupported image: {u} (supported: {SUPPORTED_FORMATS})"),
        E::Decoding(d) => format!("corrupt or truncated image: {d}"),
        E::Limits(l) => format!("image too large: {l}"),
        other => format!("cannot decode image: {other}"),
    }
}

/// Converts any decoded image to 8-bit RGB as PIL's `convert("RGB")` does:
/// gray replicated, alpha dropped, 16-bit samples reduced to their high byte.
///
/// ```
/// use image::DynamicImage;
/// use resnet50::preprocess::to_rgb_like_pil;
/// let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([7])));
/// assert_eq!(to_rgb_like_pil(gray).get_pixel(1, 1).0, [7, 7, 7]);
/// let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(1, 1, image::Rgb([0x12ff, 0x3400, 0xffff])));
/// assert_eq!(to_rgb_like_pil(deep).get_pixel(0, 0).0, [0x12, 0x34, 0xff]); // high bytes
/// ```
pub fn to_rgb_like_pil(img: DynamicImage) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let from = |px: &mut dyn Iterator<Item = [u8; 3]>| -> RgbImage {
        let mut v = Vec::with_capacity(w as usize * h as usize * 3);
        for p in px {
            v.extend_from_slice(&p);
        }
        RgbImage::from_raw(w, h, v).expect("buffer size")
    };
    match img {
        DynamicImage::ImageRgb8(i) => i,
        DynamicImage::ImageRgba8(i) => from(&mut i.pixels().map(|p| [p[0], p[1], p[2]])),
        DynamicImage::ImageLuma8(i) => from(&mut i.pixels().map(|p| [p[0]; 3])),
        DynamicImage::ImageLumaA8(i) => from(&mut i.pixels().map(|p| [p[0]; 3])),
        DynamicImage::ImageRgb16(i) => from(&mut i.pixels().map(|p| [hi(p[0]), hi(p[1]), hi(p[2])])),
        DynamicImage::ImageRgba16(i) => from(&mut i.pixels().map(|p| [hi(p[0]), hi(p[1]), hi(p[2])])),
        DynamicImage::ImageLuma16(i) => from(&mut i.pixels().map(|p| [hi(p[0]); 3])),
        DynamicImage::ImageLumaA16(i) => from(&mut i.pixels().map(|p| [hi(p[0]); 3])),
        other => other.to_rgb8(),
    }
}

fn hi(v: u16) -> u8 {
    (v >> 8) as u8
}

/// Resizes to `width × height` with PIL's `Image.resize((width, height), filter)`.
///
/// ```
/// use resnet50::preprocess::{resize, Interp};
/// let img = image::RgbImage::from_pixel(9, 7, image::Rgb([10, 20, 30]));
/// for interp in [Interp::Nearest, Interp::Bilinear] {
///     let r = resize(&img, 4, 5, interp);
///     assert_eq!((r.dimensions(), r.get_pixel(3, 4).0), ((4, 5), [10, 20, 30]));
/// }
/// ```
pub fn resize(img: &RgbImage, width: u32, height: u32, interp: Interp) -> RgbImage {
    if img.dimensions() == (width, height) {
        return img.clone();
    }
    match interp {
        Interp::Nearest => resize_nearest(img, width, height),
        Interp::Bilinear => resize_bilinear(img, width, height),
    }
}

/// torchvision `Resize(size)` with an int: the shorter side becomes `size`, the
/// longer `int(size · long / short)`; no-op when the size already matches.
///
/// ```
/// use resnet50::preprocess::{resize_shorter_side, Interp};
/// let img = image::RgbImage::new(80, 60);
/// assert_eq!(resize_shorter_side(&img, 30, Interp::Bilinear).dimensions(), (40, 30));
/// assert_eq!(resize_shorter_side(&img, 60, Interp::Bilinear), img); // already that size
/// ```
///
/// It builds the whole resized image: for an extreme aspect ratio that can be
/// far larger than the input (a 1 × 60 000 image at `size` 256 becomes
/// 256 × 15 360 000 pixels; sizes past `u32` saturate). The torchvision
/// pipeline ([`Preprocessing::Torch`]) uses [`resize_shorter_side_and_crop`],
/// which computes only the crop.
pub fn resize_shorter_side(img: &RgbImage, size: usize, interp: Interp) -> RgbImage {
    let (nw, nh) = shorter_side_size(img.dimensions(), size);
    let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    resize(img, sat(nw), sat(nh), interp)
}

/// torchvision's `Resize(size)` output size for a `(width, height)` image: the
/// shorter side becomes `size`, the longer `int(size · long / short)` (Python:
/// exact integer product, one correctly rounded division, truncation).
fn shorter_side_size((w, h): (u32, u32), size: usize) -> (u64, u64) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let size = size as u64;
    // An empty image has nothing to scale: it stays empty along that side.
    let new_long = if short == 0 { 0 } else { ((size * u64::from(long)) as f64 / f64::from(short)) as u64 };
    if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// torchvision `Resize(size)` (bilinear) then `CenterCrop((height, width))`,
/// computing only the pixels the crop keeps: the same bytes as
/// [`resize_shorter_side`] followed by [`center_crop`], without building the
/// resized image — which, for an extreme aspect ratio, could take more
/// memory than the machine has (1 × 60 000 pixels at `size` 256: 11.8 GB).
///
/// ```
/// use resnet50::preprocess::{center_crop, resize_shorter_side, resize_shorter_side_and_crop, Interp};
/// let img = image::RgbImage::from_fn(37, 23, |x, y| image::Rgb([x as u8 * 7, y as u8 * 11, 99]));
/// for (size, w, h) in [(16, 12, 12), (30, 40, 20), (8, 8, 8)] {
///     let two_steps = center_crop(&resize_shorter_side(&img, size, Interp::Bilinear), w, h);
///     assert_eq!(resize_shorter_side_and_crop(&img, size, w, h), two_steps);
/// }
/// // A 1 × 60 000 strip: a 224 × 224 crop, never the 256 × 15 360 000 resized strip.
/// let strip = image::RgbImage::from_pixel(1, 60_000, image::Rgb([1, 2, 3]));
/// let c = resize_shorter_side_and_crop(&strip, 256, 224, 224);
/// assert_eq!((c.dimensions(), c.get_pixel(100, 100).0), ((224, 224), [1, 2, 3]));
/// ```
pub fn resize_shorter_side_and_crop(img: &RgbImage, size: usize, width: u32, height: u32) -> RgbImage {
    let (nw, nh) = shorter_side_size(img.dimensions(), size);
    // Per axis: the resized pixels the crop keeps and where they land.
    let (xs, x_at) = crop_window(nw, width);
    let (ys, y_at) = crop_window(nh, height);
    let mut out = RgbImage::new(width, height);
    if xs.is_empty() || ys.is_empty() {
        return out;
    }
    let win = resize_bilinear_window(img, (nw, nh), xs, ys);
    let (ww, wh) = win.dimensions();
    for y in 0..wh {
        for x in 0..ww {
            out.put_pixel(x + x_at, y + y_at, *win.get_pixel(x, y));
        }
    }
    out
}

/// [`center_crop`] along one axis of `resized` pixels cropped to `crop`: the
/// range of resized pixels kept and the output position of the first (black
/// padding, left/top the floor half, where the crop is larger).
fn crop_window(resized: u64, crop: u32) -> (std::ops::Range<u64>, u32) {
    let crop64 = u64::from(crop);
    if resized >= crop64 {
        let start = round_half_even_half(resized - crop64);
        (start..start + crop64, 0)
    } else {
        // resized < crop <= u32::MAX.
        (0..resized, ((crop64 - resized) / 2) as u32)
    }
}

/// torchvision `CenterCrop((height, width))` on a PIL image: pads with black
/// when the image is smaller, offsets `round((in − crop) / 2)` with Python's
/// round-half-to-even.
///
/// ```
/// let img = image::RgbImage::from_fn(4, 4, |x, y| image::Rgb([x as u8, y as u8, 0]));
/// let c = resnet50::preprocess::center_crop(&img, 2, 2);
/// assert_eq!((c.dimensions(), c.get_pixel(0, 0).0), ((2, 2), [1, 1, 0]));
/// ```
pub fn center_crop(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (iw, ih) = img.dimensions();
    // Padding first (left/top get the floor half), as torchvision does.
    let (pad_l, pad_t) = (width.saturating_sub(iw) / 2, height.saturating_sub(ih) / 2);
    let (pw, ph) = (iw.max(width), ih.max(height));
    // d / 2 rounded from a u32: fits a u32.
    let top = round_half_even_half(u64::from(ph - height)) as u32;
    let left = round_half_even_half(u64::from(pw - width)) as u32;
    let mut out = RgbImage::new(width, height);
    for y in 0..height {
        let sy = (y + top) as i64 - pad_t as i64;
        if sy < 0 || sy >= ih as i64 {
            continue;
        }
        for x in 0..width {
            let sx = (x + left) as i64 - pad_l as i64;
            if sx < 0 || sx >= iw as i64 {
                continue;
            }
            out.put_pixel(x, y, *img.get_pixel(sx as u32, sy as u32));
        }
    }
    out
}

/// `int(round(d / 2.0))` with Python's banker's rounding.
fn round_half_even_half(d: u64) -> u64 {
    let q = d / 2;
    if d % 2 == 1 && q % 2 == 1 {
        q + 1
    } else {
        q
    }
}

/// PIL `Image.resize(size, Image.NEAREST)` (`ImagingScaleAffine`): the source
/// coordinate starts at `scale/2` and is advanced by `scale = in/out` in double
/// precision, then truncated.
///
/// ```
/// let img = image::RgbImage::from_fn(4, 1, |x, _| image::Rgb([x as u8, 0, 0]));
/// let r = resnet50::preprocess::resize_nearest(&img, 2, 1);
/// // Source x = floor((x + 0.5) * 4 / 2): pixels 1 and 3.
/// assert_eq!((r.get_pixel(0, 0).0[0], r.get_pixel(1, 0).0[0]), (1, 3));
/// ```
pub fn resize_nearest(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let xs = nearest_indices(img.width(), width);
    let ys = nearest_indices(img.height(), height);
    let mut out = RgbImage::new(width, height);
    for (y, sy) in ys.iter().enumerate() {
        let Some(sy) = *sy else { continue };
        for (x, sx) in xs.iter().enumerate() {
            if let Some(sx) = *sx {
                out.put_pixel(x as u32, y as u32, *img.get_pixel(sx, sy));
            }
        }
    }
    out
}

fn nearest_indices(in_size: u32, out_size: u32) -> Vec<Option<u32>> {
    // a[0] = (double)(box[2] - box[0]) / xsize, with a float box.
    let scale = f64::from(in_size as f32) / f64::from(out_size);
    let mut xo = scale * 0.5;
    (0..out_size)
        .map(|_| {
            let xin = if xo < 0.0 { -1 } else { xo as i64 };
            xo += scale;
            (xin >= 0 && xin < i64::from(in_size)).then_some(xin as u32)
        })
        .collect()
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output position: first source index and the fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<Vec<i32>>,
}

/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter
/// of an `in_size → out_size` resize, for the output positions `range` only
/// (PIL computes them all; each position's coefficients depend on nothing else).
fn bilinear_coeffs(in_size: u32, out_size: u64, range: std::ops::Range<u64>) -> Coeffs {
    let support_base = 1.0f64;
    let scale = f64::from(in_size as f32) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support_base * filterscale;
    let ss = 1.0 / filterscale;
    let len = (range.end - range.start) as usize;
    let mut bounds = Vec::with_capacity(len);
    let mut weights = Vec::with_capacity(len);
    for xx in range {
        // PIL's ints are 32-bit; these are the same values wherever those are
        // in range, and do not wrap where an extreme resize takes them past it.
        let center = (xx as f64 + 0.5) * scale;
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size));
        let n = (xmax - xmin).max(0) as usize;
        let mut k: Vec<f64> = (0..n)
            .map(|x| {
                let t = ((x as i64 + xmin) as f64 - center + 0.5) * ss;
                let t = t.abs();
                if t < 1.0 {
                    1.0 - t
                } else {
                    0.0
                }
            })
            .collect();
        let ww: f64 = k.iter().fold(0.0, |a, &b| a + b);
        if ww != 0.0 {
            for v in &mut k {
                *v /= ww;
            }
        }
        let one = f64::from(1u32 << PRECISION_BITS);
        let fixed = k.iter().map(|&v| if v < 0.0 { (-0.5 + v * one) as i32 } else { (0.5 + v * one) as i32 }).collect();
        bounds.push((xmin as usize, n));
        weights.push(fixed);
    }
    Coeffs { bounds, weights }
}

fn clip8(ss: i64) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// PIL `Image.resize(size, Image.BILINEAR)` on an RGB image (`ImagingResample`
/// with 8-bit passes): two separable passes, each rounded to 8 bits.
///
/// Pillow 13 runs the vertical pass first when the height shrinks and
/// `in_h − out_h > 2 · (in_w − out_w)`, the horizontal pass first otherwise;
/// the rule was measured against Pillow 13.0 on 1,170 size pairs (every one
/// agrees) and matters because each pass rounds.
///
/// ```
/// let img = image::RgbImage::from_fn(2, 1, |x, _| image::Rgb([if x == 0 { 0 } else { 200 }; 3]));
/// let r = resnet50::preprocess::resize_bilinear(&img, 1, 1);
/// assert_eq!(r.get_pixel(0, 0).0, [100; 3]); // halving averages the two pixels
/// let up = resnet50::preprocess::resize_bilinear(&img, 4, 3);
/// assert_eq!((up.dimensions(), up.get_pixel(0, 0).0, up.get_pixel(3, 2).0), ((4, 3), [0; 3], [200; 3]));
/// ```
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = (u64::from(width), u64::from(height));
    resize_bilinear_window(img, (w, h), 0..w, 0..h)
}

/// Columns `xs` × rows `ys` of [`resize_bilinear`]`(img, size.0, size.1)`,
/// computed without the rest: the same passes in the same order (which
/// depends on the whole sizes), each over the output positions in the window
/// and the source rows or columns they read.
fn resize_bilinear_window(
    img: &RgbImage,
    (width, height): (u64, u64),
    xs: std::ops::Range<u64>,
    ys: std::ops::Range<u64>,
) -> RgbImage {
    let (iw, ih) = img.dimensions();
    let need_h = width != u64::from(iw);
    let need_v = height != u64::from(ih);
    let src = img.as_raw();
    let (w, h) = ((xs.end - xs.start) as usize, (ys.end - ys.start) as usize);
    let iwu = iw as usize;
    let (ih64, iw64) = (i128::from(ih), i128::from(iw));
    let vertical_first =
        need_h && need_v && height < u64::from(ih) && ih64 - i128::from(height) > 2 * (iw64 - i128::from(width));
    let horizontal = || bilinear_coeffs(iw, width, xs.clone());
    let vertical = || bilinear_coeffs(ih, height, ys.clone());
    // Without a pass along an axis the window's pixels on it are the source's.
    let (x0, y0) = (xs.start as usize, ys.start as usize);
    let data = match (need_h, need_v) {
        (false, false) => columns(&src[y0 * iwu * 3..(y0 + h) * iwu * 3], iwu, x0..x0 + w),
        (true, false) => horizontal_pass(src, iwu, y0..y0 + h, &horizontal()),
        (false, true) => columns(&vertical_pass(src, iwu, 0, &vertical()), iwu, x0..x0 + w),
        (true, true) if vertical_first => {
            let tmp = vertical_pass(src, iwu, 0, &vertical());
            horizontal_pass(&tmp, iwu, 0..h, &horizontal())
        }
        (true, true) => {
            // Horizontal pass over the rows the vertical pass reads.
            let vert = vertical();
            let first = vert.bounds.first().map_or(0, |b| b.0);
            let last = vert.bounds.last().map_or(0, |b| b.0 + b.1);
            let tmp = horizontal_pass(src, iwu, first..last, &horizontal());
            vertical_pass(&tmp, w, first, &vert)
        }
    };
    // w <= width and h <= height, which callers keep within u32.
    RgbImage::from_raw(w as u32, h as u32, data).expect("buffer size")
}

/// Columns `cols` of each row of a `width`-wide RGB buffer.
fn columns(rows: &[u8], width: usize, cols: std::ops::Range<usize>) -> Vec<u8> {
    if cols == (0..width) {
        return rows.to_vec();
    }
    let mut out = Vec::with_capacity(rows.len() / width.max(1) * cols.len() * 3);
    for row in rows.chunks_exact(width * 3) {
        out.extend_from_slice(&row[cols.start * 3..cols.end * 3]);
    }
    out
}

/// PIL `ImagingResampleHorizontal_8bpc` over `rows` of a `width`-wide RGB buffer.
fn horizontal_pass(src: &[u8], width: usize, rows: std::ops::Range<usize>, k: &Coeffs) -> Vec<u8> {
    let half = 1i64 << (PRECISION_BITS - 1);
    let ow = k.bounds.len();
    let mut out = vec![0u8; rows.len() * ow * 3];
    for (r, y) in rows.enumerate() {
        let srow = &src[y * width * 3..][..width * 3];
        let drow = &mut out[r * ow * 3..][..ow * 3];
        for (xx, (&(xmin, n), kk)) in k.bounds.iter().zip(&k.weights).enumerate() {
            let mut acc = [half; 3];
            for (i, &kv) in kk.iter().enumerate().take(n) {
                let p = &srow[(xmin + i) * 3..][..3];
                for c in 0..3 {
                    acc[c] += i64::from(p[c]) * i64::from(kv);
                }
            }
            for c in 0..3 {
                drow[xx * 3 + c] = clip8(acc[c]);
            }
        }
    }
    out
}

/// PIL `ImagingResampleVertical_8bpc` on a `width`-wide RGB buffer whose first
/// row is source row `row0`.
fn vertical_pass(src: &[u8], width: usize, row0: usize, k: &Coeffs) -> Vec<u8> {
    let half = 1i64 << (PRECISION_BITS - 1);
    let stride = width * 3;
    let mut out = vec![0u8; k.bounds.len() * stride];
    for (yy, (&(ymin, n), kk)) in k.bounds.iter().zip(&k.weights).enumerate() {
        let orow = &mut out[yy * stride..][..stride];
        for (xc, o) in orow.iter_mut().enumerate() {
            let mut acc = half;
            for (i, &kv) in kk.iter().enumerate().take(n) {
                acc += i64::from(src[(ymin - row0 + i) * stride + xc]) * i64::from(kv);
            }
            *o = clip8(acc);
        }
    }
    out
}

/// Keras `img_to_array` + `preprocess_input(mode="caffe")` into `out` (HWC, BGR).
///
/// # Panics
///
/// If `out.len()` is not `3 × width × height` of `img`.
///
/// ```
/// let img = image::RgbImage::from_pixel(2, 2, image::Rgb([10, 20, 30]));
/// let mut out = vec![0.0; 2 * 2 * 3];
/// resnet50::preprocess::keras_caffe_into(&img, &mut out);
/// assert_eq!(out[9..], [30.0 - 103.939, 20.0 - 116.779, 10.0 - 123.68]); // BGR minus the means
/// ```
pub fn keras_caffe_into(img: &RgbImage, out: &mut [f32]) {
    assert_eq!(out.len(), img.as_raw().len(), "output slice length");
    for (o, p) in out.chunks_exact_mut(3).zip(img.as_raw().chunks_exact(3)) {
        o[0] = f32::from(p[2]) - KERAS_CAFFE_MEAN_BGR[0];
        o[1] = f32::from(p[1]) - KERAS_CAFFE_MEAN_BGR[1];
        o[2] = f32::from(p[0]) - KERAS_CAFFE_MEAN_BGR[2];
    }
}

/// torchvision `ToTensor` (÷255) + `Normalize(mean, std)` into `out` (HWC, RGB),
/// with the same f32 operations in the same order.
///
/// # Panics
///
/// If `out.len()` is not `3 × width × height` of `img`.
///
/// ```
/// let img = image::RgbImage::from_pixel(1, 2, image::Rgb([255, 0, 255]));
/// let mut out = vec![0.0; 2 * 3];
/// resnet50::preprocess::torch_normalize_into(&img, &mut out);
/// assert!((out[3] - (1.0 - 0.485) / 0.229).abs() < 1e-6 && (out[4] + 0.456 / 0.224).abs() < 1e-6);
/// ```
pub fn torch_normalize_into(img: &RgbImage, out: &mut [f32]) {
    assert_eq!(out.len(), img.as_raw().len(), "output slice length");
    for (o, p) in out.chunks_exact_mut(3).zip(img.as_raw().chunks_exact(3)) {
        for c in 0..3 {
            o[c] = (f32::from(p[c]) / 255.0 - TORCH_MEAN[c]) / TORCH_STD[c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banker_rounding_of_crop_offsets() {
        // int(round(117 / 2)) == 58, int(round(3 / 2)) == 2, int(round(32 / 2)) == 16.
        assert_eq!(round_half_even_half(117), 58);
        assert_eq!(round_half_even_half(3), 2);
        assert_eq!(round_half_even_half(1), 0);
        assert_eq!(round_half_even_half(32), 16);
    }

    #[test]
    fn nearest_picks_pil_source_pixels() {
        // Downscale by 2: pixels 1, 3, 5 (floor((x + 0.5) * 2)).
        assert_eq!(nearest_indices(6, 3), vec![Some(1), Some(3), Some(5)]);
        // Upscale 2 → 4: 0, 0, 1, 1.
        assert_eq!(nearest_indices(2, 4), vec![Some(0), Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn bilinear_identity_and_constant() {
        let img = RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 200]));
        assert_eq!(resize_bilinear(&img, 9, 7), img);
        let flat = RgbImage::from_pixel(13, 11, image::Rgb([17, 99, 250]));
        let r = resize_bilinear(&flat, 5, 19);
        assert!(r.pixels().all(|p| p.0 == [17, 99, 250]));
    }

    #[test]
    fn a_cut_off_jpeg_is_an_error_not_a_gray_picture() {
        let pic = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, (x * y) as u8]));
        let mut jpg = Vec::new();
        pic.write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg).unwrap();
        assert!(decode_rgb(&jpg, "whole.jpg").is_ok());
        // Data after the image (a second picture, junk) does not matter.
        let mut appended = jpg.clone();
        appended.extend_from_slice(b"trailing bytes");
        assert!(decode_rgb(&appended, "appended.jpg").is_ok());
        // Cut inside the scan: the decoder alone decoded these (gray rows).
        for frac in [0.5, 0.8, 0.95, 0.999] {
            let cut = &jpg[..(jpg.len() as f64 * frac) as usize];
            let err = decode_rgb(cut, "cut.jpg").unwrap_err().to_string();
            assert!(err.contains("truncated") && err.contains("cut.jpg"), "{frac}: {err}");
        }
        let path = std::env::temp_dir().join(format!("resnet50-cut-{}.jpg", std::process::id()));
        std::fs::write(&path, &jpg[..jpg.len() - 2]).unwrap();
        let cut = open_rgb(&path).unwrap_err().to_string();
        // Not a JPEG at all, named .jpg: the decoder the extension picks says so.
        std::fs::write(&path, b"hello, this is not an image").unwrap();
        let garbage = open_rgb(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).ok();
        assert!(cut.contains("truncated"), "{cut}");
        assert!(garbage.contains("corrupt") && garbage.contains("resnet50-cut-"), "{garbage}");
    }

    #[test]
    fn the_crop_of_the_resize_is_computed_alone_with_the_same_bytes() {
        // Random sizes: both pass orders, an axis left as it is (size = the
        // shorter side), down- and upscaling, crops larger than the image.
        let mut seed = 0x9e37_79b9u32;
        let mut next = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            1 + seed % m
        };
        for i in 0..400 {
            let (w, h) = (next(90), next(90));
            let img =
                RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 37 + y * 11) as u8, (x * y) as u8, (x ^ y) as u8]));
            let size = if i % 4 == 0 { w.min(h) as usize } else { next(100) as usize };
            let (cw, ch) = (next(90), next(90));
            let two_steps = center_crop(&resize_shorter_side(&img, size, Interp::Bilinear), cw, ch);
            assert_eq!(
                resize_shorter_side_and_crop(&img, size, cw, ch),
                two_steps,
                "{w}×{h}, size {size}, crop {cw}×{ch}"
            );
        }
    }

    #[test]
    fn an_extreme_aspect_ratio_is_cropped_without_the_resized_image() {
        // Resized whole: 256 × 16 776 960 pixels (12.9 GB). Rows of the strip
        // alternate dark and light in blocks of 1 000: the crop's middle rows
        // come from the strip's middle.
        let strip = RgbImage::from_fn(1, 65_535, |_, y| image::Rgb([if (y / 1000) % 2 == 0 { 10 } else { 240 }; 3]));
        let c = resize_shorter_side_and_crop(&strip, 256, 224, 224);
        assert_eq!(c.dimensions(), (224, 224));
        // Source row ≈ 32 767 (block 32, dark) for every output row.
        assert!(c.pixels().all(|p| p.0 == [10; 3]), "{:?}", c.get_pixel(0, 0));
        let wide = RgbImage::from_pixel(65_535, 2, image::Rgb([7, 8, 9]));
        let c = resize_shorter_side_and_crop(&wide, 256, 300, 200);
        // 256 rows resized, cropped to 200; 300 columns of the 8 388 480.
        assert!(c.pixels().all(|p| p.0 == [7, 8, 9]));
    }

    #[test]
    fn shorter_side_resize_and_crop_sizes() {
        let img = RgbImage::new(640, 480);
        let r = resize_shorter_side(&img, 256, Interp::Bilinear);
        assert_eq!(r.dimensions(), (341, 256));
        let c = center_crop(&r, 224, 224);
        assert_eq!(c.dimensions(), (224, 224));
        // Smaller than the crop: padded with black.
        let small = RgbImage::from_pixel(3, 2, image::Rgb([255, 255, 255]));
        let c = center_crop(&small, 5, 5);
        assert_eq!(c.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(1, 1).0, [255, 255, 255]);
    }
}
