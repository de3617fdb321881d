//! The native weights parser on arbitrary bytes: `Err`, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet50::loaders::native::parse(std::path::Path::new("fuzz.r50w"), data);
    let _ = resnet50::loaders::detect(&data[..data.len().min(16)], data.len() as u64);
});
