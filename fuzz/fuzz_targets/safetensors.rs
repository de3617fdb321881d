//! safetensors parsing and the name/shape/dtype mapping onto ResNet50.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet50::loaders::safetensors::from_bytes(std::path::Path::new("fuzz.safetensors"), data);
});
