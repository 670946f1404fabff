"""A fictional world for the multi-hop task: people, companies, products and cities, and their documents.

Relations are functions (a product has one maker, a company one founder and one headquarters, a
city one mayor, a person one birth city and one employer), so chained questions have exactly one
answer. Names come in families that share a root or a surname ("Velmora Dynamics" and "Velmora
Labs", "Quorix 7" and "Quorix 9"), and documents mention related entities (a rival, a sibling, a
twin city), so a reader must tell near-identical names and other entities' attributes apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def _split(text: str) -> tuple[str, ...]:
    """A vocabulary written compactly as "a|b|c"."""
    return tuple(text.split("|"))


_ONSETS = _split("b|br|c|ch|d|dr|f|g|gr|h|j|k|kr|l|m|n|p|pr|qu|r|s|sh|st|t|tr|v|w|z|th|fl|gl|sl")
_VOWELS = _split("a|e|i|o|u|a|e|o|ai|ei|ou|ia|io|ae")
_CODAS = _split("n|r|l|s|th|x|m|nd|rn|ck")
_LAST_ENDS = _split("son|dale|more|wick|ford|ley|ton|well|by|croft|ridge|mont|vale|ner|ick")
_CITY_ENDS = _split("ton|ford|haven|port|mere|bury|field|gate|holm|wick|stead|vale")
_CO_SUFFIXES = _split("Dynamics|Labs|Systems|Industries|Works|Group|Analytics|Robotics|Foods|Materials|Networks|Motors")
_MODELS = _split("7|9|X|Pro|Air|Max|One|S2|Lite|Prime|Neo|Mini|3|5|Ultra")
_CATEGORIES = _split(
    "handheld scanner|electric bicycle|espresso machine|drone|smart thermostat|water purifier|"
    "3D printer|solar lantern|noise-cancelling headset|e-reader|robot vacuum|weather station|"
    "fitness tracker|portable projector|electric kettle|garden sensor|tablet|sewing machine"
)
_INDUSTRIES = _split(
    "consumer electronics|agricultural machinery|medical devices|household appliances|logistics software|"
    "renewable energy|outdoor equipment|precision optics|industrial robotics|food processing"
)
_ROLES = _split(
    "chief engineer|head of design|product manager|chief financial officer|lead researcher|"
    "sales director|head of operations|senior analyst|marketing lead|quality manager"
)
_REGIONS = _split(
    "the Varden Coast|the Ostrel Highlands|the Maren Basin|the Sollen Plains|the Tarrow Valley|"
    "the Quillan Lakes|the Brisk Peninsula|the Eldmoor Fens|the Kallis Steppe|the Norwen Isles"
)
_FIELDS = _split("chemistry|economics|architecture|physics|law|linguistics|biology|mechanical engineering")


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS)


def _root(rng: random.Random) -> str:
    word = _syllable(rng) + _syllable(rng) + (rng.choice(_CODAS) if rng.random() < 0.6 else "")
    return word.capitalize()


@dataclass(slots=True)
class City:
    name: str
    region: str
    founded: int
    population: int
    mayor: str = ""
    twin: str = ""


@dataclass(slots=True)
class Person:
    name: str
    birth_city: str
    birth_year: int
    employer: str = ""
    role: str = ""
    studied: str = ""
    sibling: str = ""
    mayor_of: str = ""
    founded: str = ""


@dataclass(slots=True)
class Company:
    name: str
    founder: str
    hq: str
    founded: int
    industry: str
    rival: str = ""


@dataclass(slots=True)
class Product:
    name: str
    maker: str
    released: int
    category: str
    compared_with: str = ""


@dataclass(slots=True)
class World:
    cities: dict[str, City] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    companies: dict[str, Company] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cities) + len(self.people) + len(self.companies) + len(self.products)


class _Names:
    """Unique names with deliberate near-collisions (shared roots, surnames and first names)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _fresh(self, make) -> str:
        for _ in range(1000):
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError("name space exhausted")

    def _distinct(self, make, k: int) -> list[str]:
        out: dict[str, None] = {}
        while len(out) < k:
            out[make()] = None
        return list(out)

    def people(self, n: int) -> list[str]:
        rng = self.rng
        surnames = self._distinct(lambda: _root(rng)[:6] + rng.choice(_LAST_ENDS), max(4, n // 3))
        firsts = self._distinct(lambda: _root(rng), max(4, n // 2))
        return [self._fresh(lambda: f"{rng.choice(firsts)} {rng.choice(surnames)}") for _ in range(n)]

    def cities(self, n: int) -> list[str]:
        rng = self.rng
        roots = self._distinct(lambda: _root(rng)[:5], max(2, (n + 1) // 2))
        return [self._fresh(lambda: rng.choice(roots) + rng.choice(_CITY_ENDS)) for _ in range(n)]

    def companies(self, n: int) -> list[str]:
        rng = self.rng
        roots = self._distinct(lambda: _root(rng), max(2, (n + 1) // 2))
        return [self._fresh(lambda: f"{rng.choice(roots)} {rng.choice(_CO_SUFFIXES)}") for _ in range(n)]

    def products(self, n: int) -> list[str]:
        rng = self.rng
        roots = self._distinct(lambda: _root(rng), max(2, (n + 2) // 3))
        return [self._fresh(lambda: f"{rng.choice(roots)} {rng.choice(_MODELS)}") for _ in range(n)]


def build_world(rng: random.Random, n_docs: int) -> World:
    """A world with about ``n_docs`` entities (one document each), every relation filled."""
    n_docs = max(n_docs, 12)
    n_city = max(2, round(n_docs * 0.12))
    n_company = max(3, round(n_docs * 0.2))
    n_product = max(3, round(n_docs * 0.28))
    n_person = max(n_docs - n_city - n_company - n_product, max(n_company, n_city) + 2)
    names = _Names(rng)
    world = World()
    for name in names.cities(n_city):
        world.cities[name] = City(name, rng.choice(_REGIONS), rng.randint(1200, 1890), rng.randint(8, 900) * 1000)
    city_names = list(world.cities)
    for name in names.people(n_person):
        world.people[name] = Person(
            name,
            birth_city=rng.choice(city_names),
            birth_year=rng.randint(1940, 1995),
            studied=rng.choice(_FIELDS),
        )
    people = list(world.people)
    founders = rng.sample(people, n_company)
    for name, founder in zip(names.companies(n_company), founders, strict=True):
        world.companies[name] = Company(
            name,
            founder=founder,
            hq=rng.choice(city_names),
            founded=rng.randint(1960, 2018),
            industry=rng.choice(_INDUSTRIES),
        )
        world.people[founder].employer = name
        world.people[founder].founded = name
        world.people[founder].role = "founder"
    company_names = list(world.companies)
    for person in world.people.values():
        if not person.employer:
            person.employer = rng.choice(company_names)
            person.role = rng.choice(_ROLES)
        person.sibling = _relative(rng, person.name, people)
    for city, mayor in zip(city_names, rng.sample(people, n_city), strict=True):
        world.cities[city].mayor = mayor
        world.people[mayor].mayor_of = city
    for city in world.cities.values():
        city.twin = rng.choice([c for c in city_names if c != city.name])
    for company in world.companies.values():
        company.rival = _similar(rng, company.name, company_names)
    for name in names.products(n_product):
        world.products[name] = Product(
            name, maker=rng.choice(company_names), released=rng.randint(1995, 2024), category=rng.choice(_CATEGORIES)
        )
    product_names = list(world.products)
    for product in world.products.values():
        product.compared_with = _similar(rng, product.name, product_names)
    return world


def _similar(rng: random.Random, name: str, pool: list[str]) -> str:
    """Another name from ``pool``, preferring one that shares the first word."""
    head = name.split()[0]
    same = [p for p in pool if p != name and p.split()[0] == head]
    if same:
        return rng.choice(same)
    return rng.choice([p for p in pool if p != name])


def _relative(rng: random.Random, name: str, people: list[str]) -> str:
    """A person with the same surname (a "sibling"), or any other person."""
    surname = name.split()[-1]
    same = [p for p in people if p != name and p.split()[-1] == surname]
    return rng.choice(same) if same else rng.choice([p for p in people if p != name])


# ---------------------------------------------------------------------------------------------
# Documents

_FILLER_SUBJECTS = _split(
    "Local newspapers|Industry analysts|Several reviewers|Independent surveys|Visitors|Historians|"
    "Trade magazines|Long-time residents|Critics|University researchers|Commentators|Early customers"
)
_FILLER_VERBS = _split(
    "have praised|have questioned|often mention|described|drew attention to|wrote at length about|"
    "remain divided over|spoke warmly of|rarely discuss|have documented"
)
_FILLER_OBJECTS = _split(
    "the attention to detail|the pace of change in recent years|the long-term plans|the public "
    "archives|the cautious approach to expansion|the annual reports|the community programmes|the "
    "architecture of the main buildings|the apprenticeship scheme|the relationship with suppliers|the "
    "quality of the documentation|the seasonal festivals|the careful bookkeeping|the focus on repairability"
)
_FILLER_TAILS = _split(
    "|, especially after the renovation|, though opinions differ|, according to several interviews|"
    " in a series of articles|, a point repeated in later editions|, as the archives show|"
    " during the last decade|, which surprised many observers"
)


def filler_pool(rng: random.Random, size: int = 1500) -> list[str]:
    """Generic sentences that carry no relation facts, used to give documents realistic length."""
    out = set()
    while len(out) < size:
        out.add(
            f"{rng.choice(_FILLER_SUBJECTS)} {rng.choice(_FILLER_VERBS)} {rng.choice(_FILLER_OBJECTS)}"
            f"{rng.choice(_FILLER_TAILS)}."
        )
    return sorted(out)


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def fact_sentences(world: World, kind: str, name: str, rng: random.Random) -> list[str]:
    """The relation facts (and same-surface distractor mentions) of one entity, as sentences."""
    if kind == "person":
        p = world.people[name]
        out = [
            rng.choice(
                [
                    f"{p.name} was born in {p.birth_city} in {p.birth_year}.",
                    f"Born in {p.birth_city} in {p.birth_year}, {p.name} studied {p.studied}.",
                ]
            )
        ]
        if p.founded:
            out.append(f"{p.name} founded {p.founded} and still works there.")
        else:
            out.append(f"{p.name} works at {p.employer} as {p.role}.")
        if p.mayor_of:
            out.append(f"{p.name} is currently the mayor of {p.mayor_of}.")
        sib = world.people[p.sibling]
        out.append(f"{p.name}'s relative {sib.name} was born in {sib.birth_city} and works at {sib.employer}.")
        return out
    if kind == "company":
        c = world.companies[name]
        rival = world.companies[c.rival]
        return [
            f"{c.name} was founded in {c.founded} by {c.founder}.",
            f"{c.name}, which works in {c.industry}, is headquartered in {c.hq}.",
            f"{c.name} is often mistaken for {rival.name}, a firm founded by {rival.founder} and based in {rival.hq}.",
        ]
    if kind == "product":
        pr = world.products[name]
        other = world.products[pr.compared_with]
        return [
            f"The {pr.name} is {_a(pr.category)} made by {pr.maker}, first released in {pr.released}.",
            f"Reviewers often compare the {pr.name} with the {other.name}, {_a(other.category)} made by {other.maker}.",
        ]
    c = world.cities[name]
    twin = world.cities[c.twin]
    return [
        f"{c.name} is a city in {c.region}, founded in {c.founded}, with about {c.population:,} residents.",
        f"The mayor of {c.name} is {c.mayor}.",
        f"{c.name} is twinned with {twin.name}, whose mayor is {twin.mayor}.",
    ]


def entities(world: World) -> list[tuple[str, str]]:
    """(kind, name) for every entity, in a fixed order."""
    return (
        [("person", n) for n in world.people]
        + [("company", n) for n in world.companies]
        + [("product", n) for n in world.products]
        + [("city", n) for n in world.cities]
    )


def render_document(facts: list[str], filler: list[str], title: str, rng: random.Random) -> str:
    """Title line, then the facts interleaved with filler in paragraphs of three to six sentences."""
    sentences = list(filler)
    for fact in facts:
        sentences.insert(rng.randint(0, len(sentences)), fact)
    paragraphs = []
    i = 0
    while i < len(sentences):
        step = rng.randint(3, 6)
        paragraphs.append(" ".join(sentences[i : i + step]))
        i += step
    return f"Title: {title}\n\n" + "\n\n".join(paragraphs)
