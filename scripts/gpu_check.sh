#!/usr/bin/env bash
# The GPU path verified on a GPU node in one command, offline, from a plain checkout (no pip install):
#   scripts/gpu_check.sh OUTDIR             needs CuPy (either CUDA build), numba-cuda, pytest; PyTorch optional
#   scripts/gpu_check.sh OUTDIR --dry-run   the same plumbing on the CuPy stand-in and Numba's CUDA simulator
#                                           (tiny sizes, no GPU; tests/test_gpu_check.py runs it in CI)
# Writes OUTDIR/gpu_check.md (one Markdown table) and OUTDIR/gpu_check.json (strict JSON): device and
# versions; the gpu tests with CUDA_LAUNCH_BLOCKING=1; every preset's first steps on CuPy against NumPy
# from the same weights; launched operations and host syncs per step as the device sees them; step time
# at batch 64, 256, 1024 for lenet5 and compact beside PyTorch's plain loop; fast99's time to 99 % and
# its accuracy. Aimed at <= 5 minutes on one GPU, compilation included. The work is done by
# scripts/gpu_check.py (its docstring says how each figure is measured).
# Exit status: 0 all checks passed, 1 a check failed, 2 CuPy or a device missing / bad usage.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: scripts/gpu_check.sh OUTDIR [--dry-run]" >&2
    exit 2
fi
OUT=$1
shift
if [[ "${1:-}" == "--dry-run" ]]; then
    export FASTCNN_FAKE_CUPY=1 NUMBA_ENABLE_CUDASIM=1
elif [[ "${FASTCNN_FAKE_CUPY:-}" == "1" || "${NUMBA_ENABLE_CUDASIM:-}" == "1" ]]; then
    echo "gpu_check: unset FASTCNN_FAKE_CUPY and NUMBA_ENABLE_CUDASIM (or pass --dry-run): this check is for a real GPU" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # fastcnn from this checkout, not installed
exec "$PY" scripts/gpu_check.py "$OUT" "$@"
