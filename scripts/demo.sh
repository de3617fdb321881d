#!/usr/bin/env bash
# The main job in one command, on a fresh clone, with no downloads:
# build the `resnet50` CLI, classify images, show the preprocessed tensor, benchmark.
#
#   scripts/demo.sh                      # the committed test images, seeded random weights
#   scripts/demo.sh photo.jpg dir/       # your own images (files or directories)
#   RESNET50_WEIGHTS=resnet50_weights_tf_dim_ordering_tf_kernels.h5 scripts/demo.sh photo.jpg
#
# Without RESNET50_WEIGHTS the model has seeded random weights (Keras initializers):
# it runs the real network at full cost, but the class labels it prints are meaningless.
# Environment: RESNET50_WEIGHTS (weights file), RESNET50_VARIANT (v1 | v1.5, default v1),
# THREADS (default: all cores), CARGO_TARGET_DIR (as for cargo).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

threads=${THREADS:-$(nproc 2>/dev/null || echo 1)}
variant=${RESNET50_VARIANT:-v1}
bin="${CARGO_TARGET_DIR:-target}/release/resnet50"
images=("$@")
if [ ${#images[@]} -eq 0 ]; then
    images=(tests/fixtures/images/rgb_96x72.jpg tests/fixtures/images/rgb_61x47.png tests/fixtures/images/gray_50x70.png)
fi
weights=()
if [ -n "${RESNET50_WEIGHTS:-}" ]; then
    weights=(--weights "$RESNET50_WEIGHTS")
else
    say "No RESNET50_WEIGHTS given: using SEEDED RANDOM weights. The network runs for real, but the labels below are MEANINGLESS."
fi

say "1/4 Building the resnet50 CLI in release mode (first time: a few minutes)"
run cargo build --release --quiet --bin resnet50

say "2/4 Classifying ${#images[@]} input(s): decode, Keras/torchvision preprocessing, ResNet50 ($variant), top-5 ImageNet classes"
run "$bin" classify "${weights[@]}" --variant "$variant" --threads "$threads" --top 5 "${images[@]}"

say "3/4 The tensor classify feeds the model for ${images[0]} (NHWC f32 .npy, usable with 'resnet50 infer')"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pre=keras
[ "$variant" = "v1.5" ] && pre=torch
run "$bin" preprocess "${images[0]}" --preprocess "$pre" --output "$tmp/x.npy"

say "4/4 Benchmark: 224x224, batch 1, $threads thread(s)"
run "$bin" bench "${weights[@]}" --variant "$variant" --threads "$threads" --batch 1 --iters 10

say "Done."
