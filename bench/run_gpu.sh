#!/usr/bin/env bash
# One GPU session: the test suite on CUDA (kernels natively, pipeline tests with a cuda parameter), then kernel, backend and end-to-end benchmarks.
# Usage (on the GPU machine, repo root): OUT=dir bash bench/run_gpu.sh [tests|kernels|backends|e2e|temporal ...]
set -uo pipefail
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
if [ -d .whl ]; then  # wheels the device lacks (PyAV)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
# what the machine can run, and each engine path's ms and dB on a probe, before anything else
python3 -m streamgan doctor --json "$OUT/doctor.json" --overwrite 2>&1 | tee "$OUT/doctor.txt"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests kernels backends e2e temporal)
for step in "${steps[@]}"; do
  case $step in
    tests) # the whole suite: kernels natively, pipeline tests with their CUDA parameter (modules whose
           # packages this machine lacks fail to collect and are listed, the rest run)
           python3 -m pytest -q tests -p no:cacheprovider --continue-on-collection-errors -rfE 2>&1 | tail -40 \
             | tee "$OUT/tests_cuda.txt" ;;
    kernels) python3 bench/bench_kernels.py --out "$OUT" ;;
    backends) python3 bench/bench_backends.py --out "$OUT" ;;
    e2e) python3 -X faulthandler bench/bench_e2e.py --out "$OUT" ${E2E_ARGS:-}
         python3 -X faulthandler bench/bench_e2e.py --whole-process --out "$OUT" ;;
    temporal) python3 -m pytest -q tests/streamgan/test_temporal.py -k torch -p no:cacheprovider 2>&1 | tail -3 \
                | tee "$OUT/tests_temporal_cuda.txt"
              python3 bench/bench_temporal.py --cost-only --out "$OUT" ;;
  esac
done
