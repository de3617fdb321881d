//! Image bytes through decoding and both preprocessing pipelines, as
//! `resnet50 classify` and `preprocess` run them: an `Err` for what does not
//! decode (or has no pixels), never a panic; a decoded image of any size or
//! aspect ratio gives a tensor of the pipeline's length with finite values —
//! torchvision's resize of a 1 × 60 000 strip included, which must not build
//! the whole resized image.
#![no_main]
use libfuzzer_sys::fuzz_target;
use resnet50::preprocess::{decode_rgb, Interp, Preprocessing};

fuzz_target!(|data: &[u8]| {
    // The first byte picks small output sizes (each input stays quick).
    let Some((&pick, bytes)) = data.split_first() else { return };
    let Ok(img) = decode_rgb(bytes, "fuzz") else { return };
    let (w, h) = img.dimensions();
    assert!(w > 0 && h > 0, "decode_rgb returned a {w}×{h} image");
    let (a, b) = (1 + usize::from(pick & 15), 1 + usize::from(pick >> 4));
    let interp = if pick & 1 == 0 { Interp::Nearest } else { Interp::Bilinear };
    for p in [
        Preprocessing::Keras { height: a, width: b, interp },
        Preprocessing::Torch { resize: a + b, height: a, width: b },
        // A crop larger than the resized image: padded.
        Preprocessing::Torch { resize: a, height: b + 8, width: a + 3 },
    ] {
        let x = p.apply(&img);
        assert_eq!(x.len(), p.output_len(), "{p:?} on {w}×{h}");
        assert!(x.iter().all(|v| v.is_finite()), "{p:?} on {w}×{h}");
    }
});
