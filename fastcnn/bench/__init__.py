"""The benchmark suite: `fastcnn bench conv` and `fastcnn bench train`.

Each prints a table and writes NAME.csv, NAME.md (and NAME.png when matplotlib is
installed) into the results folder, headed by the machine it ran on. The algorithms
are whatever ``fastcnn.conv.CONV`` / ``POOL`` hold and report available on the backend,
so a newly registered one is benchmarked without a change here.
"""
from __future__ import annotations

from pathlib import Path

from .. import tables
from . import charts, machine

DEFAULT_OUT = Path("benchmarks") / "results"


def user_algorithms(specs) -> list:
    """The user's algorithms of ``--algo PATH.py:NAME`` (fastcnn.check.resolve targets), each
    named ``file.py:NAME`` in the tables; a layer or an unusable file is a UserCodeError."""
    from ..check import resolve
    from ..registry import Algo
    from ..usercode import UserCodeError

    out = []
    for spec in specs or ():
        t, _ = resolve(spec)
        if t["kind"] == "layer":
            raise UserCodeError(f"{t['path']}: {t['name']} is a layer; --algo takes a convolution or pooling "
                                "algorithm (forward and backward as in fastcnn.registry). Check a layer with "
                                f"fastcnn check {spec}")
        label = f"{t['path'].name}:{t['name']}"
        out.append({**t, "algo": Algo(label, t["forward"], t["backward"], ("numpy",), autotune=False)})
    return out


def bench_conv(xp, out: Path, quick: bool, header: list, extra=(), **overrides) -> list:
    """Run the conv/pool benchmark, print it, write conv.csv/.md/.png; returns the files.

    ``overrides`` go to ``conv.run`` (batch, naive_batch, repeats, naive_full_ms, ...);
    ``extra``: the user's algorithms (``user_algorithms``), checked against naive, then timed.
    """
    from . import conv

    params = dict(batch=32, naive_batch=2, repeats=2, naive_repeats=1, naive_full_ms=0) if quick else {}
    params.update({k: v for k, v in overrides.items() if v is not None})
    batch = params.get("batch", 128)
    print(f"timing every conv and pool algorithm on every layer of {', '.join(conv.PRESETS)} at batch {batch}"
          + (f", and yours: {', '.join(t['algo'].name for t in extra)}" if extra else ""))
    rows = conv.run(xp, extra=extra, **params)
    title = f"Convolution and pooling algorithms, batch {batch}" + (" (--quick)" if quick else "")
    print()
    print(tables.text(conv.COLUMNS, rows, title))
    files = tables.write_table(out, "conv", conv.COLUMNS, rows, title, header, conv.notes(), conv.CSV_COLUMNS)
    labels = list(dict.fromkeys((r["model"], r["layer"]) for r in rows))
    algos = list(dict.fromkeys(r["algo"] for r in rows))
    vals = [[next((r["total_ms"] for r in rows if (r["model"], r["layer"]) == ml and r["algo"] == a), None)
             for ml in labels] for a in algos]
    png = charts.bar_chart(out / "conv.png", [f"{m} {l}" for m, l in labels], algos, vals,
                           "forward + backward ms (log)", f"{title} — {header[0]}", log=True)
    return files + ([png] if png else [])


def bench_train(xp, out: Path, quick: bool, header: list, threads=None, steps_to_97=None, extra=()) -> list:
    """Run the training benchmark, print it, write train.csv/.md/.png; returns the files.

    ``steps_to_97``: skip measuring the steps the recipe needs to reach 97 % and use this.
    ``extra``: the user's conv algorithms; each that agrees with naive on the preset's conv layers
    is registered for the benchmark only (``registry.registered``) and timed like the others.
    """
    from contextlib import ExitStack

    from ..conv import CONV
    from ..registry import registered
    from . import train

    params = dict(warmup=1, steps=2, naive_steps=1) if quick else {}
    print(f"timing {train.MODEL} training steps at batch {train.BATCH} for every conv algorithm")
    with ExitStack() as scope:
        for t in extra:
            why = train.disagreement(t)
            if why:
                print(f"  {t['algo'].name}: {why}: not timed; run fastcnn check {t['path'].name}:{t['name']}")
            else:
                scope.enter_context(registered(CONV, t["algo"]))
        rows, steps, source = train.run(xp, steps_to_97=steps_to_97, quick=quick, threads=threads, **params)
    title = f"{train.MODEL} training per conv algorithm, batch {train.BATCH}" + (" (--quick)" if quick else "")
    print()
    print(tables.text(train.COLUMNS, rows, title))
    notes = train.notes(steps, source)
    print("\n".join(n[2:] for n in notes))
    files = tables.write_table(out, "train", train.COLUMNS, rows, title, header, notes, train.CSV_COLUMNS)
    png = charts.bar_chart(out / "train.png", [r["algo"] for r in rows], ["projected time to 97 %"],
                           [[r["time_to_97_s"] for r in rows]], "seconds (log)", f"{title} — {header[0]}",
                           log=True, hline=train.LAB_LIMIT_S, hline_label="lab limit 420 s")
    return files + ([png] if png else [])


#: what a benchmark writes into its results folder
WRITES = (".csv", ".md", ".png")


def check_out_dir(out, what: str = "conv") -> Path:
    """The results folder ``out``, made and checked writable BEFORE a benchmark runs (minutes), so that
    a file name, a read-only place or a path through a file fails at once with a clear message."""
    out = Path(out)
    example = ", ".join(f"{what}{ext}" for ext in WRITES)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file; --out is the results folder (it gets {example}): "
                         "give a folder, e.g. --out benchmarks/results")
    if not out.exists() and out.suffix.lower() in WRITES + (".json", ".txt", ".html", ".svg", ".pdf"):
        raise ValueError(f"--out {out}: looks like a file name; --out is the results folder (it gets {example}): "
                         f"give a folder, e.g. --out {out.parent / out.stem}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        import tempfile

        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ValueError(f"--out {out}: cannot write the results there ({e.strerror or e}): choose a writable "
                         "folder") from None
    return out


def main(args) -> int:
    """Entry point of `fastcnn bench`: args.what in {conv, train}, args.backend, args.threads,
    args.quick, args.out, args.algo (the user's algorithms, PATH.py:NAME); optional (benchmarks/ scripts): args.batch, args.naive_batch,
    args.naive_full_ms, args.repeats (conv), args.steps_to_97 (train)."""
    from .. import backend

    from ..threads import numba_threads

    threads = getattr(args, "threads", None) and numba_threads()  # inside the command's settings scope
    xp = backend.get(getattr(args, "backend", "numpy") or "numpy")
    out = check_out_dir(getattr(args, "out", None) or DEFAULT_OUT, args.what)
    steps = getattr(args, "steps_to_97", None)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"--steps-to-97 must be an integer ≥ 1 (training steps), got {steps!r}")
    quick = bool(getattr(args, "quick", False))
    header = machine.header_lines(machine.info(threads, backend.name_of(xp)))
    print("\n".join(header))
    extra = user_algorithms(getattr(args, "algo", None))
    if args.what == "conv":
        files = bench_conv(xp, out, quick, header, extra, **{k: getattr(args, k, None) for k in
                                                              ("batch", "naive_batch", "naive_full_ms", "repeats")})
    elif args.what == "train":
        files = bench_train(xp, out, quick, header, threads, getattr(args, "steps_to_97", None), extra)
    else:
        raise ValueError(f"unknown benchmark {args.what!r}: choose conv or train")
    print("\nwrote " + ", ".join(str(f) for f in files))
    return 0
