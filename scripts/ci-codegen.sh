#!/usr/bin/env bash
# Codegen check of the x86-64 GEMM microkernels: no vector register is stored to or
# loaded from the stack inside a k loop (scripts/codegen_spills.py; ci-aarch64.sh runs
# the same check on the NEON kernel).
#
# Why: a harmless-looking change to the AVX-512 kernel's loop structure (one k loop per
# prefetch case) once made LLVM spill all 16 accumulators after every FMA. Every test
# still passed and the kernel ran at 36–41 % of the FMA peak instead of ~90 %; on these
# noisy shared machines no timing test could have caught it, this static check does.
# It disassembles the kernels crate's release unit-test binary (the README's test
# command builds it, so it is reused here), which holds every instance of the three kernels; the
# check does not need a CPU with AVX-512.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

if [ "$(uname -m)" != x86_64 ]; then
    echo "ci-codegen: x86-64 kernels only; this host is $(uname -m), nothing to check"
    exit 0
fi
command -v objdump >/dev/null || { echo "ci-codegen: objdump (binutils) not found" >&2; exit 1; }

bin=$(cargo test --locked --release --workspace --no-run --message-format=json |
    python3 -c '
import json, sys
found = [m["executable"] for m in map(json.loads, sys.stdin)
         if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "resnet50_kernels"]
print(found[0] if found else "")
')
[ -n "$bin" ] || { echo "ci-codegen: no unit-test binary for resnet50-kernels" >&2; exit 1; }
echo "ci-codegen: $bin"

# 12 AVX2 instances (row counts × A rows in one run or several), 32 AVX-512 8×32 ones (row counts × two widths × A rows
# in one run or several), 16 tall AVX-512 ones (row counts), 24 of the AVX-512 12×32 kernel
# (row counts × the two broadcast forms; its k loop is assembly, but the accumulators must stay in the registers it
# names across the Rust between its asm blocks (groups, or runs and the last steps): an epilogue written as one fused loop once kept
# them on the stack).
objdump -d --no-show-raw-insn -C "$bin" |
    python3 scripts/codegen_spills.py 'gemm::(avx(2|512)::(tall_)?kernel|avx512_wide::wide_kernel)$' 84

# The 12×32 kernel's asm loops take the sums in registers only if `RegLoop::groups` is
# inlined into `wide_kernel`; called through, all 24 go to memory and back around every
# run — no spill inside a k loop, so the check above does not see it. That happened once
# (three strided loops in one `groups`): v1.5 1.04× the time, the stem 1.18×.
if nm -C "$bin" | grep -q 'avx512_wide::RegLoop::groups'; then
    echo "ci-codegen: avx512_wide::RegLoop::groups was not inlined into wide_kernel" >&2
    exit 1
fi
echo "ci-codegen: RegLoop::groups inlined"
