#!/usr/bin/env bash
# Run HERE, with network access, before a GPU session: puts into .gpu-wheels/ (git-ignored; the
# device tool carries it with `carry: [".gpu-wheels"]`) the pure-Python wheels that the GPU test
# machine lacks, so that perf/gpu_run.sh installs mlbench there without any package index.
# The GPU machine has its own torch, torchvision, timm, pluggy, click, rich, pyarrow, pandas,
# scikit-learn, matplotlib and OpenCV; `python perf/gpu_acceptance.py --dry-run` lists what
# else is missing. Versions are the ones mlbench's tests run with.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
dest=.gpu-wheels
mkdir -p "$dest"
started=$SECONDS

# Run-time packages missing there (ttach and tqdm are grad-cam's imports; tqdm usually comes
# with timm's huggingface_hub, and gpu_run.sh skips any wheel whose package is already installed).
"$PYTHON" -m pip download --no-deps --only-binary=:all: --dest "$dest" \
    iterative-stratification==0.1.9 ttach==0.0.3 tqdm==4.67.1
# grad-cam 1.5.x is published on PyPI as a source archive only: build its pure-Python wheel here.
"$PYTHON" -m pip wheel --no-deps --wheel-dir "$dest" grad-cam==1.5.7
# Build-only: pip's isolated build of mlbench (pyproject: setuptools>=68, wheel; wheel needs packaging).
"$PYTHON" -m pip download --no-deps --only-binary=:all: --dest "$dest" \
    setuptools==80.9.0 wheel==0.45.1 packaging==25.0

for wheel in "$dest"/*.whl; do
    case "$wheel" in *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
        *) echo "gpu_wheels.sh: $wheel is not a pure-Python wheel; it may not install on the GPU machine" >&2; exit 1;;
    esac
done
ls -l "$dest"
echo "gpu_wheels.sh: $(ls "$dest"/*.whl | wc -l) wheels, $(du -sh "$dest" | cut -f1), in $((SECONDS - started)) s"
