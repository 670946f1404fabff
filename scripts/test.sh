#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, unit tests, and the end-to-end tests on
# the real embedded model. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q "$@"
