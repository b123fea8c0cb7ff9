#!/usr/bin/env bash
# Train the shipped shapes model from scratch: CLIP, then the autoencoder, then the U-Net, then the pipeline folder
# (float16) in minildm/weights/shapes, and score it with the attribute checker. About 30 minutes on 2 CPU cores.
#
#   bash scripts/train_shapes.sh [run_dir]          # default run_dir: runs/shapes (checkpoints, loss curves, grids)
#   RESUME=1 bash scripts/train_shapes.sh           # continue an interrupted run from its checkpoints
#
# One BLAS thread: the models' matrix products are small, and OpenBLAS threads that spin while waiting for a busy
# core make a shared machine many times slower (measured: 2 threads 15-20x slower than 1 when the cores are busy).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/shapes}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$RUN_DIR"
python - "$RUN_DIR" "${RESUME:-0}" <<'EOF'
import sys
from minildm.train.all import train_all
train_all("shapes", sys.argv[1], resume=sys.argv[2] == "1", pipeline_dir="minildm/weights/shapes")
EOF
PYTHONPATH=. python scripts/evaluate_shapes.py minildm/weights/shapes --n 500 --out "$RUN_DIR/eval"
