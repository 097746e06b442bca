"""Seconds per epoch of lenet5 training for every conv algorithm, and the projected time to 97 %.

    python benchmarks/bench_train.py [--backend numpy|cupy] [--threads N] [--quick] [--out DIR]
                                     [--steps-to-97 N]

The same as `fastcnn bench train` (see fastcnn/bench/train.py); --steps-to-97 skips the
training run that measures how many steps the default recipe needs to reach 97 %.
Writes train.csv, train.md and train.png into benchmarks/results/.
"""
import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    ap.add_argument("--out", help="results folder (default benchmarks/results)")
    ap.add_argument("--steps-to-97", type=int, help="steps the default recipe needs to reach 97 %% (skip measuring)")
    args = ap.parse_args(argv)
    from fastcnn import bench, settings

    args.what = "train"
    with settings(threads=args.threads):
        return bench.main(args)


if __name__ == "__main__":
    sys.exit(main())
