#!/usr/bin/env bash
# The runs behind docs/RESULTS.md, on the embedded local model (CPU only, slow: see RESULTS.md).
#
#   benchmarks/paper.sh            # the small run, in stages (each stage adds to the same folder)
#   benchmarks/paper.sh report     # rebuild report.md and the PNGs from what has finished
#
# Stages go from the core comparison to the full grid, so that whatever has finished when you stop
# it is a complete comparison: 1) direct, retrieval, rlm on one item per task and size; 2) the other
# methods on that item; 3) three items each. Resumable: run it again and it continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/local-1.5b}
MODEL=${MODEL:-local/qwen2.5-coder-1.5b}
TASKS=${TASKS:-niah,oolong}
SIZES=${SIZES:-8k,32k}

if [[ "${1:-run}" == "report" ]]; then
    exec "$PY" -m unbounded bench report "$OUT" --title "unbounded bench: $MODEL on this machine"
fi

bench() {
    "$PY" -m unbounded bench run --task "$TASKS" --sizes "$SIZES" --model "$MODEL" --seed 0 \
        --timeout-per-item 10800 --out "$OUT" "$@" || true   # failed items are recorded; go on
}
bench --methods direct,retrieval,rlm -n 1
bench --methods direct,retrieval,rlm,rlm-nosub,summarize -n 1
bench --methods direct,retrieval,rlm,rlm-nosub,summarize -n 3
"$PY" -m unbounded bench report "$OUT" --title "unbounded bench: $MODEL on this machine"
