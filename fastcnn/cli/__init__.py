"""The `fastcnn` command: train, eval, summary, predict, check, bench, report, baseline, sweep, export.

One module per command (``fastcnn/cli/<command>.py``), each with ``add_parser(sub)`` and
``run(args) -> exit code``; they parse and print, the library does the work. Each command
runs inside ``fastcnn.settings(threads=--threads)``; nothing else about the process is
changed (no environment variables, no restart). Bad input exits with code 2 and one line
``fastcnn COMMAND: error: ...`` on stderr; Ctrl-C exits with code 130 and one line, no traceback
(a training saves its run first: fastcnn.train).
"""
from __future__ import annotations

import argparse
import sys

from . import baseline, bench, check, eval, export, predict, report, summary, sweep, train

#: command name -> its module, in the order ``fastcnn --help`` lists them
MODULES = {"train": train, "eval": eval, "summary": summary, "predict": predict,
           "check": check, "bench": bench,
           "report": report, "baseline": baseline, "sweep": sweep, "export": export}
COMMANDS = {name: m.run for name, m in MODULES.items()}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fastcnn", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for m in MODULES.values():
        m.add_parser(sub)
    return ap


def main(argv=None) -> int:
    """Run ``fastcnn ARGV``; returns the exit code (0, 2 for bad input, 130 for Ctrl-C, a command's own code)."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # at start-up (imports, data) or while a command saves its files
        print(f"fastcnn {args.command}: interrupted (Ctrl-C); files already written are whole", file=sys.stderr)
        return 130


def _run(args) -> int:
    from ..backend import BackendError
    from ..data import DataError
    from ..scoped_settings import settings
    from ..train import TrainingError

    try:
        with settings(threads=getattr(args, "threads", None)):
            return COMMANDS[args.command](args) or 0
    except (ValueError, DataError, BackendError, TrainingError, FileNotFoundError, OSError) as e:
        print(f"fastcnn {args.command}: error: {e}", file=sys.stderr)
        return 2
