//! Zip archives of weights: the zip directory (the zip crate), member slicing,
//! then a PyTorch checkpoint's pickle and tensor views, or a `.keras` model's
//! `model.weights.h5`, and the name/shape mapping onto ResNet50.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet50::loaders::archive::from_bytes(std::path::Path::new("fuzz.pth"), data);
});
