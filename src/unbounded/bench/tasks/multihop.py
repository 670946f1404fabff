"""Multi-hop questions over a corpus of generated documents, in the spirit of BrowseComp-Plus.

Each question chains two or three documents ("In which city was the founder of the company that
makes the Quorix 7 born?": product -> company -> person). The corpus has about one document per
1,000 tokens (1,000 documents at 1M tokens, more or fewer to hit the size; ``n_docs`` fixes the
count and stretches documents instead). Context: ``{doc_id: text}``.
Score: exact match after normalisation, or the gold answer as a whole phrase of a short answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .answers import answer_segment, contains_phrase, normalize
from .base import CHARS_PER_TOKEN, TaskItem, check_size, context_chars, item_id, item_rng
from .multihop_world import World, build_world, entities, fact_sentences, filler_pool, render_document

NAME = "multihop"
DOC_TOKENS = 1_000
ANSWER_FORMAT = "Give only the short answer (a name or a year) on the last line as `Answer: <answer>`."
#: Answers longer than this many words are not "short", so a phrase match does not count.
SHORT_ANSWER_WORDS = 20


@dataclass(slots=True)
class Hop:
    """A generated question with the documents (entity names) the chain passes through."""

    kind: str
    text: str
    answer: str
    chain: list[str]


def _q_product_founder_birthplace(rng: random.Random, w: World) -> Hop:
    p = w.products[rng.choice(list(w.products))]
    c = w.companies[p.maker]
    f = w.people[c.founder]
    text = f"In which city was the founder of the company that makes the {p.name} born?"
    return Hop("product_founder_birthplace", text, f.birth_city, [p.name, c.name, f.name])


def _q_product_hq_region(rng: random.Random, w: World) -> Hop:
    p = w.products[rng.choice(list(w.products))]
    c = w.companies[p.maker]
    city = w.cities[c.hq]
    text = f"In which region is the city where the company that makes the {p.name} has its headquarters?"
    return Hop("product_hq_region", text, city.region, [p.name, c.name, city.name])


def _q_product_hq_mayor(rng: random.Random, w: World) -> Hop:
    p = w.products[rng.choice(list(w.products))]
    c = w.companies[p.maker]
    city = w.cities[c.hq]
    text = f"Who is the mayor of the city where the company that makes the {p.name} is headquartered?"
    return Hop("product_hq_mayor", text, city.mayor, [p.name, c.name, city.name])


def _q_product_founder(rng: random.Random, w: World) -> Hop:
    p = w.products[rng.choice(list(w.products))]
    c = w.companies[p.maker]
    return Hop("product_founder", f"Who founded the company that makes the {p.name}?", c.founder, [p.name, c.name])


def _q_person_employer_hq(rng: random.Random, w: World) -> Hop:
    person = w.people[rng.choice(list(w.people))]
    c = w.companies[person.employer]
    text = f"In which city is the company that {person.name} works for headquartered?"
    return Hop("person_employer_hq", text, c.hq, [person.name, c.name])


def _q_person_employer_founded(rng: random.Random, w: World) -> Hop:
    person = w.people[rng.choice(list(w.people))]
    c = w.companies[person.employer]
    text = f"In what year was the company that {person.name} works for founded?"
    return Hop("person_employer_founded", text, str(c.founded), [person.name, c.name])


def _q_city_mayor_birth_year(rng: random.Random, w: World) -> Hop:
    city = w.cities[rng.choice(list(w.cities))]
    mayor = w.people[city.mayor]
    text = f"In what year was the mayor of {city.name} born?"
    return Hop("city_mayor_birth_year", text, str(mayor.birth_year), [city.name, mayor.name])


def _q_company_founder_birthplace(rng: random.Random, w: World) -> Hop:
    c = w.companies[rng.choice(list(w.companies))]
    f = w.people[c.founder]
    text = f"In which city was the founder of {c.name} born?"
    return Hop("company_founder_birthplace", text, f.birth_city, [c.name, f.name])


def _q_person_birthplace_mayor(rng: random.Random, w: World) -> Hop:
    person = w.people[rng.choice(list(w.people))]
    city = w.cities[person.birth_city]
    text = f"Who is the mayor of the city where {person.name} was born?"
    return Hop("person_birthplace_mayor", text, city.mayor, [person.name, city.name])


def _q_company_hq_region(rng: random.Random, w: World) -> Hop:
    c = w.companies[rng.choice(list(w.companies))]
    city = w.cities[c.hq]
    text = f"In which region is the city where {c.name} has its headquarters?"
    return Hop("company_hq_region", text, city.region, [c.name, city.name])


KINDS: dict[str, Callable[[random.Random, World], Hop]] = {
    f.__name__.removeprefix("_q_"): f
    for f in (
        _q_product_founder_birthplace,
        _q_product_hq_region,
        _q_product_hq_mayor,
        _q_product_founder,
        _q_person_employer_hq,
        _q_person_employer_founded,
        _q_city_mayor_birth_year,
        _q_company_founder_birthplace,
        _q_person_birthplace_mayor,
        _q_company_hq_region,
    )
}


def build_corpus(rng: random.Random, chars: int, n_docs: int | None = None) -> tuple[World, dict[str, str]]:
    """A world and its documents totalling about ``chars`` characters (ids ``doc-00001``... shuffled)."""
    if n_docs is None:
        n_docs = max(12, round(chars / (DOC_TOKENS * CHARS_PER_TOKEN)))
    world = build_world(rng, n_docs)
    ents = entities(world)
    rng.shuffle(ents)
    width = max(5, len(str(len(ents))))
    ids = [f"doc-{i:0{width}d}" for i in range(1, len(ents) + 1)]
    fillers = filler_pool(rng)
    avg_filler = sum(map(len, fillers)) / len(fillers) + 1
    docs: dict[str, str] = {}
    remaining = chars
    for i, (doc_id, (kind, name)) in enumerate(zip(ids, ents, strict=True)):
        left = len(ents) - i
        facts = fact_sentences(world, kind, name, rng)
        core = len(doc_id) + len(name) + 9 + sum(len(f) + 2 for f in facts)
        budget = remaining / left * (rng.uniform(0.7, 1.3) if left > 1 else 1.0)
        k = max(0, round((budget - core) / avg_filler))
        text = render_document(facts, rng.choices(fillers, k=k), name, rng)
        docs[doc_id] = text
        remaining -= len(doc_id) + len(text)
    return world, docs


def generate(
    size_tokens: int,
    n: int = 1,
    seed: int = 0,
    *,
    n_docs: int | None = None,
    kind: str | None = None,
    questions_per_context: int = 1,
) -> list[TaskItem]:
    """``n`` questions, cycling through ``KINDS`` unless ``kind`` is fixed."""
    check_size(size_tokens, 2_000)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    chars = size_tokens * CHARS_PER_TOKEN
    kinds = list(KINDS)
    per = max(1, questions_per_context)
    items = []
    world: World | None = None
    docs: dict[str, str] = {}
    for i in range(n):
        if i % per == 0:
            world, docs = build_corpus(item_rng(NAME, seed, size_tokens, i), chars, n_docs)
        assert world is not None
        hop = KINDS[kind or kinds[i % len(kinds)]](item_rng(NAME + "/q", seed, size_tokens, i), world)
        items.append(
            TaskItem(
                task=NAME,
                id=item_id(NAME, size_tokens, seed, i),
                size_tokens=context_chars(docs) // CHARS_PER_TOKEN,
                question=(
                    "The context is a collection of documents about fictional people, companies, "
                    f"products and cities, keyed by document id. {hop.text}"
                ),
                context=docs,
                answer=hop.answer,
                answer_format=ANSWER_FORMAT,
                metadata={
                    "kind": hop.kind,
                    "hops": len(hop.chain),
                    "chain": hop.chain,
                    "n_docs": len(docs),
                },
            )
        )
    return items


def score(item: TaskItem, prediction: str) -> float:
    """1.0 on normalised exact match, or when a short answer contains the gold as a whole phrase."""
    seg = answer_segment(prediction)
    gold = str(item.answer)
    if normalize(seg) == normalize(gold):
        return 1.0
    if len(normalize(seg).split()) <= SHORT_ANSWER_WORDS and contains_phrase(seg, gold):
        return 1.0
    return 0.0
