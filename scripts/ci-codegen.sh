#!/usr/bin/env bash
# Codegen check of the x86-64 GEMM microkernels: between a kernel's first and last FMA
# (its k loop) no vector register is stored to the stack.
#
# Why: a harmless-looking change to the AVX-512 kernel's loop structure (one k loop per
# prefetch case) once made LLVM spill all 16 accumulators after every FMA. Every test
# still passed and the kernel ran at 36–41 % of the FMA peak instead of ~90 %; on these
# noisy shared machines no timing test could have caught it, this static check does.
# It disassembles the kernels crate's release unit-test binary (built by the README's
# test command, so reused here), which holds every instance of both kernels; the
# check does not need a CPU with AVX-512.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

if [ "$(uname -m)" != x86_64 ]; then
    echo "ci-codegen: x86-64 kernels only; this host is $(uname -m), nothing to check"
    exit 0
fi
command -v objdump >/dev/null || { echo "ci-codegen: objdump (binutils) not found" >&2; exit 1; }

bin=$(cargo test --locked --release -p resnet50-kernels --lib --no-run --message-format=json |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "resnet50_kernels":
        print(m["executable"])
')
[ -n "$bin" ] || { echo "ci-codegen: no unit-test binary for resnet50-kernels" >&2; exit 1; }
echo "ci-codegen: $bin"

objdump -d --no-show-raw-insn -C "$bin" | awk '
    function finish() {
        if (fn == "") return
        kernels[isa]++
        if (first == 0) { printf "%s: no FMA found\n", fn; bad++ }
        for (i = 1; i <= ns; i++) if (store[i] > first && store[i] < last) {
            printf "%s: vector store to the stack inside the k loop: %s\n", fn, text[i]; bad++
        }
        fn = ""
    }
    /^[0-9a-f]+ <.*>:$/ {
        finish()
        if ($0 ~ /<resnet50_kernels::gemm::avx(2|512)::kernel>:$/) {
            fn = $0; isa = ($0 ~ /avx512/) ? "avx512" : "avx2"; n = 0; first = 0; last = 0; ns = 0
        }
        next
    }
    fn != "" {
        n++
        if ($0 ~ /vfmadd/) { if (first == 0) first = n; last = n }
        if ($0 ~ /vmov[au]ps[ \t]+%[xyz]mm[0-9]+,[^,]*\(%[er]sp\)/) { ns++; store[ns] = n; text[ns] = $0 }
    }
    END {
        finish()
        printf "ci-codegen: %d AVX2 and %d AVX-512 microkernel instances checked\n", kernels["avx2"], kernels["avx512"]
        # 6 row counts (AVX2), 8 row counts x 2 widths (AVX-512).
        if (kernels["avx2"] < 6 || kernels["avx512"] < 16) { print "ci-codegen: expected at least 6 and 16 instances"; bad++ }
        if (bad) { printf "ci-codegen: FAILED (%d problems)\n", bad; exit 1 }
        print "ci-codegen: ok, no spills in the k loops"
    }'
