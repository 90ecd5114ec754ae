#!/usr/bin/env bash
# Creates the virtual environment (default .venv) and installs rsnet with its test extra.
# - A torch already importable by $PYTHON (e.g. a GPU cluster's CUDA build) is kept: the venv
#   then sees the system's site-packages and pip finds its requirement satisfied.
# - Otherwise torch==2.13.0 is installed first, before anything could ask for a newer one
#   (on the project's CPU machines that is a CPU build that lies on disk).
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    if "$PYTHON" -c "import torch" 2>/dev/null; then
        echo "setup: keeping the installed torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$PYTHON" -m venv "$VENV"
    fi
fi
# pip would compile each of the ~15,000 .py files it installs, one at a time (most are never
# imported); the installs skip that, and one import of what rsnet's commands and tests use writes
# the bytecode they need (even where PYTHONDONTWRITEBYTECODE is set, so that Ray's workers find it)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet --no-compile "torch==2.13.0"
fi
"$VENV/bin/pip" install --quiet --no-compile -e ".[test]"
# (a trial's Adam optimizer imports torch._dynamo, sympy and more on first use: ~1,000 modules,
# 2.6 s of compiling in every trial's process where their bytecode was never written)
env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" -c "import ray.tune, torch.utils.tensorboard, pytest, xdist
import rsnet.demo, rsnet.sweep.__main__, rsnet.sweep.runner, rsnet.synth, rsnet.prepare, rsnet.predict, rsnet.report.__main__
import torch; torch.optim.Adam([torch.zeros(1, requires_grad=True)])"
touch "$VENV/.installed"
