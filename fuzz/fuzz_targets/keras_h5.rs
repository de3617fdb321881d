//! HDF5 parsing (hdf5-pure) and the Keras layer/weight-name mapping.
//! libfuzzer's panic hook aborts before `catch_unwind` in the loader can
//! swallow a panic, so reader panics are found too.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet50::loaders::keras_h5::from_bytes(std::path::Path::new("fuzz.h5"), data);
});
