#!/usr/bin/env bash
# aarch64 (NEON) check: cross-compile the kernels crate with Debian's rustc-web and
# its aarch64 std, then run `kernels/tests/isa_check.rs` under qemu-user.
# See docs/aarch64.md. The check test has `harness = false` and runs everything on
# the main thread: creating threads hangs under qemu-user on these machines.
#
# Environment:
#   CI_AARCH64_SKIP_INSTALL=1  never call apt-get (fail if the toolchain is missing)
#   CI_AARCH64_CARGO_TEST=1    run the check through `cargo test` (builds dev-dependencies)
#   CI_AARCH64_TIMEOUT=S       limit for the qemu run (default 900 s)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

TARGET=aarch64-unknown-linux-gnu
DEB_RUSTC=/usr/bin/rustc
SYSROOT_LIB=/usr/lib/rustlib/$TARGET

need_install() {
    [ -x "$DEB_RUSTC" ] && [ -d "$SYSROOT_LIB/lib" ] &&
        command -v aarch64-linux-gnu-gcc >/dev/null &&
        command -v qemu-aarch64 >/dev/null && return 1
    return 0
}

if need_install; then
    if [ "${CI_AARCH64_SKIP_INSTALL:-0}" = 1 ]; then
        echo "ci-aarch64: cross toolchain missing and CI_AARCH64_SKIP_INSTALL=1" >&2
        exit 1
    fi
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "== installing the aarch64 cross toolchain (rustc-web, arm64 std, gcc, qemu-user)"
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        qemu-user
fi

export RUSTC=$DEB_RUSTC
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_AARCH64:-target/aarch64-cross}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# The host rustup toolchain's RUSTFLAGS/wrappers must not leak into the Debian rustc.
unset RUSTC_WRAPPER RUSTFLAGS CARGO_BUILD_RUSTFLAGS

start=$(date +%s)
echo "== aarch64 toolchain"
cargo --version
"$RUSTC" --version

# 1. The whole workspace compiles for aarch64 (root package and CLI included);
#    `check` (no codegen) keeps this cheap; warnings are errors, as clippy makes
#    them on x86-64 (code that only x86-64 reads shows up here).
echo "== cross check: whole workspace (lib + bins), -D warnings"
RUSTFLAGS="-D warnings" cargo check --locked --target "$TARGET" --workspace

# 2. The kernels crate, release, and the check test under qemu.
OUT=$CARGO_TARGET_DIR/$TARGET/release
if [ "${CI_AARCH64_CARGO_TEST:-0}" = 1 ]; then
    # The documented way (docs/aarch64.md); also builds the dev-dependencies
    # (criterion, proptest, matrixmultiply), which the check does not use.
    echo "== cross build + run under qemu: cargo test -p resnet50-kernels --test isa_check"
    cargo test --locked --release --target "$TARGET" -p resnet50-kernels --test isa_check
    bin=$(ls -t "$OUT"/deps/isa_check-* | grep -v '\.d$' | head -1)
else
    # Faster: the check only needs the kernels library, so build that with
    # cargo and compile the harness-less test file against it with rustc.
    echo "== cross build: resnet50-kernels (release)"
    cargo build --locked --release --target "$TARGET" -p resnet50-kernels --lib
    echo "== compile kernels/tests/isa_check.rs against it"
    "$RUSTC" --edition 2024 --crate-type bin --crate-name isa_check \
        --target "$TARGET" -C opt-level=3 -C codegen-units=4 \
        -C linker=aarch64-linux-gnu-gcc -D warnings \
        --extern resnet50_kernels="$OUT/libresnet50_kernels.rlib" -L "dependency=$OUT/deps" \
        -o "$OUT/isa_check" kernels/tests/isa_check.rs
    echo "== run under qemu-aarch64 (main thread only)"
    timeout "${CI_AARCH64_TIMEOUT:-900}" qemu-aarch64 -L /usr/aarch64-linux-gnu "$OUT/isa_check"
    bin=$OUT/isa_check
fi
# 3. The NEON GEMM microkernel keeps its accumulators in registers inside its k
#    loop (scripts/codegen_spills.py; ci-codegen.sh does the same for x86-64).
echo "== codegen: no vector spills in the NEON GEMM k loops ($bin)"
aarch64-linux-gnu-objdump -d --no-show-raw-insn -C "$bin" |
    python3 scripts/codegen_spills.py 'gemm::neon::(kernel|Neon as .*Microkernel>::tile)$' 1
echo "== ci-aarch64 done ($(($(date +%s) - start)) s build+run)"
