//! The pickle reader behind PyTorch checkpoints, on raw pickle bytes (no zip
//! in front, so the fuzzer reaches every opcode directly).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet50::loaders::pickle::load(data);
});
