#!/usr/bin/env python3
"""Draw bench-results.csv (from bench/run.sh) as a PNG: udfhost's GB/s per operation and thread
count, with the ceiling of the same row as a marker and NumPy's GB/s for comparison.

    plot.py [CSV [PNG]]     defaults: bench-results.csv, bench-results.png

Exits 0 with a message when matplotlib is not installed (apt-get install python3-matplotlib).
"""
import csv
import os
import sys


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "bench-results.csv"
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.splitext(src)[0] + ".png"
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: matplotlib is not installed (python3-matplotlib); no plot drawn")
        return 0
    with open(src, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["gbps"]]
    if not rows:
        print(f"plot.py: no rows with a bandwidth in {src}")
        return 1

    def num(text):
        return float(text) if text else float("nan")

    labels = [f"{r['operation']}\n{r['dtype']} t{r['threads']}" for r in rows]
    udf = [num(r["gbps"]) for r in rows]
    ceil = [num(r["ceiling_gbps"]) for r in rows]
    # NumPy's GB/s from its time and udfhost's: gbps * median_s / numpy_s.
    npy = [num(r["gbps"]) * num(r["median_s"]) / num(r["numpy_s"]) if r["numpy_s"] else float("nan")
           for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(rows)), 5.5))
    ax.bar([x - 0.2 for x in xs], udf, width=0.4, label="udfhost (whole process)")
    ax.bar([x + 0.2 for x in xs], npy, width=0.4, label="NumPy (1 thread, op only)")
    ax.scatter(list(xs), ceil, marker="_", s=300, color="black", zorder=3,
               label="ceiling (faster of mmap/pread; dd when cold)")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("GB/s of input")
    title = "udfhost benchmark"
    machine = os.path.join(os.path.dirname(os.path.abspath(src)), "bench-data", "machine.txt")
    if os.path.exists(machine):
        with open(machine) as fh:
            title += ": " + fh.read().strip().replace("machine: ", "")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"plot.py: wrote {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
