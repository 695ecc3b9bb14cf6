#!/usr/bin/env bash
# GPU check (about 10 minutes): on a machine with an NVIDIA GPU,
#   1. shows that ranking runs on the GPU with the repository resident there, and prints its
#      latency at 1M and 10M responses (bench/gpu_ranking.py);
#   2. times the served hybrid path at 1M and 10M, stage by stage, with the lexical search
#      (CPU, inverted index) timed apart from the neural search (GPU): bench/served_path.py
#      with the trained Ubuntu model when artifacts/ubuntu/model was carried along, else an
#      untrained stand-in of its shape over generated text; and how much of the exact top-10
#      the served ranking keeps.
#
#   bash bench/gpu_check.sh            # from the repository root
#
# It uses the project's .venv when present, else python3; TensorFlow with CUDA must be
# importable (pip install -e ".[gpu]" on a machine that reaches PyPI). Only $TMPDIR is written.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || {
    echo "nvidia-smi failed: no NVIDIA GPU here" >&2; exit 2; }

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! "$PY" -c "import tensorflow" 2>/dev/null; then
    echo "== installing TensorFlow with CUDA (needs PyPI)"
    "$PY" -m pip install -q "tensorflow[and-cuda]==2.21.*" numpy faiss-cpu || {
        echo "TensorFlow is not installed and could not be installed" >&2; exit 2; }
fi

echo "== ranking on the GPU"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=2
timeout 270 "$PY" bench/gpu_ranking.py --require-gpu --sizes 1000000 10000000

echo "== the served hybrid path on the GPU (index built first: a few minutes at 10M)"
WORKDIR="${TMPDIR:-/tmp}/chatbot-gpu-served"
timeout 420 "$PY" bench/served_path.py --sizes 1000000 10000000 --calls 40 --no-before \
    --recall-queries 10 --workdir "$WORKDIR" \
    || echo "the served-path check stopped early (timeout or error): see above" >&2
