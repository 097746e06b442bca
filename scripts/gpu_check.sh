#!/usr/bin/env bash
# The GPU path verified on a machine with CuPy and a CUDA device, in one command:
#   scripts/gpu_check.sh            (QUICK=1 scripts/gpu_check.sh: bench conv --quick)
# Runs, each timed: the gpu-marked tests (every layer on CuPy against NumPy, training on
# the 'cuda' algorithms), `fastcnn bench conv --backend cupy`, and training the default
# preset to 97 % and to 99 % test accuracy; then prints one table (device, check, status,
# seconds). These cover what the CI stand-in (FASTCNN_FAKE_CUPY=1) cannot: real kernel
# launches and their errors (CUDA_LAUNCH_BLOCKING=1 during the tests, so an asynchronous
# error is reported at the launch that caused it), device memory (peak of the pool), cuBLAS
# numerics, and speed. Exits 2 when CuPy or a device is missing, 1 when a check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if [[ "${FASTCNN_FAKE_CUPY:-}" == "1" || "${NUMBA_ENABLE_CUDASIM:-}" == "1" ]]; then
    echo "gpu_check: unset FASTCNN_FAKE_CUPY and NUMBA_ENABLE_CUDASIM: this check is for a real GPU" >&2
    exit 2
fi
DEVICE=$("$PY" - <<'PYEOF'
import sys
try:
    import cupy
except ImportError:
    sys.exit("gpu_check: CuPy is not installed: pip install -e '.[gpu]' (CuPy for CUDA 12), then run again")
try:
    n = cupy.cuda.runtime.getDeviceCount()
except Exception as e:
    sys.exit(f"gpu_check: CuPy is installed but no CUDA device is usable ({e}); check nvidia-smi")
if n < 1:
    sys.exit("gpu_check: CuPy sees no CUDA device")
name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
print(name.decode() if isinstance(name, bytes) else name)
PYEOF
) || exit 2

OUT=$(mktemp -d "${TMPDIR:-/tmp}/fastcnn-gpu-check.XXXXXX")
ROWS=()
FAILED=0
check() {  # check NAME COMMAND...: run, time, keep the log, add a row
    local name=$1; shift
    local log="$OUT/${name// /_}.log" t0 t1 status
    echo "== $name: $*"
    t0=$(date +%s.%N)
    if "$@" >"$log" 2>&1; then status=ok; else status=FAILED; FAILED=1; fi
    t1=$(date +%s.%N)
    tail -n 3 "$log"
    ROWS+=("$(printf '%-26s %-8s %8.1f' "$name" "$status" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")")
}
reached() {  # reached RUN_DIR: the run's metrics say the target was met; prints the seconds of training
    "$PY" - "$1" <<'PYEOF'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
print(f"{m['status']}: test accuracy {m['test_accuracy']:.4f}, {m['target_reached_seconds']} s of training, "
      f"peak device memory {m.get('peak_device_memory_bytes', 0) / 2**20:.1f} MiB")
sys.exit(0 if m["status"] == "target_reached" else 1)
PYEOF
}
train_to() {  # train_to ACC RUN_DIR
    "$PY" -m fastcnn train --backend cupy --target-acc "$1" --no-progress --out "$2" && reached "$2"
}

check "gpu tests" env CUDA_LAUNCH_BLOCKING=1 "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider tests/gpu
check "bench conv --backend cupy" "$PY" -m fastcnn bench conv --backend cupy --out "$OUT/bench" ${QUICK:+--quick}
check "train to 97 %" train_to 0.97 "$OUT/run97"
check "train to 99 %" train_to 0.99 "$OUT/run99"

echo
echo "device: $DEVICE"
printf '%-26s %-8s %8s\n' check status seconds
for r in "${ROWS[@]}"; do echo "$r"; done
for acc in 97 99; do [[ -f "$OUT/run$acc/metrics.json" ]] && echo "train to $acc %: $(reached "$OUT/run$acc")"; done
echo "logs, bench tables and runs: $OUT"
exit $FAILED
