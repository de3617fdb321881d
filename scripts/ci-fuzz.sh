#!/usr/bin/env bash
# Fuzz every parser of outside bytes for a short fixed time (called by .ci/run).
#   native              the native weights parser on arbitrary bytes
#   native_checksummed  the same past the checksum (length and checksum fixed up)
#   safetensors         safetensors parsing + the ResNet50 name/shape/dtype mapping
#   keras_h5            HDF5 parsing (hdf5-pure) + the Keras layer mapping
#   archive             zip archives: PyTorch checkpoints (data.pkl, tensor views)
#                       and .keras models, + the ResNet50 name/shape mapping
#   pickle              the pickle reader behind them, on raw pickle bytes, and
#                       legacy (pre-zip) PyTorch checkpoints
#   onnx                ONNX models: protobuf fields, nodes, attributes,
#                       initializers, the walk of ResNet50's graph
#   infer               the inference API (build, reshape, session, predict,
#                       predict_into, features) on arbitrary configurations,
#                       absurd sizes and non-finite inputs
#   proc_stat           the /proc/stat parser of the steal time (resnet50::steal)
#   npy                 the .npy parser behind `resnet50 infer --input`
#   image               image decoding (the image crate) + both preprocessing
#                       pipelines (resnet50::preprocess) on any decoded size
# FUZZ_SECONDS (default 35, at most 60) per target, FUZZ_JOBS targets at a time
# (default: the core count). Needs cargo-fuzz (installed
# here if missing) and a nightly compiler: the nightly toolchain when rustup has
# one, otherwise stable with RUSTC_BOOTSTRAP=1. No sanitizer (the code under
# test has no unsafe; panics, overflows and OOMs are what we look for).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-35}"
[ "$secs" -gt 60 ] && secs=60

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install --locked cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

# Seed corpora: small, structurally valid files with ResNet50 names (the main
# crate's example, so it reuses the release build of the README's tests).
cargo run --locked --quiet --release --example fuzz_seeds -- fuzz/corpus
cd fuzz

# The targets run side by side, one per core (FUZZ_JOBS, default the core count):
# each is single-threaded, and CI's cores are otherwise idle by now.
jobs="${FUZZ_JOBS:-$(nproc)}"
[ "$jobs" -ge 1 ] || jobs=1
targets=(native native_checksummed safetensors keras_h5 archive pickle onnx infer proc_stat npy image)
echo "== building the fuzz targets"
cargo "${toolchain[@]}" fuzz build --sanitizer none

fuzz_one() {
    local target=$1
    mkdir -p "corpus/$target"
    cargo "${toolchain[@]}" fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 \
        >"/tmp/fuzz-$target.log" 2>&1 || true
}

status=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    batch=("${targets[@]:i:jobs}")
    echo "== fuzz ${batch[*]} for ${secs}s"
    for target in "${batch[@]}"; do
        fuzz_one "$target" &
    done
    wait
    for target in "${batch[@]}"; do
        echo "-- $target"
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|thread .* panicked)" \
            "/tmp/fuzz-$target.log" || true
        if grep -qE "panicked|ERROR: libFuzzer|SUMMARY: libFuzzer|deadly signal" "/tmp/fuzz-$target.log"; then
            echo "fuzz target $target found a crash; artifacts under fuzz/artifacts/$target" >&2
            tail -40 "/tmp/fuzz-$target.log" >&2
            status=1
        elif ! grep -q "^stat::number_of_executed_units" "/tmp/fuzz-$target.log"; then
            echo "fuzz target $target did not run (no final stats)" >&2
            tail -40 "/tmp/fuzz-$target.log" >&2
            status=1
        fi
    done
done
exit $status
