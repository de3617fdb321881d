//! ONNX models: the protobuf wire reader, the graph's nodes, attributes and
//! initializers, the structural walk of ResNet50 and the tensor decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet50::loaders::onnx::from_bytes(std::path::Path::new("fuzz.onnx"), data);
});
