//! `.npy` bytes, as `resnet50 infer --input` reads them: `Err`, never a panic
//! or an allocation the bytes do not back; a parsed array's shape holds
//! exactly its values.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((shape, values)) = resnet50::npy::parse_f32(data) {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape {shape:?}");
    }
});
