#!/usr/bin/env bash
# The README's first command: set up (if needed), write a ~1.2M-character haystack with one hidden
# fact into out/, and let an RLM on the embedded local model find it. After set-up no API key and no
# network are needed. The answer goes to stdout; turns, sub-calls, tokens and time to stderr.
#
#   ./scripts/demo.sh                      # the default seeded haystack
#   UNBOUNDED_DEMO_SEED=5 ./scripts/demo.sh   # another one (same size)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/bootstrap.sh
mkdir -p out
rm -f out/demo.jsonl

# A RULER-style needle in stdlib documentation prose (unbounded.bench.tasks.niah), seeded, so every
# run of this script asks the same question of the same text.
generated="$(
    UNBOUNDED_DEMO_SEED="${UNBOUNDED_DEMO_SEED:-1}" .venv/bin/python - <<'EOF'
import os
from pathlib import Path

from unbounded.bench.tasks import niah

item = niah.generate(300_000, 1, int(os.environ["UNBOUNDED_DEMO_SEED"]), haystack="prose", value_type="number")[0]
Path("out/haystack.txt").write_text(item.context, encoding="utf-8")
Path("out/demo-expected.txt").write_text(str(item.answer) + "\n", encoding="utf-8")
print(f"{len(item.context):,}\t{item.question}")
EOF
)"
chars="$(printf '%s' "$generated" | cut -f1)"
question="$(printf '%s' "$generated" | cut -f2-)"
expected="$(cat out/demo-expected.txt)"

echo "haystack: out/haystack.txt, ${chars} characters of Python documentation with one sentence that answers:" >&2
echo "question: ${question}" >&2
echo "running:  .venv/bin/unbounded ask \"<question>\" out/haystack.txt --trace out/demo.jsonl" >&2
echo >&2

status=0
.venv/bin/unbounded ask "$question" out/haystack.txt --trace out/demo.jsonl | tee out/demo-answer.txt || status=$?

echo >&2
echo "expected: ${expected}" >&2
if [ "$status" -eq 0 ] && grep -qF "$expected" out/demo-answer.txt; then
    echo "correct: the RLM found it without the haystack ever entering the model's window" >&2
    echo "see how: .venv/bin/unbounded trace out/demo.jsonl" >&2
else
    echo "the answer differs from the expected one (exit ${status}); see .venv/bin/unbounded trace out/demo.jsonl" >&2
    exit 1
fi
