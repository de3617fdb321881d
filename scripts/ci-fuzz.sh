#!/usr/bin/env bash
# Fuzz every parser of outside bytes for a short fixed time (called by .ci/run).
#   native              the native weights parser on arbitrary bytes
#   native_checksummed  the same past the checksum (length and checksum fixed up)
#   safetensors         safetensors parsing + the ResNet50 name/shape/dtype mapping
#   keras_h5            HDF5 parsing (hdf5-pure) + the Keras layer mapping
#   infer               the inference API (build, reshape, session, predict,
#                       predict_into, features) on arbitrary configurations,
#                       absurd sizes and non-finite inputs
# FUZZ_SECONDS (default 35, at most 60) per target. Needs cargo-fuzz (installed
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

cd fuzz
# Seed corpora: small, structurally valid files with ResNet50 names (built
# with the default toolchain, into the main target dir, reusing its deps).
CARGO_TARGET_DIR="${FUZZ_SEEDS_TARGET_DIR:-../target}" cargo run --quiet --example seeds

status=0
for target in native native_checksummed safetensors keras_h5 infer; do
    echo "== fuzz $target for ${secs}s"
    mkdir -p "corpus/$target"
    if ! cargo "${toolchain[@]}" fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 2>&1 |
        tee "/tmp/fuzz-$target.log" | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|thread .* panicked)"; then
        :
    fi
    if grep -qE "panicked|ERROR: libFuzzer|SUMMARY: libFuzzer|deadly signal" "/tmp/fuzz-$target.log"; then
        echo "fuzz target $target found a crash; artifacts under fuzz/artifacts/$target" >&2
        tail -40 "/tmp/fuzz-$target.log" >&2
        status=1
    fi
done
exit $status
