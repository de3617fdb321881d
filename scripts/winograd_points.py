#!/usr/bin/env python3
"""Winograd F(m, 3) matrices for chosen interpolation points, and their fp32 error.

Derives Aᵀ (m×α), G (α×3) and Bᵀ (α×α), α = m + 2, exactly (fractions) for the
finite points given plus ∞ (Toom-Cook: Aᵀ columns are powers of the points, G rows
the powers over ∏(aᵢ − aⱼ), Bᵀ solved from the requirement that
Y = Aᵀ[(G g) ⊙ (Bᵀ d)] is the 3-tap correlation, which is checked exactly), prints
them, and with numpy installed simulates one 2-D tile in fp32 as the kernels compute
it (weights transformed in f64 and rounded once, input transform in fp32, products
accumulated sequentially over `cin` in fp32, output transform in fp32) against an f64
correlation: max|Δ|/max|y| over all tiles and its mean per tile.

    python3 scripts/winograd_points.py 3 0 1 -1 2          # F(3×3), the points kernels/ uses
    python3 scripts/winograd_points.py 4 0 1 -1 2 -1/2     # F(4×4)
    python3 scripts/winograd_points.py 2 0 1 -1            # F(2×2)

Options: --cin N (default 256), --tiles N (default 2000), --no-sim.
"""

import sys
from fractions import Fraction


def matrices(m, pts, r=3):
    """(Aᵀ, G, Bᵀ) as lists of Fraction rows for F(m, r) on `pts` + ∞."""
    alpha = m + r - 1
    if len(pts) != alpha - 1 or len(set(pts)) != len(pts):
        raise SystemExit(f"F({m}, {r}) needs {alpha - 1} distinct finite points, got {pts}")
    at = [[p**i for p in pts] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = []
    for j, pj in enumerate(pts):
        f = Fraction(1)
        for k, pk in enumerate(pts):
            if k != j:
                f *= pj - pk
        g.append([pj**k / f for k in range(r)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    # Bᵀ column by column: Σ_p Aᵀ[i][p] G[p][k] Bᵀ[p][j] = [j == i + k] for all i, k.
    bt = [[Fraction(0)] * alpha for _ in range(alpha)]
    for j in range(alpha):
        rows = [[at[i][p] * g[p][k] for p in range(alpha)] for i in range(m) for k in range(r)]
        rhs = [Fraction(int(j == i + k)) for i in range(m) for k in range(r)]
        x = solve_least_squares(rows, rhs)
        for row, want in zip(rows, rhs):
            if sum(a * b for a, b in zip(row, x)) != want:
                raise SystemExit("no Bᵀ satisfies the identity for these points")
        for p in range(alpha):
            bt[p][j] = x[p]
    return at, g, bt


def solve_least_squares(rows, rhs):
    """Exact solution of the normal equations (the system is consistent)."""
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] + [sum(r[i] * y for r, y in zip(rows, rhs))]
         for i in range(n)]
    for c in range(n):
        piv = next(i for i in range(c, n) if a[i][c] != 0)
        a[c], a[piv] = a[piv], a[c]
        for i in range(n):
            if i != c and a[i][c] != 0:
                f = a[i][c] / a[c][c]
                a[i] = [x - f * y for x, y in zip(a[i], a[c])]
    return [a[i][n] / a[i][i] for i in range(n)]


def show(name, mat):
    print(f"{name} =")
    for row in mat:
        print("   " + " ".join(f"{str(x):>6}" for x in row))


def simulate(m, at, g, bt, cin, tiles, seed=1):
    import numpy as np

    alpha = m + 2
    at, g, bt = (np.array(x, dtype=np.float64) for x in (at, g, bt))
    rng = np.random.default_rng(seed)
    d = rng.random((tiles, cin, alpha, alpha)).astype(np.float32)  # post-ReLU activations
    lim = np.sqrt(6 / (9 * cin))  # He-uniform
    w = rng.uniform(-lim, lim, (tiles, cin, 3, 3)).astype(np.float32)
    d64, w64 = d.astype(np.float64), w.astype(np.float64)
    y = np.zeros((tiles, m, m))
    for i in range(m):
        for j in range(m):
            y[:, i, j] = np.einsum("tcij,tcij->t", d64[:, :, i:i + 3, j:j + 3], w64)
    u = np.einsum("ak,tckl,bl->tcab", g, w64, g).astype(np.float32)
    b32 = bt.astype(np.float32)
    v = np.einsum("ai,tcij->tcaj", b32, d).astype(np.float32)
    v = np.einsum("tcaj,bj->tcab", v, b32).astype(np.float32)
    acc = np.zeros((tiles, alpha, alpha), np.float32)
    for c in range(cin):
        acc = (acc + u[:, c] * v[:, c]).astype(np.float32)
    a32 = at.astype(np.float32)
    out = np.einsum("ia,tab->tib", a32, acc).astype(np.float32)
    out = np.einsum("tib,jb->tij", out, a32).astype(np.float32)
    err = np.abs(out - y).max(axis=(1, 2))
    scale = np.abs(y).max(axis=(1, 2))
    return err.max() / scale.max(), float(np.mean(err / scale))


def main():
    # By hand rather than argparse, which takes a point like -1/2 for an option.
    args, opts = [], {"--cin": 256, "--tiles": 2000}
    it = iter(sys.argv[1:])
    sim = True
    for x in it:
        if x in ("-h", "--help"):
            print(__doc__)
            return
        if x == "--no-sim":
            sim = False
        elif x in opts:
            opts[x] = int(next(it, "0"))
        else:
            args.append(x)
    if len(args) < 2:
        raise SystemExit("usage: winograd_points.py M POINT... [--cin N] [--tiles N] [--no-sim]")
    m, pts = int(args[0]), [Fraction(p) for p in args[1:]]
    at, g, bt = matrices(m, pts)
    show("Bᵀ", bt)
    show("G", g)
    show("Aᵀ", at)
    if not sim:
        return
    try:
        glob, mean = simulate(m, at, g, bt, opts["--cin"], opts["--tiles"])
    except ImportError:
        print("(numpy not installed: no fp32 simulation)")
        return
    print(f"fp32, cin {opts['--cin']}, {opts['--tiles']} tiles: max|Δ|/max|y| {glob:.2e}, mean per tile {mean:.2e}")


if __name__ == "__main__":
    main()
