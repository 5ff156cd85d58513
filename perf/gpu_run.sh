#!/usr/bin/env bash
# The ONE command for the GPU test machine (no package index there; about 15 minutes per loan):
#     bash perf/gpu_run.sh                    # offline install, then the acceptance run (at most 8 min)
#     bash perf/gpu_run.sh --dry-run          # offline install, then only the plan (any machine)
# Arguments go to perf/gpu_acceptance.py. Needs .gpu-wheels/ from perf/gpu_wheels.sh
# (carried along by the device tool: carry [".gpu-wheels"]). Writes $OUT/gpu-table.md and
# $OUT/gpu-run.log ($OUT defaults to ./gpu-acceptance-out). PYTHON picks the interpreter that
# holds the machine's torch (default: python, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
OUT=${OUT:-$PWD/gpu-acceptance-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu-run.log") 2>&1
wheels=.gpu-wheels
say() { echo "gpu_run.sh [$((SECONDS - started)) s] $*"; }

# Nothing but the wheel folder: no index, no pip config, constraints or find-links of the host.
export PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The machine is lent and wiped afterwards; only packages it lacks are added (never replaced).
export PIP_BREAK_SYSTEM_PACKAGES=1
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_CONSTRAINT PIP_REQUIREMENT PIP_REQUIRE_VIRTUALENV

if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
    say "no wheels in $wheels/: run 'bash perf/gpu_wheels.sh' on a machine with network access first"
    exit 3
fi
say "python $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv \
    | tee "$OUT/nvidia-smi.csv"

# Run-time wheels whose package is not installed yet (setuptools and wheel only build mlbench).
missing=$("$PYTHON" - "$wheels" <<'PY'
import importlib.metadata as md, pathlib, sys
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name = wheel.name.split("-")[0]
    if name.lower() in ("setuptools", "wheel"):
        continue
    try:
        md.version(name)
    except md.PackageNotFoundError:
        print(wheel)
PY
)
if [ -n "$missing" ]; then
    say "installing $(echo $missing | xargs -n1 basename | tr '\n' ' ')"
    # shellcheck disable=SC2086  # one path per word
    timeout 120 "$PYTHON" -m pip install --no-index --find-links "$wheels" --no-deps $missing || { say "wheel install failed"; exit 3; }
else
    say "every wheel's package is already installed"
fi
# mlbench itself, editable; pip builds it in isolation with setuptools and wheel from the folder.
timeout 180 "$PYTHON" -m pip install --no-index --find-links "$wheels" --no-deps -e . \
    || { say "mlbench install failed"; exit 3; }
say "installed"

if [ "$*" != "--dry-run" ]; then
    "$PYTHON" perf/gpu_acceptance.py --dry-run
fi
# The script keeps itself within 8 minutes; the timeout only guards against a hang.
timeout --kill-after=10 510 "$PYTHON" perf/gpu_acceptance.py --out "$OUT/gpu-table.md" "$@"
status=$?
say "gpu_acceptance.py exited $status; report in $OUT/gpu-table.md"
exit $status
