#!/usr/bin/env python3
"""Variogram-matching surrogates: cbflow against BrainSMASH 0.11, on the same data.

cbflow's `bench_receptor` example builds both benchmark maps and writes them
(`CBFLOW_BENCH_WRITE`): for the full method (`Base`) a smooth test map on the 400 Schaefer-400
parcel centroids (Euclidean distances), for the sampled method (`Sampled`) the MOR map at the
~20 553 grey-matter voxels of a 4 mm lattice (knn 1 000, ns 500). BrainSMASH then runs on those
files with cbflow's settings (pv 90 for `Base`, BrainSMASH's defaults otherwise, both
rank-matched: `resample=True`). The tools alternate (A B A B), each a child process; cbflow runs
with 2 threads, BrainSMASH with numpy's BLAS threads (2) and `n_jobs=1`. Printed per pair and as
medians: wall time per surrogate (and the ratio of CPU times, less sensitive to a shared
machine's load) (BrainSMASH's `Sampled` set-up, the k-d tree of the voxels' 1 001
nearest neighbours that its `txt2memmap` step would otherwise take from a full distance matrix,
is timed apart, as is cbflow's exact nearest-neighbour search), the ratio, and the fit error of
each tool's surrogates by one measure: cbflow's `fit_error` (relative RMS error of the mean
smoothed variogram against the target's, the sampled one on one fixed sample of 500 voxels),
computed by `bench_receptor fit` on both tools' surrogates, on equally many of each; cbflow's
on up to five disjoint sets of that many, whose spread is the sampling noise of the comparison.

BrainSMASH `Base` draws one surrogate per call by default (`batch_size=1`); with a batch it
evaluates the variograms of many surrogates in one matrix product. Both are timed.

    cargo build --release -p cbflow-receptor --example bench_receptor
    python3 -m pip install numpy scipy brainsmash==0.11.0
    python3 benchmarks/surrogates.py [--pairs 2] [--small] [--fit [--fit-n 5000 600]]

`--fit`: the fit error of a mean variogram falls with the number of surrogates averaged, so after
the timed pairs BrainSMASH draws as many surrogates as cbflow did (Base batched: the same
algorithm, faster) and both tools' errors are printed on all of them and on five disjoint sets.

`--small` (what CI runs): a few surrogates per tool, to show that the pipeline runs; its times
are dominated by fixed costs, so its ratios mean nothing.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "examples", "bench_receptor")

BRAINSMASH = r"""
import json, resource, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
d, method, n, seed, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
coords = np.fromfile(f"{d}/{method}_coords.f64", dtype="<f8").reshape(-1, 3)
x = np.fromfile(f"{d}/{method}_values.f64", dtype="<f8")
out = {"points": int(x.size)}
if method == "full":
    from scipy.spatial.distance import cdist
    from brainsmash.mapgen.base import Base
    t = time.perf_counter()
    D = cdist(coords, coords)
    gen = Base(x, D, pv=90, resample=True, seed=seed)
    out["setup_s"] = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    s = gen(n=n, batch_size=batch)
else:
    from scipy.spatial import cKDTree
    from brainsmash.mapgen.sampled import Sampled
    knn = 1000
    t = time.perf_counter()
    dist, index = cKDTree(coords).query(coords, k=knn + 1)
    out["setup_s"] = time.perf_counter() - t
    gen = Sampled(x, dist, index, knn=knn, resample=True, seed=seed)
    t, c = time.perf_counter(), time.process_time()
    s = gen(n=n)
out["ms"] = (time.perf_counter() - t) * 1e3 / n
out["cpu_ms"] = (time.process_time() - c) * 1e3 / n
np.ascontiguousarray(np.atleast_2d(s), dtype="<f8").tofile(f"{d}/brainsmash_{method}.f64")
print(json.dumps(out))
"""


def cbflow(bench, method, n, d):
    env = dict(os.environ, CBFLOW_BENCH_WRITE=d, CBFLOW_BENCH_DUMP=d, RAYON_NUM_THREADS="2")
    p = subprocess.run([bench, method, str(n)], env=env, check=True, capture_output=True,
                       text=True)
    ms = re.search(rf"{method} method: .*?{n} surrogates: .*?\(([\d.]+) ms/surrogate; CPU ([\d.]+) s\)",
                   p.stdout)
    setup = re.search(r"setup ([\d.]+) s" if method == "full" else r"search \+ kernel weights: ([\d.]+) s",
                      p.stdout)
    return {"ms": float(ms.group(1)), "cpu_ms": float(ms.group(2)) * 1e3 / n,
            "setup_s": float(setup.group(1))}


def brainsmash(method, n, seed, d, batch=1):
    p = subprocess.run([sys.executable, "-c", BRAINSMASH, d, method, str(n), str(seed), str(batch)],
                       check=True, capture_output=True, text=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def fit(bench, method, path):
    p = subprocess.run([bench, "fit", method, path], check=True, capture_output=True, text=True)
    return float(re.search(r"variogram rel RMSE ([\d.]+)", p.stdout).group(1))


def rows_of(src, dst, first, rows, points):
    with open(src, "rb") as f:
        f.seek(first * points * 8)
        data = f.read(rows * points * 8)
    with open(dst, "wb") as f:
        f.write(data)


def set_fits(bench, method, d, src, size, count, points):
    """The fit errors of `count` disjoint sets of `size` consecutive surrogates of file `src`."""
    out = []
    for k in range(count):
        rows_of(src, f"{d}/fit_{method}.f64", k * size, size, points)
        out.append(fit(bench, method, f"{d}/fit_{method}.f64"))
    return out


def fits_of(bench, method, d, n_c, n_b, points, sets):
    """BrainSMASH's fit error on its n_b surrogates, and cbflow's on disjoint sets of n_b of its
    n_c (up to `sets`): the spread of the latter is the sampling noise the comparison is judged by."""
    peer = fit(bench, method, f"{d}/brainsmash_{method}.f64")
    own = set_fits(bench, method, d, f"{d}/{method}_surrogates.f64", n_b, min(sets, n_c // n_b),
                   points)
    return own, peer, n_b


def equal_fits(bench, method, d, n, points, seed, batch):
    """Both tools' fit errors on n surrogates each (cbflow's from its last run), and on five
    disjoint sets of n / 5: the error of a mean variogram falls with the number of surrogates,
    so the tools are compared on equally many."""
    brainsmash(method, n, seed, d, batch)
    return {tool: (set_fits(bench, method, d, src, n, 1, points)[0],
                   set_fits(bench, method, d, src, n // 5, 5, points))
            for tool, src in (("cbflow", f"{d}/{method}_surrogates.f64"),
                              ("BrainSMASH", f"{d}/brainsmash_{method}.f64"))}


def arguments():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=BENCH, help="the bench_receptor example binary")
    ap.add_argument("--pairs", type=int, default=2, help="alternations of the two tools")
    ap.add_argument("--small", action="store_true", help="a few surrogates per tool (CI)")
    ap.add_argument("--fit", action="store_true",
                    help="after the timed pairs, as many BrainSMASH surrogates as cbflow's (Base "
                         "batched, 1 000; Sampled, 200) and both tools' fit errors on all of them "
                         "and on five disjoint sets")
    ap.add_argument("--fit-n", type=int, nargs=2, metavar=("FULL", "SAMPLED"),
                    help="with --fit: this many surrogates per tool instead (e.g. 5000 600; "
                         "BrainSMASH's Sampled takes about 1.5 s each)")
    a = ap.parse_args()
    if not os.path.exists(a.bench):
        sys.exit(f"{a.bench} not found: cargo build --release -p cbflow-receptor --example bench_receptor")
    return a


def main():
    a = arguments()
    # surrogates per tool and call: enough for a stable time per surrogate (BrainSMASH takes
    # about 0.5 s per Base surrogate and 2-3 s per Sampled one here)
    counts = {"full": (20, 4, 20), "sampled": (8, 2)} if a.small else \
        {"full": (1000, 100, 500), "sampled": (200, 40)}
    rows = {k: [] for k in ("full cbflow", "full brainsmash", "full brainsmash batched",
                            "sampled cbflow", "sampled brainsmash")}
    fits = {}
    with tempfile.TemporaryDirectory() as d:
        for k in range(a.pairs):
            t = time.time()
            n_c, n_b, n_bb = counts["full"]
            rows["full cbflow"].append(cbflow(a.bench, "full", n_c, d))
            rows["full brainsmash"].append(brainsmash("full", n_b, k + 1, d))
            if k == 0:
                points = rows["full brainsmash"][-1]["points"]
                fits["full"] = fits_of(a.bench, "full", d, n_c, n_b, points, 2 if a.small else 5)
            rows["full brainsmash batched"].append(brainsmash("full", n_bb, k + 1, d, batch=100))
            n_c, n_b = counts["sampled"]
            rows["sampled cbflow"].append(cbflow(a.bench, "sampled", n_c, d))
            rows["sampled brainsmash"].append(brainsmash("sampled", n_b, k + 1, d))
            if k == 0:
                points = rows["sampled brainsmash"][-1]["points"]
                fits["sampled"] = fits_of(a.bench, "sampled", d, n_c, n_b, points, 2 if a.small else 5)
            print(f"pair {k + 1} ({time.time() - t:.0f} s): " + "; ".join(
                f"{name} {r[-1]['ms']:.2f} ms" for name, r in rows.items()), flush=True)
        if a.fit:
            n_full, n_sampled = counts["full"][0], counts["sampled"][0]
            if a.fit_n:
                n_full, n_sampled = a.fit_n
                cbflow(a.bench, "full", n_full, d)
                cbflow(a.bench, "sampled", n_sampled, d)
            # the last cbflow runs left their surrogates in d
            equal = {"full": equal_fits(a.bench, "full", d, n_full,
                                        rows["full brainsmash"][0]["points"], 99, 100),
                     "sampled": equal_fits(a.bench, "sampled", d, n_sampled,
                                           rows["sampled brainsmash"][0]["points"], 99, 1)}
    med = {name: statistics.median(r["ms"] for r in rs) for name, rs in rows.items()}
    cpu = {name: statistics.median(r["cpu_ms"] for r in rs) for name, rs in rows.items()}
    setup = {name: statistics.median(r["setup_s"] for r in rs) for name, rs in rows.items()}
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"{a.pairs} pairs, medians")
    if a.small:
        print("--small: too few surrogates for a time per surrogate; the ratios below are not "
              "figures (docs/performance.md has the full run)")
    print("| method | BrainSMASH 0.11 | cbflow | BrainSMASH / cbflow | CPU time ratio | "
          "fit error BrainSMASH | fit error cbflow | surrogates in the fit |")
    print("|---|---|---|---|---|---|---|---|")
    for method, peer in (("full", "full brainsmash"), ("full", "full brainsmash batched"),
                         ("sampled", "sampled brainsmash")):
        c = med[f"{method} cbflow"]
        f_c, f_b, n_f = fits[method]
        what = {"full brainsmash": "Base, 400 parcels", "full brainsmash batched":
                "Base, 400 parcels, batch_size 100", "sampled brainsmash":
                "Sampled, 20 553 voxels"}[peer]
        own = f"{f_c[0]:.3f}" if len(f_c) == 1 else \
            f"{f_c[0]:.3f} ({min(f_c):.3f}–{max(f_c):.3f} over {len(f_c)} sets)"
        fit_cols = f"{f_b:.3f} | {own} | {n_f}" if peer != "full brainsmash batched" \
            else "— | — | —"
        cpu_ratio = cpu[peer] / cpu[f"{method} cbflow"]
        print(f"| {what} | {med[peer]:.2f} ms | {c:.3f} ms | {med[peer] / c:.1f}x | "
              f"{cpu_ratio:.1f}x | {fit_cols} |")
    if a.fit:
        print("fit error on equally many surrogates per tool (all of them; mean and range over "
              "five disjoint sets of a fifth):")
        for method, n in (("full", n_full), ("sampled", n_sampled)):
            print(f"  {method}, {n} each: " + "; ".join(
                f"{tool} {w:.3f} (sets mean {statistics.mean(s):.3f}, {min(s):.3f}–{max(s):.3f})"
                for tool, (w, s) in equal[method].items()))
    print(f"set-up: BrainSMASH Base {setup['full brainsmash']:.2f} s (distance matrix), Sampled "
          f"{setup['sampled brainsmash']:.2f} s (k-d tree); cbflow full {setup['full cbflow']:.3f} s, "
          f"sampled {setup['sampled cbflow']:.2f} s (exact nearest neighbours, kernel weights)")


if __name__ == "__main__":
    main()
