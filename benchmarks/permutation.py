#!/usr/bin/env python3
"""Sign-flip max-T and TFCE + max-T: cbflow against nilearn's `permuted_ols`, on the same data.

cbflow's `bench_stats` example builds 26 subjects of smoothed noise plus a small blob inside an
ellipsoid mask of the MNI 2 mm grid (about 230 000 voxels) and writes them as NIfTI; nilearn
0.14 `permuted_ols` (one-sample test: an intercept as the tested variable, one-sided, 2 jobs, its
own TFCE with the masker's adjacency) then runs on those files. The two tools alternate
(A B A B), each as a child process with 2 threads (`n_jobs=2`); the figures are per
permutation, medians over the pairs (nilearn's: the time of 2n permutations less that of n, so
its unpermuted fit and worker start are not counted), and the ratio nilearn / cbflow is printed
per row.

    cargo build --release -p cbflow-stats --example bench_stats
    python3 -m pip install numpy nibabel nilearn
    python3 benchmarks/permutation.py [--pairs 2] [--small] [--also OLD_BENCH]

`--also OLD_BENCH`: a second `bench_stats` binary (e.g. built from an earlier commit) that runs in
every round too (cbflow, the other build, nilearn), so that old and new cbflow are compared in
the same run as nilearn; its figures and the ratio other / cbflow are printed as well. cbflow's
CPU time per shuffle (both threads) is printed beside the wall time: on a machine shared with
other work it varies far less from run to run.

`--small` (what CI runs): the same pipeline with far fewer permutations, to show it runs; its
nilearn figures are within the noise of nilearn's fixed costs, so its ratios mean nothing.
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
BENCH = os.path.join(ROOT, "target", "release", "examples", "bench_stats")

NILEARN = r"""
import json, sys, time, warnings
import numpy as np, nibabel as nib
from nilearn.maskers import NiftiMasker
from nilearn.mass_univariate import permuted_ols
d, n_maxt, n_tfce = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
warnings.filterwarnings("ignore")
masker = NiftiMasker(mask_img=nib.load(d + "/mask.nii.gz")).fit()
y = masker.transform(nib.load(d + "/data.nii.gz"))
x = np.ones((y.shape[0], 1))
out = {"voxels": int(y.shape[1]), "subjects": int(y.shape[0])}
def timed(n, tfce):
    t = time.perf_counter()
    r = permuted_ols(x, y, model_intercept=False, n_perm=n, two_sided_test=False,
                     random_state=0, n_jobs=2, masker=masker if tfce else None, tfce=tfce,
                     output_type="dict")
    return time.perf_counter() - t, r
def run(n, tfce):
    # per permutation: the time of 2n less that of n, so the unpermuted fit, its TFCE and the
    # start of the workers are not counted
    t1, _ = timed(n, tfce)
    t2, r = timed(2 * n, tfce)
    return (t2 - t1) / n, r
out["maxt_ms"], r = run(n_maxt, False)
out["maxt_ms"] *= 1e3
out["max_t"] = float(np.max(r["t"]))
if n_tfce:
    out["tfce_ms"], r = run(n_tfce, True)
    out["tfce_ms"] *= 1e3
print(json.dumps(out))
"""


def cbflow(bench, n_maxt, n_tfce, data_dir):
    env = dict(os.environ, CBFLOW_BENCH_WRITE=data_dir)
    p = subprocess.run([bench, str(n_maxt), str(n_tfce)], env=env, check=True,
                       capture_output=True, text=True)
    ms = re.search(r"max-T: \d+ shuffles in [\d.]+ s \(([\d.]+) ms/shuffle", p.stdout)
    tf = re.search(r"TFCE \(\+max-T\): \d+ shuffles in [\d.]+ s \(([\d.]+) ms/shuffle", p.stdout)
    mt = re.search(r"max t ([\d.]+)", p.stdout)
    # CPU time per shuffle, where the binary prints it (builds from 2026-12-06 on)
    ms_cpu = re.search(r"max-T: [^\n]*CPU ([\d.]+) ms/shuffle", p.stdout)
    tf_cpu = re.search(r"TFCE \(\+max-T\): [^\n]*CPU ([\d.]+) ms/shuffle", p.stdout)
    return {"maxt_ms": float(ms.group(1)), "tfce_ms": float(tf.group(1)) if tf else None,
            "max_t": float(mt.group(1)),
            "maxt_cpu_ms": float(ms_cpu.group(1)) if ms_cpu else None,
            "tfce_cpu_ms": float(tf_cpu.group(1)) if tf_cpu else None}


def nilearn(n_maxt, n_tfce, data_dir):
    p = subprocess.run([sys.executable, "-c", NILEARN, data_dir, str(n_maxt), str(n_tfce)],
                       check=True, capture_output=True, text=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--bench", default=BENCH, help="the bench_stats example binary")
    ap.add_argument("--also", help="another bench_stats binary (an earlier build) run in each round")
    a = ap.parse_args()
    if not os.path.exists(a.bench):
        sys.exit(f"{a.bench} not found: cargo build --release -p cbflow-stats --example bench_stats")
    # permutations per tool: enough for a stable per-permutation time
    c_maxt, c_tfce = (500, 40) if a.small else (5000, 400)
    n_maxt, n_tfce = (100, 1) if a.small else (1000, 2)
    rows = {"cbflow": [], "nilearn": []}
    if a.also:
        rows["other"] = []
    with tempfile.TemporaryDirectory() as d:
        for k in range(a.pairs):
            t = time.time()
            rows["cbflow"].append(cbflow(a.bench, c_maxt, c_tfce, d))
            if a.also:
                rows["other"].append(cbflow(a.also, c_maxt, c_tfce, d))
            rows["nilearn"].append(nilearn(n_maxt, n_tfce, d))
            print(f"round {k + 1}: " + ", ".join(f"{tool} {rs[-1]}" for tool, rs in rows.items())
                  + f" ({time.time() - t:.0f} s; load average {os.getloadavg()[0]:.1f})",
                  flush=True)

    def median(rs, key):
        xs = [r[key] for r in rs if r.get(key) is not None]
        return statistics.median(xs) if xs else float("nan")

    med = {tool: {key: median(rs, key) for key in ("maxt_ms", "tfce_ms", "maxt_cpu_ms",
                                                    "tfce_cpu_ms")}
           for tool, rs in rows.items()}
    c, n = rows["cbflow"][0], rows["nilearn"][0]
    print(f"same data: max t cbflow {c['max_t']:.4f}, nilearn {n['max_t']:.4f}; "
          f"{n['voxels']} voxels, {n['subjects']} subjects; {os.cpu_count()} CPUs")
    if a.small:
        print("--small: too few permutations for nilearn's time per permutation to be measured; "
              "the ratios below are not figures (docs/performance.md has the full run)")
    print("| work | nilearn 0.14 permuted_ols | cbflow | nilearn / cbflow |")
    print("|---|---|---|---|")
    for key, what in (("maxt_ms", "sign-flip max-T"), ("tfce_ms", "TFCE + max-T")):
        print(f"| {what} | {med['nilearn'][key]:.2f} ms/perm | {med['cbflow'][key]:.2f} ms/perm | "
              f"{med['nilearn'][key] / med['cbflow'][key]:.1f}x |")
    print(f"cbflow CPU time per shuffle (both threads): max-T {med['cbflow']['maxt_cpu_ms']:.2f} "
          f"ms, TFCE + max-T {med['cbflow']['tfce_cpu_ms']:.2f} ms")
    if a.also:
        print("| work | other build | cbflow | other / cbflow (wall) | other / cbflow (CPU) |")
        print("|---|---|---|---|---|")
        for key, what in (("maxt", "sign-flip max-T"), ("tfce", "TFCE + max-T")):
            o, c = med["other"], med["cbflow"]
            print(f"| {what} | {o[key + '_ms']:.2f} ms/perm (CPU {o[key + '_cpu_ms']:.2f}) | "
                  f"{c[key + '_ms']:.2f} ms/perm (CPU {c[key + '_cpu_ms']:.2f}) | "
                  f"{o[key + '_ms'] / c[key + '_ms']:.2f}x | "
                  f"{o[key + '_cpu_ms'] / c[key + '_cpu_ms']:.2f}x |")


if __name__ == "__main__":
    main()
