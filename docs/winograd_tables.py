#!/usr/bin/env python3
"""The tables of src/winograd.c: Winograd's F(m x m, r x r) by Toom-Cook interpolation in exact
rationals (sympy; Debian's python3-sympy), checked against the direct sum.

For each (m, r, points): A^T evaluates at the alpha - 1 points and infinity, G interpolates the
kernel there, and B^T is solved from the bilinear identity sum_x A^T[i][x] G[x][k] B^T[x][j] =
[j == i + k]. The rows of B^T are then scaled to small integers with the inverse scales moved
into G, so that every product in a transform of tiles is exact. Prints the C initialisers and, per
table, the largest error against the direct sum of one random tile (double), and in float
relative to the sum of the terms' magnitudes (winograd.h quotes these).

usage: docs/winograd_tables.py"""
import numpy as np
import sympy as sp

TABLES = [(2, 2, [0, 1]), (4, 2, [0, 1, -1, sp.Rational(1, 2)]), (2, 3, [0, 1, -1]),
          (4, 3, [0, 1, -1, 2, -2])]


def derive(m, r, pts):
    a = m + r - 1
    AT, G, BT = sp.zeros(m, a), sp.zeros(a, r), sp.zeros(a, a)
    for x, p in enumerate(pts):
        for i in range(m):
            AT[i, x] = sp.Rational(p) ** i
        for k in range(r):
            G[x, k] = sp.Rational(p) ** k
    AT[m - 1, a - 1] = G[a - 1, r - 1] = 1
    for j in range(a):
        unk = sp.symbols(f"b0:{a}")
        eqs = [sum(AT[i, x] * G[x, k] * unk[x] for x in range(a)) - (1 if j == i + k else 0)
               for i in range(m) for k in range(r)]
        sol = sp.solve(eqs, unk, dict=True)[0]
        for x in range(a):
            BT[x, j] = sol.get(unk[x], 0)
    for x in range(a):  # B^T's rows to small integers, G's rows by the inverse
        l = sp.ilcm(*[sp.fraction(v)[1] for v in BT.row(x)])
        nz = [abs(int(v * l)) for v in BT.row(x) if v != 0]
        f = sp.Rational(l, sp.igcd(*nz) if len(nz) > 1 else nz[0])
        BT[x, :], G[x, :] = BT.row(x) * f, G.row(x) / f
    return AT, G, BT


def check(m, r, AT, G, BT, trials=200):
    a = m + r - 1
    at, g, bt = (np.array(M.tolist(), dtype=np.float64) for M in (AT, G, BT))
    rng = np.random.default_rng(1)
    e64 = e32 = 0
    for _ in range(trials):
        d, w = rng.standard_normal((a, a)), rng.standard_normal((r, r))
        ref = np.array([[np.sum(w * d[i:i + r, j:j + r]) for j in range(m)] for i in range(m)])
        mag = np.array([[np.sum(np.abs(w * d[i:i + r, j:j + r])) for j in range(m)]
                        for i in range(m)])
        y = at @ ((g @ w @ g.T) * (bt @ d @ bt.T)) @ at.T
        f = np.float32
        u = (g @ w @ g.T).astype(f)  # the weights' transform in double, rounded once
        v = bt.astype(f) @ d.astype(f) @ bt.T.astype(f)
        y32 = at.astype(f) @ (u * v) @ at.T.astype(f)
        e64, e32 = max(e64, np.abs(y - ref).max()), max(e32, (np.abs(y32 - ref) / mag).max())
    return e64, e32


def c_rows(M):
    num = lambda v: str(v) if sp.fraction(v)[1] == 1 else "%s.0 / %s" % sp.fraction(v)
    return "{" + ", ".join("{" + ", ".join(num(v) for v in M.row(i)) + "}"
                           for i in range(M.rows)) + "}"


for m, r, pts in TABLES:
    AT, G, BT = derive(m, r, pts)
    e64, e32 = check(m, r, AT, G, BT)
    print(f"F({m}x{m}, {r}x{r}) at {pts} and infinity: error {e64:.1e} in double, "
          f"{e32:.1e} of the terms' magnitudes in float")
    print("    {%d, %d, %s,\n     %s,\n     %s}," % (m, r, c_rows(AT), c_rows(G), c_rows(BT)))
