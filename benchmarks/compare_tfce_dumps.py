#!/usr/bin/env python3
"""Compare two TFCE result dumps of `bench_stats` (CBFLOW_BENCH_DUMP=FILE), value by value.

Usage: python3 benchmarks/compare_tfce_dumps.py OLD.bin NEW.bin

Each dump is little-endian f64: V, the TFCE map, its uncorrected and FWE p-values (V each),
then the max-TFCE null (one per shuffle). The same layout holds the max-T run (FILE.maxt: the
t map and the max-T null) and clusters (FILE.clusters: labels, cluster FWE p twice, the
max-size null), so those compare the same way (the parts keep the TFCE names). Prints, for each part, whether it is identical and
otherwise how many values differ and the largest absolute and relative difference, and the
number of voxels with FWE p <= 0.05 in each. Exit status 1 if a p-value or decision differs.
"""
import sys

import numpy as np


def parts(path):
    a = np.fromfile(path, dtype="<f8")
    v = int(a[0])
    a = a[1:]
    return {
        "tfce": a[:v],
        "p_uncorrected": a[v:2 * v],
        "p_fwe": a[2 * v:3 * v],
        "max_null": a[3 * v:],
    }


def main():
    old, new = parts(sys.argv[1]), parts(sys.argv[2])
    bad = False
    for name in old:
        x, y = old[name], new[name]
        if x.shape != y.shape:
            print(f"{name}: lengths differ ({x.size} vs {y.size})")
            bad = True
            continue
        if np.array_equal(x, y):
            print(f"{name}: identical ({x.size} values)")
            continue
        d = np.abs(x - y)
        nz = x != 0
        rel = (d[nz] / np.abs(x[nz])).max() if nz.any() else 0.0
        print(f"{name}: {int((x != y).sum())} of {x.size} differ, largest absolute "
              f"{d.max():.3g}, relative {rel:.3g}")
        bad |= name.startswith("p_")
    fo, fn = (int((p["p_fwe"] <= 0.05).sum()) for p in (old, new))
    print(f"voxels with FWE p <= 0.05: {fo} and {fn}")
    sys.exit(1 if bad or fo != fn else 0)


if __name__ == "__main__":
    main()
