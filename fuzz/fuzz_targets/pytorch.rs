//! PyTorch zip checkpoints: the zip directory (the zip crate), member slicing,
//! the pickle reader and the tensor views, then the name/shape mapping onto
//! ResNet50.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet50::loaders::pytorch::from_bytes(std::path::Path::new("fuzz.pth"), data);
});
