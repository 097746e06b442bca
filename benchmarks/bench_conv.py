"""Benchmark every conv and pool algorithm on the layer shapes of lenet5 and compact.

    python benchmarks/bench_conv.py [--backend numpy|cupy] [--threads N] [--quick] [--out DIR]
                                    [--batch 128] [--naive-batch 8] [--always-scale-naive]

The same as `fastcnn bench conv` (see fastcnn/bench/conv.py for the conventions),
with a few knobs more. Writes conv.csv, conv.md and conv.png into benchmarks/results/.
"""
import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    ap.add_argument("--out", help="results folder (default benchmarks/results)")
    ap.add_argument("--batch", type=int, help="batch size (default 128)")
    ap.add_argument("--repeats", type=int, help="timed runs per algorithm and shape (default 7)")
    ap.add_argument("--naive-batch", type=int, help="the small batch naive is timed on first (default 8)")
    ap.add_argument("--always-scale-naive", action="store_true",
                    help="never time naive at the full batch: scale its small-batch time linearly")
    args = ap.parse_args(argv)
    from fastcnn import bench, settings

    args.what = "conv"
    args.naive_full_ms = 0 if args.always_scale_naive else None
    with settings(threads=args.threads):
        return bench.main(args)


if __name__ == "__main__":
    sys.exit(main())
