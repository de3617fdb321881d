#!/usr/bin/env python3
"""Two-thread scaling, paired: one thread against two, round by round, for us and the peers.

compare.py runs its configurations one after the other (all rounds of batch 1 at one
thread, then all at two), so a one-thread median and a two-thread median come from
windows minutes apart, and on a shared host the speed of the machine moves between
them — stop 56's three runs of the same binary gave 1.82–1.97x for v1. Here each round
runs every engine at one thread and at two back to back (fresh processes, in a
rotating order), so each round gives one ratio per engine from the same minute of the
host; the medians of those ratios are the figures to quote, beside the ratio of
the medians.

    .venv-compare/bin/python bench/compare/scaling.py --variants v1,v1.5 --rounds 7

Same graph, weights and engine settings as compare.py (OpenVINO f32 forced, ONNX Runtime
with all graph optimisations), batch 1 unless --batch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as C  # noqa: E402

NAMES = {"ort": "ONNX Runtime", "ov": "OpenVINO", "ours": "resnet50"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="v1,v1.5", help="comma list of v1, v1.5 (default both)")
    ap.add_argument("--engines", default="ov,ours", help="comma list of ort, ov, ours (default ov,ours)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="the thread count set against one (default 2)")
    ap.add_argument("--rounds", type=int, default=7, help="rounds per variant (default 7)")
    ap.add_argument("--seconds-per-round", type=float, default=2.0,
                    help="target timed seconds per engine and thread count per round (default 2.0)")
    ap.add_argument("--binary", default=str(C.REPO / "target/release/resnet50"))
    ap.add_argument("--ours-args", default="", help="extra flags for `resnet50 bench`")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if any(v not in ("v1", "v1.5") for v in variants):
        ap.error(f"--variants {args.variants!r}: v1 and/or v1.5")
    if not engines or any(e not in NAMES for e in engines):
        ap.error(f"--engines {args.engines!r}: some of ort, ov, ours")
    if not 1 <= args.batch <= 64 or not 2 <= args.threads <= 256 or not 2 <= args.rounds <= 100:
        ap.error("--batch 1..64, --threads 2..256, --rounds 2..100")
    binary = Path(args.binary)
    if "ours" in engines and not binary.is_file():
        ap.error(f"{binary} not found: build it first with `cargo build --release` in {C.REPO}")

    m = C.machine_info()
    print(f"machine: {m.get('cpu', '?')}, {m['cpus']} cpus; batch {args.batch}, 1 against "
          f"{args.threads} threads, {args.rounds} rounds", flush=True)
    tmp = tempfile.TemporaryDirectory(prefix="resnet50-scaling-")
    rows = []
    t_start = time.perf_counter()
    for variant in variants:
        path = Path(tmp.name) / f"resnet50_{variant}_b{args.batch}.onnx"
        peers = [e for e in engines if e != "ours"]
        if peers:
            import onnx

            onnx.save(C.build_onnx(variant, args.batch, 224, 224,
                                   weights=C.deterministic_weights(variant, 1000)), str(path))
            xpath = Path(tmp.name) / f"input_b{args.batch}.npy"
            np.save(xpath, C.deterministic_input(args.batch, 224, 224).transpose(0, 3, 1, 2).copy())
        eng = {}
        for e in engines:
            for t in (1, args.threads):
                if e == "ours":
                    eng[(e, t)] = C.OursEngine(binary, variant, t, args.batch, args.ours_args.split())
                else:
                    spec = {"model": str(path), "threads": t, "spinning": "default", "hint": "latency",
                            "precision": "f32", "busy_ms": 0, "input": str(xpath)}
                    eng[(e, t)] = C.PeerProcess(e, spec)
        est = {k: e.run_round(1, 1).median_ms for k, e in eng.items()}
        times: dict = {k: [] for k in eng}
        # One engine's two thread counts stay adjacent (that pair is the ratio); the
        # engines' order rotates from round to round, and so does which count goes first.
        for r in range(args.rounds):
            rot = engines[r % len(engines):] + engines[:r % len(engines)]
            line = []
            for e in rot:
                for t in ((1, args.threads) if r % 2 == 0 else (args.threads, 1)):
                    n = max(3, min(200, int(round(args.seconds_per_round * 1e3 / max(est[(e, t)], 1e-3)))))
                    rd = eng[(e, t)].run_round(n, 1)
                    est[(e, t)] = rd.median_ms
                    times[(e, t)].append(rd.median_ms)
                line.append(f"{e} {times[(e, 1)][-1]:7.2f} / {times[(e, args.threads)][-1]:6.2f} ms"
                            f" = {times[(e, 1)][-1] / times[(e, args.threads)][-1]:.3f}x")
            print(f"{variant} round {r + 1}/{args.rounds}: " + "   ".join(line), flush=True)
        for e in engines:
            one, many = times[(e, 1)], times[(e, args.threads)]
            paired = sorted(a / b for a, b in zip(one, many))
            rows.append((variant, e, statistics.median(one), statistics.median(many),
                         statistics.median(one) / statistics.median(many), paired))
    tmp.cleanup()
    print(f"\nscaling, batch {args.batch}: one thread's latency over {args.threads} threads' "
          "(per-round pairs: each round runs an engine's two counts back to back)")
    print(f"{'variant':<8}{'engine':<14}{'1t ms':>9}{f'{args.threads}t ms':>9}{'of medians':>12}"
          f"{'paired median [min - max]':>30}")
    for variant, e, one, many, ratio, paired in rows:
        print(f"{variant:<8}{NAMES[e]:<14}{one:9.2f}{many:9.2f}{ratio:11.3f}x"
              f"{statistics.median(paired):13.3f}x [{paired[0]:.3f} - {paired[-1]:.3f}]")
    print(f"\nwall time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
