#!/usr/bin/env bash
# The runs behind docs/RESULTS.md, on the embedded local model (CPU only, slow: see RESULTS.md).
#
#   benchmarks/paper.sh            # every stage, in order (each adds to the same folder)
#   benchmarks/paper.sh 2          # one stage
#   benchmarks/paper.sh report     # rebuild report.md and the PNGs from what has finished
#
# Stages go from the paper's targets to the wider grid, so that whatever has finished is a complete
# comparison: 1) niah with rlm from 8K to 4M tokens; 2) oolong and oolong-pairs at 32K with rlm;
# 3) all five tasks at 8K with every method, then codeqa and multihop with direct and rlm on 5 items; 4) the baselines for 2) — at 32K one direct or retrieval
# item evaluates a full 32K-token window, 15-20 minutes on two CPU cores; 5) the rest of the grid.
# Resumable: run it again and it continues where it stopped (done items are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/local-1.5b}
MODEL=${MODEL:-local/qwen2.5-coder-1.5b}
ALL_METHODS=direct,summarize,retrieval,rlm,rlm-nosub

bench() {
    "$PY" -m unbounded bench run --model "$MODEL" --seed 0 --timeout-per-item 1800 --out "$OUT" "$@" \
        || true   # failed items are recorded as such; go on
}

stage() {
    case "$1" in
        1) bench --task niah --sizes 8k,32k,128k,1m,4m --methods rlm -n 5 ;;
        2) bench --task oolong,oolong-pairs --sizes 32k --methods rlm -n 1 ;;
        3) bench --task niah,oolong,oolong-pairs,codeqa,multihop --sizes 8k --methods "$ALL_METHODS" -n 1
           bench --task multihop,codeqa --sizes 8k --methods rlm,direct -n 5 ;;
        4) bench --task niah,oolong,oolong-pairs --sizes 32k --methods direct,retrieval -n 1 ;;
        5) bench --task niah --sizes 128k,1m,4m --methods direct,retrieval -n 1
           bench --task niah,oolong,oolong-pairs --sizes 32k,128k --methods "$ALL_METHODS" -n 3 ;;
        *) echo "unknown stage $1 (1-5 or report)" >&2; exit 2 ;;
    esac
}

case "${1:-all}" in
    report) ;;
    all) for s in 1 2 3 4 5; do stage "$s"; done ;;
    *) stage "$1" ;;
esac
exec "$PY" -m unbounded bench report "$OUT" --title "unbounded bench: $MODEL on this machine"
