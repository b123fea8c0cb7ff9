#!/usr/bin/env bash
# Train the evaluation networks that `python -m minildm evaluate` measures with, into minildm/weights/eval (float16):
# the feature network of FD_minildm / KID and the evaluation CLIP (see minildm/metrics/eval_networks.py). They learn
# from splits "eval" and "heldout" with their own seed, never from the generators' training images.
#
#   bash scripts/train_eval_networks.sh [run_dir]      # default run_dir: runs/eval_networks (checkpoints, loss curves)
#   RESUME=1 bash scripts/train_eval_networks.sh       # continue an interrupted run from its checkpoints
#
# The two networks share nothing but their data, so they train side by side, one process per core, each with one
# BLAS thread (small matrix products gain little from threads, and spinning threads slow a busy machine down).
# About 3 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/eval_networks}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$RUN_DIR"
train_part() {
  python - "$1" "$RUN_DIR" "${RESUME:-0}" <<'PY'
import sys
from minildm.metrics.eval_training import train_eval_networks
part, run_dir, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
train_eval_networks(parts=(part,), run_dir=run_dir, resume=resume, progress=part == "clip")
PY
}
start=$SECONDS
train_part features & features_pid=$!
train_part clip
wait "$features_pid"
echo "evaluation networks trained in $((SECONDS - start)) s; written to minildm/weights/eval"
