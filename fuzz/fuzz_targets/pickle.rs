//! The pickle reader behind PyTorch checkpoints, on raw pickle bytes (no zip
//! in front, so the fuzzer reaches every opcode directly), and legacy
//! (pre-zip) checkpoints, which are pickles in a row and then raw storages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use resnet50::loaders::{pickle, pytorch};

fuzz_target!(|data: &[u8]| {
    if data.starts_with(pytorch::LEGACY_MAGIC) {
        let _ = pytorch::from_legacy_bytes(std::path::Path::new("fuzz.pth"), data);
    } else {
        let _ = pickle::load(data);
    }
});
