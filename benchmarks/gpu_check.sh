#!/usr/bin/env bash
# GPU check, under 5 minutes on a GPU machine: NATTEN's CUDA forward+backward against the exact
# fallback, encoder updates/s on GPU vs CPU, and one `train rl` iteration with a GPU learner.
#
# How to run (from the repository root, after `make venv`):  bash benchmarks/gpu_check.sh
# What to expect: the lines of benchmarks/gpu_check.py, then the `train rl` run's summary;
# exit 0 only if every step passed. Record the output in benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
E=.venv/bin/editorbot
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "== NATTEN CUDA vs fallback, encoder updates/s"
$PY benchmarks/gpu_check.py

echo "== one train rl iteration with one GPU learner"
OMP_NUM_THREADS=1 $E demo-data --out "$WORK/data" --tracks 3 --seed 5 >/dev/null
start=$(date +%s)
OMP_NUM_THREADS=1 $E train rl --config tune_configs/ppo_debug.yaml --data-dir "$WORK/data" \
  --save-dir "$WORK/run" --stop-iters 1 --num-learners 1 --num-gpus-per-learner 1
echo "train rl (1 iteration, 1 GPU learner): $(( $(date +%s) - start )) s wall"
test -f "$WORK/run/best/editorbot_checkpoint.json"
echo "gpu_check: all steps passed"
