#!/usr/bin/env python3
"""Checks that the GEMM microkernels keep their accumulators in registers.

Reads `objdump -d --no-show-raw-insn -C` output (x86-64 or aarch64) on stdin and,
in every function whose name matches FN_REGEX, finds the loops (a branch at
address B to a target T <= B makes [T, B] a loop) that contain FMAs — the k loops —
and fails if any vector register is stored to or loaded from the stack inside one.

Why: a loop-structure change once made LLVM spill all 16 accumulators of the AVX-512
kernel after every FMA. Every test passed and the kernel ran at 36-41 % of the FMA
peak instead of ~90 %; on noisy shared machines no timing test could catch that, this
static check does, without needing the CPU the code is for.

    objdump -d --no-show-raw-insn -C BIN | python3 scripts/codegen_spills.py FN_REGEX MIN_FUNCTIONS
"""

import re
import sys

FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s*([0-9a-f]+):\t(.*)$")
FMA = re.compile(r"\b(vfn?madd\w*|fmla)\b")
# x86-64: vmovaps/vmovups of an xmm/ymm/zmm to or from (%rsp), or (%rbp) in a
# function that keeps a frame pointer; aarch64: str/stp/stur/ldr/ldp/ldur of a
# q register with [sp.
SPILL = re.compile(
    r"\bvmov[au]p[sd]\s+(%[xyz]mm\d+,[^,]*\(%[er]sp\)|[^,]*\(%[er]sp\),%[xyz]mm\d+)"
    r"|\b(str|stp|stur|ldr|ldp|ldur)\s+q\d+.*\[sp"
)
SPILL_RBP = re.compile(r"\bvmov[au]p[sd]\s+(%[xyz]mm\d+,[^,]*\(%[er]bp\)|[^,]*\(%[er]bp\),%[xyz]mm\d+)")
# Without `mov %rsp,%rbp` the function has no frame pointer and %rbp is one more
# general register (a B panel pointer, say): its loads are not spills.
FRAME_POINTER = re.compile(r"^mov\s+%rsp,%rbp$")
# x86 `jcc/jmp <hex> <sym>`; aarch64 `b`, `b.cond`, `cbz`, `cbnz`, `tbz`, `tbnz ... <hex> <sym>`.
BRANCH = re.compile(r"^(j[a-z]+|b|b\.[a-z]+|cbn?z|tbn?z)\s.*?\b([0-9a-f]+) <")


def check(name, insns):
    """Findings for one function; insns: [(address, text)]."""
    findings, loops = [], 0
    frame_pointer = any(FRAME_POINTER.match(t) for _, t in insns)
    back = []  # (target, branch address) of every backward branch
    for addr, text in insns:
        m = BRANCH.match(text)
        if m and int(m.group(2), 16) <= addr:
            back.append((int(m.group(2), 16), addr))
    for target, addr in back:
        # Innermost loops only: an address range that holds another backward
        # branch may be an outer loop, or unrelated blocks laid out between a
        # jump and its target.
        if any(target <= t and b < addr for t, b in back if (t, b) != (target, addr)):
            continue
        body = [(a, t) for a, t in insns if target <= a <= addr]
        if not any(FMA.search(t) for _, t in body):
            continue
        loops += 1
        findings += [
            f"{name}: vector register spilled inside a k loop: {a:x}: {t}"
            for a, t in body
            if SPILL.search(t) or (frame_pointer and SPILL_RBP.search(t))
        ]
    if loops == 0:
        findings.append(f"{name}: no loop with FMAs found")
    return sorted(set(findings)), loops


def main():
    pattern, want = re.compile(sys.argv[1]), int(sys.argv[2])
    functions, name, insns = [], None, []
    for line in sys.stdin:
        line = line.rstrip("\n")
        f = FUNC.match(line)
        if f:
            if name is not None:
                functions.append((name, insns))
            name, insns = (f.group(1), []) if pattern.search(f.group(1)) else (None, [])
            continue
        i = INSN.match(line)
        if name is not None and i:
            insns.append((int(i.group(1), 16), i.group(2)))
    if name is not None:
        functions.append((name, insns))
    bad, loops = [], 0
    for name, insns in functions:
        findings, n = check(name, insns)
        bad += findings
        loops += n
    for b in bad:
        print(b)
    print(f"codegen-spills: {len(functions)} functions matching {sys.argv[1]!r}, {loops} loops with FMAs checked")
    if len(functions) < want:
        bad.append("too few functions")
        print(f"codegen-spills: expected at least {want} functions")
    if bad:
        print(f"codegen-spills: FAILED ({len(bad)} findings)")
        sys.exit(1)
    print("codegen-spills: ok")


if __name__ == "__main__":
    main()
