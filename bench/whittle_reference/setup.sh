#!/usr/bin/env bash
# Create bench/.whittle-env: a virtualenv with torch==2.13.0 (CPU) and whittle 0.6.0 (PyPI,
# Apache-2.0) on litgpt 0.5.12, for bench/bench_whittle.py (same GPT, same weights: outputs and
# training step time against whittle's GPT supernet).
#
# What it took (tried on this machine, Python 3.11):
# * whittle, litgpt and syne-tune go in with --no-deps, at the versions whittle 0.6.0 pins
#   (litgpt==0.5.12, syne-tune==0.13.0): their declared dependencies would pull lm-eval, wandb,
#   boto3, torchvision and a CUDA torch. torchvision is never imported on the path the bench
#   uses (whittle.models.gpt), so no stub is needed.
# * lightning and torchmetrics also --no-deps (litgpt.api and litgpt.utils import lightning at
#   module level); what they import is installed explicitly: lightning-utilities, fsspec,
#   pyyaml, packaging, tqdm, jsonargparse, huggingface-hub, tokenizers, safetensors, psutil.
# * numpy, pandas, scikit-learn, scipy for `import nas` (the bench imports this project from
#   the source tree). pip then reports that syne-tune 0.13.0 wants numpy<1.27 and
#   sortedcontainers: syne-tune is not imported by the bench (no multi-objective search yet).
#
# Usage:  bash bench/whittle_reference/setup.sh      then
#         bench/.whittle-env/bin/python bench/bench_whittle.py
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENV="${WHITTLE_ENV:-$ROOT/bench/.whittle-env}"
PYTHON="${PYTHON:-python3.11}"

if [ ! -x "$ENV/bin/python" ]; then
    "$PYTHON" -m venv "$ENV"
fi
PIP=("$ENV/bin/pip" install --quiet)
"${PIP[@]}" -c "$ROOT/constraints.txt" "torch==2.13.0" numpy pandas scikit-learn scipy \
    lightning-utilities typing-extensions fsspec pyyaml packaging tqdm jsonargparse \
    huggingface-hub tokenizers safetensors psutil
"${PIP[@]}" --no-deps "whittle==0.6.0" "litgpt==0.5.12" "syne-tune==0.13.0" lightning torchmetrics
"$ENV/bin/python" -c "import torch; from whittle.models.gpt import GPT; assert torch.__version__.startswith('2.13.0'); print('whittle imports OK')"
