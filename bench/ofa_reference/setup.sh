#!/usr/bin/env bash
# Create bench/.ofa-env: a virtualenv with torch==2.13.0 (CPU) and the reference `ofa` package
# (mit-han-lab/once-for-all, MIT) from PyPI, for the "vs ofa" column of bench_supernet_speed.py.
#
# `ofa` is installed with --no-deps (it pins nothing useful and would pull torchvision); what it
# imports at module level is installed explicitly (numpy, pillow, tqdm; pandas for `import nas`)
# and torchvision is replaced by the stub package in stubs/ (only the names ofa imports; nothing
# in it runs).
#
# Also: bench/.ofa-env/bin/python bench/ofa_reference/compare_ofa.py  (ours == ofa, same weights)
#
# Usage:  bash bench/ofa_reference/setup.sh      then
#         bench/.ofa-env/bin/python bench/bench_supernet_speed.py --ofa
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENV="$ROOT/bench/.ofa-env"
PYTHON="${PYTHON:-python3.11}"

if [ ! -x "$ENV/bin/python" ]; then
    "$PYTHON" -m venv "$ENV"
fi
"$ENV/bin/pip" install --quiet -c "$ROOT/constraints.txt" "torch==2.13.0" numpy pillow tqdm pandas
"$ENV/bin/pip" install --quiet --no-deps ofa
# the stub torchvision sits on the env's path via a .pth file (git-ignored env, tracked stub)
SITE="$("$ENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$ROOT/bench/ofa_reference/stubs" > "$SITE/ofa_reference_stubs.pth"
"$ENV/bin/python" -c "from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3; print('ofa imports OK')"
