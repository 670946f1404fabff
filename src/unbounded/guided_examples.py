"""The worked examples of the guided style: one short program per (question shape, context kind).

Each example is a made-up question about a made-up context of the same kind as the real one (a
``shipping`` package's sources, a vehicle register of ``Field: value`` records, a set of policy
documents, a handbook), then the turns that answer it: code, what it printed, and the ``FINAL``. A
small model copies the program and changes the names; the examples are written so that what they
teach holds for any question of their shape: find the candidate places, read them (with the
sub-model where reading is needed), reduce in code, answer in the asked format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .shapes import ContextKind, Shape

K, S = ContextKind, Shape


@dataclass(frozen=True, slots=True)
class Example:
    context: str  # the one-line context description, as the real first message has it
    question: str
    turns: tuple[tuple[str, str], ...]  # (code, what it printed); the last code calls FINAL
    final: str


CODE_CONTEXT = (
    "dict of 38 items, 412,330 characters in all, first keys 'shipping/__init__.py', 'shipping/base.py', "
    "'shipping/couriers.py'. Python source files."
)
RECORDS_CONTEXT = (
    "str, 318,904 characters, starts with 'Plate: KX-2231\\nMake: Volvo\\nDepot: North\\nFuel: diesel'. "
    "Records of 'Field: value' lines, separated by blank lines."
)
DOCUMENTS_CONTEXT = (
    "dict of 24 items, 186,220 characters in all, first keys 'travel.txt', 'leave.txt', 'expenses.txt'. Text documents."
)
LIST_CONTEXT = (
    "list of 512 items, 96,400 characters in all, item 0 starts with 'Item: alpine-grid\\nDescription: a puzzle game "
    "of sliding tiles'. Text documents."
)
TEXT_CONTEXT = "str, 742,118 characters, starts with 'Staff Handbook. Chapter 1: Working hours.'"

EXAMPLES: dict[tuple[Any, ...], Example] = {
    # -- Python source files ------------------------------------------------------------------------
    (S.VALUE, K.CODE): Example(
        CODE_CONTEXT,
        "How many times does a `RetryPolicy` try a failed delivery again when you give it no count? "
        "Give the number alone on the last line, as `Answer: <number>`.",
        (
            (
                "hits = find(question)\n"
                "answers = llm_map(question, hits)\n"
                "print([(h.key, a) for h, a in zip(hits, answers)])",
                "[('shipping/retry.py', '3'), ('shipping/couriers.py', 'not stated'), ('shipping/queue.py', '10')]",
            ),
        ),
        'FINAL("3")  # the places come best first: the first one that gives a value answers',
    ),
    (S.WHERE, K.CODE): Example(
        CODE_CONTEXT,
        "Which file defines the function `quote_rate`, and on which line does its `def` start? Give the path and "
        "the line number, on the last line as `Answer: <path>:<line>`.",
        (('for d in definitions("quote_rate"):\n    print(d.key, d.line, d.kind)', "shipping/rates.py 88 function"),),
        'FINAL("shipping/rates.py:88")',
    ),
    (S.WHERE, K.CODE, "described"): Example(
        CODE_CONTEXT,
        "Which file defines the function that works out what it costs to send a parcel abroad, and on which line "
        "does it start? Give the path and the line number, on the last line as `Answer: <path>:<line>`.",
        (
            (
                "for d in find(question, k=5):\n    print(d.key, d.line, d.text.splitlines()[0])",
                "shipping/customs.py 40 def duty_for(parcel, country):\n"
                "shipping/rates.py 88 def quote_abroad(parcel, zone):\n"
                "shipping/zones.py 12 class Zone(Enum):\n"
                "shipping/rates.py 20 def quote_rate(weight):\n"
                "shipping/api.py 5 def send(parcel):",
            ),
        ),
        'FINAL("shipping/rates.py:88")',
    ),
    (S.COUNT, K.CODE): Example(
        CODE_CONTEXT,
        "How many modules of the package import the `json` module? Give the number alone on the last line, as "
        "`Answer: <number>`.",
        (
            (
                "import re\n"
                'files = [k for k, src in context.items() if re.search(r"^\\s*(import json\\b|from json import)", '
                "src, re.M)]\n"
                "print(len(files), files)",
                "4 ['shipping/api.py', 'shipping/export.py', 'shipping/labels.py', 'shipping/rates.py']",
            ),
        ),
        'FINAL("4")',
    ),
    (S.LIST, K.CODE): Example(
        CODE_CONTEXT,
        "Which public functions (no leading underscore) does `shipping/rates.py` define at its top level? List "
        "them separated by commas, on the last line as `Answer: <name>, <name>, ...`.",
        (
            (
                'names = [d.name for d in definitions(key="shipping/rates.py", kind="function") '
                'if not d.name.startswith("_")]\n'
                "print(len(names), names)",
                "3 ['quote_rate', 'zone_of', 'surcharge']",
            ),
        ),
        'FINAL(", ".join(names))',
    ),
    (S.LIST, K.CODE, "members"): Example(
        CODE_CONTEXT,
        "Which members of the `Zone` enum have a number of 10 or more? List them separated by commas, on the last "
        "line as `Answer: <member>, <member>, ...`.",
        (
            (
                'cls = definitions("Zone")[0]\n'
                'members = [d for d in definitions(key=cls.key) if d.qualname.startswith(cls.qualname + ".")]\n'
                "print([(d.name, d.kind, d.value) for d in members])",
                "[('LOCAL', 'variable', '(1, \"within the city\")'), ('REGIONAL', 'variable', '(5, \"same region\")'), "
                "('NATIONAL', 'variable', '(10, \"same country\")'), ('ABROAD', 'variable', '(20, \"another country\")'), "
                "('describe', 'method', None)]",
            ),
            (
                "import re\n"
                'names = [d.name for d in members if d.kind == "variable" and int(re.search(r"\\d+", d.value).group()) >= 10]\n'
                "print(names)",
                "['NATIONAL', 'ABROAD']",
            ),
        ),
        'FINAL(", ".join(names))',
    ),
    (S.CHAIN, K.CODE): Example(
        CODE_CONTEXT,
        "Which number does `shipping` give a parcel as its priority when none is set? Give the value of the "
        "constant, not its name, alone on the last line as `Answer: <number>`.",
        (
            (
                "for h in find(question):\n    print(h.key, h.line, h.text[:300])",
                "shipping/parcel.py 20 class Parcel:\n    def __init__(self, weight, priority=DEFAULT_PRIORITY):\n"
                "shipping/const.py 1 Constants of the shipping package.\n"
                "shipping/labels.py 77 priority = parcel.priority",
            ),
            (
                'for d in definitions("DEFAULT_PRIORITY"):\n    print(d.key, d.line, d.value, d.resolved)',
                "shipping/const.py 8 NORMAL 5",
            ),
        ),
        'FINAL("5")',
    ),
    (S.CHAIN, K.CODE, "bases"): Example(
        CODE_CONTEXT,
        "`ExpressParcel` inherits its tracking from one of its base classes, a mix-in. Which file defines that base "
        "class? Give the file path alone on the last line, as `Answer: <path>`.",
        (
            (
                'for d in definitions("ExpressParcel"):\n'
                "    print(d.key, d.line, d.bases)\n"
                "    for base in d.bases:\n"
                "        for b in definitions(base):\n"
                "            print(base, b.key, b.line)",
                "shipping/express.py 12 ['tracking.TrackingMixin', 'Parcel']\n"
                "tracking.TrackingMixin shipping/tracking.py 30\n"
                "Parcel shipping/parcel.py 20",
            ),
        ),
        'FINAL("shipping/tracking.py")',
    ),
    (S.CLASSIFY, K.CODE): Example(
        CODE_CONTEXT,
        "How many of the package's functions and methods are generators? Give the number alone on the last line, "
        "as `Answer: <number>`.",
        (
            (
                'funcs = definitions(kind="function") + definitions(kind="method")\n'
                'found = [d.qualname for d in funcs if "yield" in d.source]\n'
                "print(len(funcs), len(found), found[:20])",
                "211 5 ['iter_labels', 'Batch.__iter__', 'Batch.pending', 'stream_rates', 'walk_zones']",
            ),
        ),
        'FINAL("5")',
    ),
    (S.CLASSIFY, K.CODE, "classes"): Example(
        CODE_CONTEXT,
        "How many of the package's classes are exception classes, directly or through other base classes? Give "
        "the number alone on the last line, as `Answer: <number>`.",
        (
            (
                'classes = definitions(kind="class")\n'
                'found = [d.qualname for d in classes if "Exception" in bases_of(d)]\n'
                "print(len(classes), len(found), found[:20])",
                "64 12 ['ShippingError', 'AddressError', 'WeightError', 'CustomsError', 'LabelError', 'RateError', "
                "'CourierDown', 'PostcodeError', 'StreetError', 'CountryError', 'Batch.Full', 'ZoneError']",
            ),
        ),
        'FINAL(str(len(found)))',
    ),
    (S.CLASSIFY, K.CODE, "classes-file"): Example(
        CODE_CONTEXT,
        "How many of the classes defined in `shipping/errors.py` are exception classes? Give the number alone on "
        "the last line, as `Answer: <number>`.",
        (
            (
                'classes = definitions(key="shipping/errors.py", kind="class")\n'
                'found = [d.name for d in classes if "Exception" in bases_of(d)]\n'
                "print(len(classes), len(found), found)",
                "9 7 ['ShippingError', 'AddressError', 'WeightError', 'CustomsError', 'LabelError', 'RateError', "
                "'CourierDown']",
            ),
        ),
        'FINAL(str(len(found)))',
    ),
    (S.CLASSIFY, K.CODE, "classes-list"): Example(
        CODE_CONTEXT,
        "Which of the classes defined in `shipping/errors.py` derive from `AddressError`, directly or not? List "
        "every class, separated by commas, on the last line as `Answer: <class>, <class>, ...`.",
        (
            (
                'classes = definitions(key="shipping/errors.py", kind="class")\n'
                'found = [d.name for d in classes if "AddressError" in bases_of(d)]\n'
                "print(len(classes), len(found), found)",
                "9 3 ['PostcodeError', 'StreetError', 'CountryError']",
            ),
        ),
        'FINAL(", ".join(found))',
    ),
    # -- Field: value records -----------------------------------------------------------------------
    (S.VALUE, K.RECORDS): Example(
        RECORDS_CONTEXT,
        "Who is the registered owner of the vehicle with plate `KX-2231`? Give the value as written, on the last "
        "line as `Answer: <value>`.",
        (
            (
                "recs = parse_records(context)\n"
                'found = [r for r in recs if r.get("Plate") == "KX-2231"]\n'
                "print(len(recs), found)",
                "1204 [{'Plate': 'KX-2231', 'Make': 'Volvo', 'Depot': 'North', 'Fuel': 'diesel', 'Owner': "
                "'Harbour Logistics Ltd'}]",
            ),
        ),
        'FINAL("Harbour Logistics Ltd")',
    ),
    (S.COUNT, K.RECORDS): Example(
        RECORDS_CONTEXT,
        "What is the total mileage of the vehicles kept at depot `North`? Add up their `Mileage` fields. Give the "
        "number alone on the last line, as `Answer: <number>`.",
        (
            ("recs = parse_records(context)\nprint(len(recs))\nprint(recs[0])",
             "1204\n{'Plate': 'KX-2231', 'Make': 'Volvo', 'Depot': 'North', 'Fuel': 'diesel', 'Mileage': '48211'}"),
            (
                'north = [r for r in recs if r.get("Depot") == "North"]\n'
                'total = sum(int(r.get("Mileage", 0)) for r in north)\n'
                "print(len(north), total)",
                "97 3824410",
            ),
        ),
        'FINAL("3824410")',
    ),
    (S.LIST, K.RECORDS): Example(
        RECORDS_CONTEXT,
        "Which vehicles run on electricity? List their plates separated by commas, on the last line as "
        "`Answer: <plate>, <plate>, ...`.",
        (
            ("recs = parse_records(context)\nprint(len(recs))\nprint(recs[0])",
             "1204\n{'Plate': 'KX-2231', 'Make': 'Volvo', 'Depot': 'North', 'Fuel': 'diesel', 'Mileage': '48211'}"),
            (
                'plates = [r["Plate"] for r in recs if r.get("Fuel", "").lower() == "electric"]\n'
                "print(len(plates), plates)",
                "3 ['EV-1001', 'EV-1002', 'MT-4410']",
            ),
        ),
        'FINAL(", ".join(plates))',
    ),
    (S.CLASSIFY, K.RECORDS): Example(
        RECORDS_CONTEXT,
        "Judging by their notes, how many vehicles were damaged in an accident? Give the number alone on the last "
        "line, as `Answer: <number>`.",
        (
            ("recs = parse_records(context)\nprint(len(recs))\nprint(recs[0])",
             "1204\n{'Plate': 'KX-2231', 'Make': 'Volvo', 'Notes': 'new tyres fitted in May'}"),
            (
                "import re\n"
                'maybe = [r for r in recs if re.search(r"accident|collision|crash|damage", r.get("Notes", ""), re.I)]\n'
                'verdicts = llm_map("Was this vehicle damaged in an accident? Answer yes or no.", '
                '[r.get("Notes", "") for r in maybe], parse="yes/no")\n'
                "print(len(maybe), sum(v is True for v in verdicts), verdicts.errors)",
                "14 11 []",
            ),
        ),
        'FINAL("11")',
    ),
    # -- several documents --------------------------------------------------------------------------
    (S.VALUE, K.DOCUMENTS): Example(
        DOCUMENTS_CONTEXT,
        "How many days of notice does the travel policy require before a trip abroad? Give the number alone on the "
        "last line, as `Answer: <number>`.",
        (
            (
                "hits = find(question)\n"
                "answers = llm_map(question, hits)\n"
                "print([(h.key, a) for h, a in zip(hits, answers)])",
                "[('travel.txt', '14'), ('expenses.txt', 'not stated'), ('leave.txt', 'not stated')]",
            ),
        ),
        'FINAL("14")',
    ),
    (S.WHERE, K.DOCUMENTS): Example(
        DOCUMENTS_CONTEXT,
        "Which document sets out the rules for claiming mileage? Give its name exactly as among the context's keys, "
        "on the last line as `Answer: <name>`.",
        (
            (
                "for h in search(question, k=3):\n    print(h.key, h.line, h.text[:200])",
                "expenses.txt 30 Mileage is claimed at the rate set each April, with the route and the distance.\n"
                "travel.txt 55 Hire cars are booked through the travel desk.\n"
                "fleet.txt 3 Pool vehicles carry a mileage log.",
            ),
        ),
        'FINAL("expenses.txt")',
    ),
    (S.COUNT, K.DOCUMENTS): Example(
        DOCUMENTS_CONTEXT,
        "In how many of these documents is the Data Protection Office mentioned? Give the number alone on the last "
        "line, as `Answer: <number>`.",
        (
            (
                'docs = sorted({m.key for m in grep(r"data protection office", ignore_case=True, max_matches=None)})\n'
                "print(len(docs), docs)",
                "3 ['privacy.txt', 'records.txt', 'travel.txt']",
            ),
        ),
        'FINAL("3")',
    ),
    (S.COUNT, K.DOCUMENTS, "lines"): Example(
        DOCUMENTS_CONTEXT,
        "How many lines of the `travel.txt` policy mention a receipt? Give the number alone on the last line, as "
        "`Answer: <number>`.",
        (
            (
                'print(count_lines(r"receipt", text=context["travel.txt"], ignore_case=True))\n'
                'print([m.text for m in grep(r"receipt", text=context["travel.txt"], ignore_case=True)][:5])',
                "4\n['Keep every receipt.', 'Receipts are scanned within a week.', 'A lost receipt needs form T-7.', "
                "'Hotel receipts show the nightly rate.']",
            ),
        ),
        'FINAL("4")',
    ),
    (S.LIST, K.DOCUMENTS): Example(
        DOCUMENTS_CONTEXT,
        "Which documents mention working from home? List their names separated by commas, on the last line as "
        "`Answer: <name>, <name>, ...`.",
        (
            (
                'docs = sorted({m.key for m in grep(r"work(ing)? from home|remote work", ignore_case=True, '
                "max_matches=None)})\n"
                "print(len(docs), docs)",
                "2 ['equipment.txt', 'hours.txt']",
            ),
        ),
        'FINAL(", ".join(docs))',
    ),
    (S.CHAIN, K.DOCUMENTS): Example(
        DOCUMENTS_CONTEXT,
        "The leave policy names the older policy it replaces. Which document holds that older policy? Give its name "
        "exactly as among the context's keys, on the last line as `Answer: <name>`.",
        (
            (
                'older = llm_query("Which older policy does this policy say it replaces? Give its title only.\\n\\n" '
                '+ context["leave.txt"][:4000])\n'
                "print(older)",
                "The Holiday Scheme of 2015",
            ),
            ("for h in search(older, k=3):\n    print(h.key, h.line, h.text[:150])",
             "holiday-2015.txt 1 THE HOLIDAY SCHEME 2015. This scheme sets out paid holiday.\n"
             "leave.txt 2 This policy replaces the Holiday Scheme of 2015.\n"
             "hours.txt 60 Holidays are booked with a manager."),
        ),
        'FINAL("holiday-2015.txt")',
    ),
    (S.CLASSIFY, K.DOCUMENTS): Example(
        LIST_CONTEXT,
        "Judging by their descriptions, how many of these items are games? Give the number alone on the last line, "
        "as `Answer: <number>`.",
        (
            (
                "import re\n"
                'maybe = [t for t in context if re.search(r"game|puzzle|play", t, re.I)]\n'
                'verdicts = llm_map("Is this item a game? Answer yes or no.", maybe, parse="yes/no")\n'
                "print(len(context), len(maybe), sum(v is True for v in verdicts), verdicts.errors)",
                "512 31 24 []",
            ),
        ),
        'FINAL("24")',
    ),
    # -- one text -----------------------------------------------------------------------------------
    (S.VALUE, K.TEXT): Example(
        TEXT_CONTEXT,
        "How many hours is the longest shift the handbook allows? Give the number alone on the last line, as "
        "`Answer: <number>`.",
        (
            (
                "answers = llm_map(question, find(question))\nprint(answers)",
                "['12', 'not stated', 'not stated']",
            ),
        ),
        'FINAL("12")',
    ),
    (S.COUNT, K.TEXT): Example(
        TEXT_CONTEXT,
        "How many chapters does the handbook have? Give the number alone on the last line, as `Answer: <number>`.",
        (('print(count_lines(r"^Chapter \\d+"))\nprint([m.text for m in grep(r"^Chapter \\d+")][:5])',
          "14\n['Chapter 1: Working hours.', 'Chapter 2: Pay.', 'Chapter 3: Leave.', 'Chapter 4: Travel.', "
          "'Chapter 5: Safety.']"),),
        'FINAL("14")',
    ),
    (S.LIST, K.TEXT): Example(
        TEXT_CONTEXT,
        "Which forms does the handbook mention by number? List them separated by commas, on the last line as "
        "`Answer: <form>, <form>, ...`.",
        (('forms = sorted({m.match for m in grep(r"Form [A-Z]-?\\d+", max_matches=None)})\nprint(len(forms), forms)',
          "3 ['Form H-12', 'Form L-3', 'Form T-7']"),),
        'FINAL(", ".join(forms))',
    ),
}

#: For a (shape, kind) with no example of its own, the nearest one.
FALLBACK: dict[tuple[Shape, ContextKind], tuple[Shape, ContextKind]] = {
    (S.WHERE, K.RECORDS): (S.VALUE, K.RECORDS),
    (S.CHAIN, K.RECORDS): (S.VALUE, K.RECORDS),
    (S.WHERE, K.TEXT): (S.VALUE, K.TEXT),
    (S.CHAIN, K.TEXT): (S.CHAIN, K.DOCUMENTS),
    (S.CLASSIFY, K.TEXT): (S.CLASSIFY, K.DOCUMENTS),
}


def example_for(shape: Shape, kind: ContextKind, variant: str | None = None) -> Example:
    """The example for a shape on a kind of context (``variant``: a sharper one where there is one)."""
    key = (shape, kind)
    if variant is not None and (shape, kind, variant) in EXAMPLES:
        return EXAMPLES[(shape, kind, variant)]
    return EXAMPLES.get(key) or EXAMPLES[FALLBACK.get(key, (S.VALUE, kind))]


def _names_in(example: Example) -> set[str]:
    """The names an example's question quotes and its code searches for."""
    names = set(re.findall(r"`([A-Za-z_][\w.]*)`", example.question))
    for code, _ in example.turns:
        names.update(re.findall(r"(?:definitions|search|read|bases_of|count_lines)\(\s*[\"']([^\"']{3,60})[\"']", code))
    return names


#: Names made up for the examples (``quote_rate``, ``RetryPolicy``): in a reply's code, a sign that the
#: model copied an example instead of writing for its own question. Plain lowercase words (``def``,
#: ``json``) are left out: real code uses them too.
EXAMPLE_NAMES: tuple[str, ...] = tuple(
    sorted(n for ex in EXAMPLES.values() for n in _names_in(ex) if "_" in n or any(c.isupper() for c in n))
)
