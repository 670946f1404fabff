"""Single needle in a haystack, in the style of RULER's ``niah_single`` tasks.

One sentence ``One of the special magic numbers for <key> is: <value>.`` is hidden at a seeded
depth in a haystack of either RULER-style repeated noise or natural prose (stdlib docstrings and
help topics). Values are 7-digit numbers or UUIDs. A prediction scores 1 when it contains the value.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from .answers import strip_markup
from .base import CHARS_PER_TOKEN, TaskItem, check_size, context_chars, item_id, item_rng
from .stdlib import prose_paragraphs, python_version
from .words import ADJECTIVES, NOUNS

NAME = "niah"
NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
HAYSTACKS = ("noise", "prose")
VALUE_TYPES = ("number", "uuid")
#: The three RULER-like variants items cycle through when no variant is forced.
VARIANTS: tuple[tuple[str, str], ...] = (("noise", "number"), ("prose", "number"), ("prose", "uuid"))


@dataclass(frozen=True, slots=True)
class Needle:
    key: str
    value: str
    value_type: str

    @property
    def noun(self) -> str:
        return "number" if self.value_type == "number" else "uuid"

    @property
    def sentence(self) -> str:
        return f"One of the special magic {self.noun}s for {self.key} is: {self.value}."

    @property
    def question(self) -> str:
        return f"What is the special magic {self.noun} for {self.key} mentioned in the provided text?"


def make_needle(rng: random.Random, value_type: str) -> Needle:
    key = f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
    if value_type == "number":
        value = str(rng.randint(1_000_000, 9_999_999))
    elif value_type == "uuid":
        value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    else:
        raise ValueError(f"value_type must be one of {VALUE_TYPES}, got {value_type!r}")
    return Needle(key, value, value_type)


def noise_haystack(chars: int, needle: str, depth: float) -> str:
    """Repeated RULER noise of about ``chars`` characters with ``needle`` at a sentence boundary.

    Built from two repeated halves and joined once, so peak memory is about twice the output.
    """
    unit = NOISE
    per_unit = unit.count(". ")
    units = max(chars - len(needle) - 1, len(unit)) // len(unit)
    at = round(depth * units * per_unit)
    head_units, head_sentences = divmod(at, per_unit)
    split = _sentence_offset(unit, head_sentences)
    if head_units >= units:
        head, tail = unit * units, ""
    else:
        head = unit * head_units + unit[:split]
        tail = unit[split:] + unit * (units - head_units - 1)
    return "".join([head, needle, " ", tail])


def _sentence_offset(text: str, n: int) -> int:
    """Offset just after the ``n``-th sentence of ``text`` (sentences end with '. ')."""
    pos = 0
    for _ in range(n):
        nxt = text.find(". ", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 2
    return pos


def prose_haystack(chars: int, needle: str, depth: float, rng: random.Random) -> str:
    """Stdlib prose paragraphs of about ``chars`` characters with ``needle`` as its own paragraph.

    The pool (about 1 MB) is reshuffled for every pass, so long haystacks repeat paragraphs but
    not in one fixed order.
    """
    pool = prose_paragraphs()
    sep = "\n\n"
    target = max(chars - len(needle) - len(sep), 0)
    picked: list[str] = []
    total = 0
    order = list(range(len(pool)))
    while total < target:
        rng.shuffle(order)
        for i in order:
            para = pool[i]
            if total + len(para) + len(sep) > target:
                # Fill the remainder with a paragraph prefix cut at a word, to land near the size.
                room = target - total - len(sep)
                if room > 40:
                    cut = para.rfind(" ", 0, room)
                    picked.append(para[: cut if cut > 0 else room].rstrip(",;:") + ".")
                total = target
                break
            picked.append(para)
            total += len(para) + len(sep)
    # Place the needle after the paragraph where the running length crosses the depth.
    want = depth * total
    run = 0
    at = len(picked)
    for i, para in enumerate(picked):
        if run >= want:
            at = i
            break
        run += len(para) + len(sep)
    picked.insert(at, needle)
    return sep.join(picked)


def generate(
    size_tokens: int,
    n: int = 1,
    seed: int = 0,
    *,
    haystack: str | None = None,
    value_type: str | None = None,
    depth: float | None = None,
) -> list[TaskItem]:
    """``n`` needle items of about ``size_tokens`` tokens.

    Without ``haystack``/``value_type`` the items cycle through RULER's three single-needle variants
    (noise + number, prose + number, prose + uuid). ``depth`` in [0, 1] fixes the needle position;
    otherwise it is drawn per item.
    """
    check_size(size_tokens, 100)
    if haystack is not None and haystack not in HAYSTACKS:
        raise ValueError(f"haystack must be one of {HAYSTACKS}, got {haystack!r}")
    chars = size_tokens * CHARS_PER_TOKEN
    items = []
    for i in range(n):
        rng = item_rng(NAME, seed, size_tokens, i)
        default_hay, default_val = VARIANTS[i % len(VARIANTS)]
        hay = haystack or default_hay
        vtype = value_type or default_val
        d = rng.random() if depth is None else min(max(depth, 0.0), 1.0)
        needle = make_needle(rng, vtype)
        if hay == "noise":
            context = noise_haystack(chars, needle.sentence, d)
        else:
            context = prose_haystack(chars, needle.sentence, d, rng)
        items.append(
            TaskItem(
                task=NAME,
                id=item_id(NAME, size_tokens, seed, i),
                size_tokens=context_chars(context) // CHARS_PER_TOKEN,
                question=needle.question,
                context=context,
                answer=needle.value,
                answer_format=(f"Answer with the special magic {needle.noun} itself, e.g. `Answer: <{needle.noun}>`."),
                metadata={
                    "haystack": hay,
                    "value_type": vtype,
                    "key": needle.key,
                    "depth": d,
                    "needle_offset": context.find(needle.sentence),
                    "python": python_version(),
                },
            )
        )
    return items


def score(item: TaskItem, prediction: str) -> float:
    """1.0 when the gold value appears in the prediction (case-insensitive for UUIDs)."""
    gold = str(item.answer).lower()
    return 1.0 if gold in strip_markup(prediction).lower() else 0.0
