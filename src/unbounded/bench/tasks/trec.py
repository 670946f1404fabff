"""General-knowledge questions generated per TREC coarse class, for the OOLONG-style tasks.

Each class has many templates; slots are filled from shared vocabularies, so the same nouns appear
under several classes ("the capital of Peru" is a location, "the currency of Peru" an entity,
"the population of Peru" a numeric value). A reader has to understand what a question asks for to
classify it; no keyword or slot gives the class away.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

#: The six TREC coarse classes, in the order used for label indices.
CLASSES: tuple[str, ...] = (
    "numeric value",
    "entity",
    "location",
    "description and abstract concept",
    "abbreviation",
    "human being",
)

#: One-line descriptions shown to every method so that the labelling rule is part of the task.
CLASS_HINTS: dict[str, str] = {
    "numeric value": "asks for a number: a count, date, year, distance, size, price, speed, age, percentage",
    "entity": "asks for a thing: an animal, colour, food, instrument, language, sport, substance, "
    "vehicle, book, currency, disease, word or other object",
    "location": "asks for a place: a city, country, region, mountain, river or other location",
    "description and abstract concept": "asks for a definition, description, explanation, reason or "
    "way of doing something",
    "abbreviation": "asks what an abbreviation stands for, or for the abbreviation of something",
    "human being": "asks for a person or a group of people, such as a team, band or company",
}


def _split(text: str) -> tuple[str, ...]:
    """A vocabulary written compactly as "a|b|c"."""
    return tuple(text.split("|"))


_SLOTS: dict[str, tuple[str, ...]] = {
    "country": _split(
        "Peru|Norway|Kenya|Vietnam|Portugal|Chile|Egypt|Canada|Japan|Brazil|Finland|Morocco|Nepal|"
        "Argentina|Ireland|Greece|Mexico|Ghana|Iceland|Thailand|Poland|Australia|Turkey|Colombia|"
        "Hungary|Indonesia|Scotland|Mongolia|Bolivia|Sweden|Ethiopia|Cuba|Austria|Malaysia"
    ),
    "city": _split(
        "Lisbon|Nairobi|Kyoto|Oslo|Lima|Marseille|Krakow|Seville|Toronto|Hanoi|Melbourne|Cairo|"
        "Edinburgh|Bergen|Valparaiso|Istanbul|Havana|Munich|Porto|Montreal|Quito|Accra|Reykjavik|"
        "Chicago|Mumbai|Naples|Vienna|Casablanca|Shanghai|Dublin|Athens|Bogota"
    ),
    "animal": _split(
        "cheetah|blue whale|emperor penguin|giraffe|koala|octopus|bald eagle|hummingbird|polar bear|"
        "sea turtle|honeybee|wolf|platypus|orca|camel|chimpanzee|flamingo|komodo dragon|salmon|"
        "elephant|kangaroo|red fox|snow leopard|bat|axolotl|peregrine falcon|sloth|zebra"
    ),
    "invention": _split(
        "telephone|printing press|steam engine|light bulb|radio|television|telescope|microscope|"
        "bicycle|sewing machine|typewriter|jet engine|transistor|barometer|compass|paper clip|"
        "safety pin|zipper|refrigerator|vaccine for smallpox|pendulum clock|phonograph|"
        "hot air balloon|ballpoint pen|electric battery|stethoscope"
    ),
    "landmark": _split(
        "the Eiffel Tower|Machu Picchu|the Taj Mahal|the Colosseum|Angkor Wat|the Great Barrier Reef|"
        "Stonehenge|the Alhambra|Petra|the Golden Gate Bridge|Mount Rushmore|the Parthenon|"
        "the Sagrada Familia|Chichen Itza|the Acropolis|Victoria Falls|the Leaning Tower of Pisa|"
        "the Statue of Liberty|Uluru|the Forbidden City|Neuschwanstein Castle|the Hagia Sophia"
    ),
    "book": _split(
        "Moby-Dick|Don Quixote|War and Peace|Pride and Prejudice|The Odyssey|Hamlet|Frankenstein|"
        "One Hundred Years of Solitude|The Divine Comedy|Crime and Punishment|Jane Eyre|Dracula|"
        "The Great Gatsby|Ulysses|Les Miserables|The Canterbury Tales|Anna Karenina|"
        "The Count of Monte Cristo|Wuthering Heights|Robinson Crusoe|Middlemarch|Beowulf"
    ),
    "person": _split(
        "Marie Curie|Isaac Newton|Cleopatra|Leonardo da Vinci|Nelson Mandela|Ada Lovelace|"
        "Galileo Galilei|Frida Kahlo|Mahatma Gandhi|Charles Darwin|Amelia Earhart|Napoleon Bonaparte|"
        "Wolfgang Amadeus Mozart|Rosalind Franklin|Albert Einstein|Queen Victoria|Nikola Tesla|"
        "Florence Nightingale|Julius Caesar|Pablo Picasso|Jane Austen|Ernest Hemingway|"
        "Simon Bolivar|Harriet Tubman|Confucius|Genghis Khan|Ludwig van Beethoven"
    ),
    "concept": _split(
        "photosynthesis|inflation|a black hole|democracy|entropy|plate tectonics|natural selection|"
        "supply and demand|the greenhouse effect|osmosis|a recession|impressionism|stoicism|"
        "quantum entanglement|a sonnet|the placebo effect|continental drift|a monopoly|irony|"
        "an ecosystem|the water cycle|compound interest|cognitive dissonance|a haiku|feudalism"
    ),
    "phenomenon": _split(
        "earthquakes|rainbows|the northern lights|tides|thunder|hiccups|jet lag|ocean waves|"
        "volcanic eruptions|monsoons|the seasons|static electricity|tsunamis|hurricanes|fog|yawning|"
        "lightning|eclipses|deserts|ice ages|goosebumps|snowflakes|sunburn|echoes"
    ),
    "device": _split(
        "a refrigerator|a jet engine|a microwave oven|a solar panel|a thermostat|a camera|a vaccine|"
        "a lock and key|a hydraulic press|a compass|a loudspeaker|a nuclear reactor|an elevator|"
        "a hearing aid|a barcode scanner|a wind turbine|a hot air balloon|a pressure cooker|"
        "a submarine|a touchscreen|a seismograph|an electric motor"
    ),
    "task": _split(
        "bake sourdough bread|tie a bowline knot|remove a wine stain|grow tomatoes indoors|"
        "train a puppy|learn to juggle|brew green tea|sharpen a kitchen knife|fold a paper crane|"
        "change a bicycle tyre|start a compost heap|clean silver jewellery|memorise a speech|"
        "read a topographic map|make fresh pasta|prune a rose bush|build a birdhouse|"
        "write a cover letter|meditate|whistle with two fingers|care for a bonsai tree"
    ),
    "acronym": _split(
        "NASA|UNESCO|NATO|DNA|RAM|GPS|HTML|UNICEF|OPEC|LASER|RADAR|SCUBA|FBI|CPU|ATM|VAT|GDP|MRI|"
        "ISBN|AWOL|ASAP|IMF|BBC|WWF|UEFA|FIFA|LED|PDF|SONAR|CERN|USB|DVD|IQ|NGO|RSVP|CEO|AIDS"
    ),
    "long_name": _split(
        "the World Health Organization|the International Monetary Fund|the North Atlantic Treaty "
        "Organization|the Federal Bureau of Investigation|random access memory|the European Union|"
        "the International Olympic Committee|the Central Intelligence Agency|the United Nations|"
        "light-emitting diode|personal identification number|the National Basketball Association|"
        "compact disc|intelligence quotient|the Environmental Protection Agency|"
        "the International Space Station|post meridiem|before Christ|estimated time of arrival|"
        "the Organisation for Economic Co-operation and Development|do it yourself|"
        "frequently asked questions|the Royal Air Force|the British Broadcasting Corporation"
    ),
    "unit": _split(
        "kilometres per hour|miles per gallon|revolutions per minute|pounds per square inch|"
        "kilowatt-hour|degrees Fahrenheit|milligram|nautical mile|British thermal unit|horsepower|"
        "decibel|megabyte|square foot|millilitre|light-year"
    ),
    "dish": _split(
        "paella|sushi|goulash|ratatouille|pad thai|moussaka|ceviche|borscht|lasagne|falafel|"
        "kimchi|haggis|pierogi|tagine|feijoada|bouillabaisse|pho|shepherd's pie|risotto|jollof rice"
    ),
    "event": _split(
        "the fall of the Berlin Wall|the first Moon landing|the signing of the Magna Carta|"
        "the Battle of Hastings|the eruption of Mount Vesuvius|the sinking of the Titanic|"
        "the French Revolution|the Boston Tea Party|the first modern Olympic Games|"
        "the invention of the World Wide Web|the Great Fire of London|the opening of the Suez Canal|"
        "the California Gold Rush|the Chernobyl disaster|the coronation of Charlemagne|"
        "the Wright brothers' first flight|the discovery of penicillin|the Treaty of Versailles"
    ),
    "substance": _split(
        "water|ethanol|mercury|iron|olive oil|nitrogen|sulphur|table salt|lead|gold|copper|"
        "liquid oxygen|glycerine|acetone|tin|aluminium|helium|butter|chocolate|candle wax"
    ),
    "discovery": _split(
        "penicillin|the structure of DNA|radioactivity|the electron|X-rays|insulin|the planet Neptune|"
        "the law of gravitation|oxygen|the theory of relativity|the cell|vitamin C|the neutron|"
        "the moons of Jupiter|the circulation of blood|the tomb of Tutankhamun|the Rosetta Stone|"
        "the Higgs boson|the double helix|the Dead Sea Scrolls"
    ),
    "sport": _split(
        "cricket|ice hockey|rugby|baseball|tennis|fencing|curling|polo|badminton|sumo wrestling|"
        "lacrosse|water polo|table tennis|golf|volleyball|hurling|handball|squash"
    ),
    "competition": _split(
        "World Cup|Tour de France|Wimbledon final|Super Bowl|Stanley Cup|America's Cup|Ryder Cup|"
        "Rugby World Cup|Eurovision Song Contest|Champions League final|World Series|Davis Cup"
    ),
    "year": tuple(str(y) for y in range(1952, 2020, 3)),
    "ordinal": ("first", "second", "third", "fourth", "fifth", "sixth", "tenth", "last"),
    "idiom": _split(
        "'break the ice'|'bite the bullet'|'a piece of cake'|'spill the beans'|'under the weather'|"
        "'the ball is in your court'|'cost an arm and a leg'|'once in a blue moon'|'hit the sack'|"
        "'let the cat out of the bag'|'burn the midnight oil'|'the last straw'|'barking up the wrong "
        "tree'|'a blessing in disguise'"
    ),
    "word": _split(
        "serendipity|ubiquitous|ephemeral|melancholy|quixotic|nostalgia|paradox|sonder|hubris|"
        "schadenfreude|zeitgeist|wanderlust|catharsis|euphemism|onomatopoeia|juxtaposition|"
        "procrastination|altruism|ambivalence|empathy"
    ),
    "group_thing": _split(
        "bones in the human body|keys on a piano|players on a rugby team|moons of Mars|"
        "squares on a chessboard|strings on a violin|teeth in an adult mouth|hearts in an octopus|"
        "time zones in Russia|stars on the flag of the United States|hairs on an average human head|"
        "languages spoken in India|islands in the Philippines|cards in a tarot deck|"
        "chambers in the human heart|legs on a spider|lines in a sonnet|players on a cricket team"
    ),
    "instrument": _split(
        "violin|sitar|bagpipes|harp|cello|accordion|oboe|banjo|didgeridoo|harpsichord|trumpet|"
        "saxophone|ukulele|xylophone|bassoon|mandolin|organ|tuba"
    ),
}

# Templates per class. "{slot}" names index _SLOTS; a slot may appear twice as "{slot}" and "{slot2}"
# (a second, different value from the same vocabulary).
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "numeric value": (
        "How many {group_thing} are there?",
        "When was the {invention} invented?",
        "In what year did {event} take place?",
        "How far is {city} from {city2}?",
        "How tall is {landmark}?",
        "What is the population of {country}?",
        "How long does it take to {task}?",
        "How old was {person} at the time of {event}?",
        "At what temperature does {substance} boil?",
        "How fast can the {animal} run?",
        "How much does an adult {animal} weigh?",
        "What percentage of {country} is covered by forest?",
        "In which year did {person} die?",
        "How many people live in {city}?",
        "What is the telephone area code for {city}?",
        "How many pages does the first edition of {book} have?",
        "How long does the {animal} usually live?",
        "What was the price of a ticket to the {year} {competition}?",
        "How many times has {country} won the {competition}?",
        "What is the melting point of {substance}?",
        "How many copies of {book} have been sold?",
        "How deep is the deepest lake in {country}?",
        "How many years did {person} spend on the work that made them famous?",
        "What is the average rainfall in {city} in a year?",
        "On what date was {landmark} opened to the public?",
        "How many strings does a {instrument} have?",
        "What is the speed of sound in {substance}?",
    ),
    "entity": (
        "What currency is used in {country}?",
        "What language is mostly spoken in {country}?",
        "What colours appear on the flag of {country}?",
        "What is the national sport of {country}?",
        "What is the main ingredient in {dish}?",
        "Which instrument did {person} like to play?",
        "What does the {animal} mostly eat?",
        "What book did {person} read most often?",
        "What disease did {person} suffer from?",
        "What material is {landmark} built from?",
        "What was the name of the ship in {event}?",
        "Which dish is {city} most famous for?",
        "What kind of animal is depicted on the coat of arms of {country}?",
        "What is the traditional drink served with {dish}?",
        "What prize is given to the winner of the {competition}?",
        "Which metal was used for the {invention} at first?",
        "What is the chemical that gives {substance} its smell?",
        "Which plant is the national flower of {country}?",
        "What sport did {person} play as a child?",
        "What tool is needed to {task}?",
        "What religion is practised by most people in {country}?",
        "Which word in English comes from the same root as '{word}'?",
        "What vehicle did {person} use to travel?",
        "What was the first product made with the {invention}?",
        "What type of rock is {landmark} made of?",
        "What is the emblem of the {competition}?",
        "Which musical instrument is most associated with {country}?",
    ),
    "location": (
        "Where is {landmark}?",
        "What is the capital of {country}?",
        "In which country is {city}?",
        "Where was {person} born?",
        "On which continent is {country}?",
        "Which river flows through {city}?",
        "What is the highest mountain in {country}?",
        "Where did {event} happen?",
        "Which city hosted the {year} {competition}?",
        "Where can you see the {animal} in the wild?",
        "Where is {dish} originally from?",
        "What ocean or sea borders {country}?",
        "Where did {person} spend the last years of their life?",
        "Where was the {invention} first built?",
        "In which region of {country} is {city2} found?",
        "Where was {book} written?",
        "Which country lies directly north of {country}?",
        "Where does the {animal} spend the winter?",
        "In what city is the oldest university of {country}?",
        "Where is the largest {instrument} museum?",
        "Which desert is closest to {city}?",
        "Where did {person} study?",
        "Where is the source of the longest river in {country}?",
        "In which city was {discovery} made?",
        "Where is {sport} most popular?",
    ),
    "description and abstract concept": (
        "What is {concept}?",
        "Why do {phenomenon} happen?",
        "How does {device} work?",
        "What is the difference between {concept} and {concept2}?",
        "How do you {task}?",
        "What does the word '{word}' mean?",
        "Why did {person} become famous?",
        "What causes {phenomenon}?",
        "How can I {task} quickly?",
        "What is the origin of the custom of eating {dish}?",
        "What does the expression {idiom} mean?",
        "What happens during {event2_or_process}?",
        "What are the effects of {phenomenon} on cities?",
        "Why is {city} a popular place to visit?",
        "Why is {landmark} considered important?",
        "How is {dish} traditionally prepared?",
        "What is the main theme of {book}?",
        "How did {discovery} change medicine?",
        "Why was {event} significant?",
        "What is the best way to {task}?",
        "How are the rules of {sport} explained to beginners?",
        "Why does {substance} conduct heat the way it does?",
        "What is meant by {concept} in simple terms?",
        "How does the {animal} survive the winter?",
        "Why is the {invention} considered a turning point?",
    ),
    "abbreviation": (
        "What does {acronym} stand for?",
        "What is the full form of {acronym}?",
        "What is the abbreviation for {long_name}?",
        "What do the letters {acronym} mean?",
        "What is {acronym} short for?",
        "How is {long_name} usually abbreviated?",
        "What is the expansion of the acronym {acronym}?",
        "What is the meaning of the abbreviation {acronym}?",
        "Which abbreviation is used for {unit}?",
        "What is the acronym for {long_name}?",
        "In a report about {country}, what would the initials {acronym} stand for?",
        "What is the usual short form of {unit}?",
        "What are the initials of {long_name}?",
        "What does the abbreviation {acronym} on a form mean?",
        "What words make up the acronym {acronym}?",
        "What is the standard abbreviation of {long_name}?",
        "When people in {city} write {acronym}, what do they mean?",
        "What abbreviation do scientists use for {unit}?",
    ),
    "human being": (
        "Who invented the {invention}?",
        "Who wrote {book}?",
        "Who was the {ordinal} person to reach the top of the highest mountain in {country}?",
        "Who designed {landmark}?",
        "Who discovered {discovery}?",
        "Which team won the {year} {competition}?",
        "Who was the {ordinal} president of {country}?",
        "Who is the author of {book}?",
        "Who composed the national anthem of {country}?",
        "Who founded the city of {city}?",
        "Which company first manufactured the {invention}?",
        "Who was the teacher of {person}?",
        "Which explorer first described the {animal}?",
        "Who led {event}?",
        "Who was married to {person}?",
        "Which band played at the opening of the {year} {competition}?",
        "Who translated {book} into English?",
        "Who is the patron saint of {country}?",
        "Who coached the {country} team at the {year} {competition}?",
        "Which scientist explained {phenomenon}?",
        "Who was the rival of {person}?",
        "Who popularised {sport} in {country}?",
        "Who was the most famous {instrument} player of the {year}s?",
        "Who first proposed {concept}?",
        "Who built the first {device2_word}?",
    ),
}

# A few slots are only used by one template; they reuse other vocabularies.
_ALIASES = {
    "event2_or_process": ("event", "phenomenon"),
    "device2_word": ("invention",),
}
_SLOT_RE = re.compile(r"\{(\w+)\}")


def _slot_vocab(name: str) -> tuple[str, ...]:
    base = name[:-1] if name.endswith("2") and name[:-1] in _SLOTS else name
    if base in _SLOTS:
        return _SLOTS[base]
    vocab: tuple[str, ...] = ()
    for alias in _ALIASES[name]:
        vocab += _SLOTS[alias]
    return vocab


def fill(template: str, rng: random.Random) -> str:
    """Fill each slot of a template; "{x}" and "{x2}" get different values."""
    chosen: dict[str, str] = {}
    for name in _SLOT_RE.findall(template):
        if name in chosen:
            continue
        vocab = _slot_vocab(name)
        value = rng.choice(vocab)
        while value in chosen.values() and len(vocab) > 1:
            value = rng.choice(vocab)
        chosen[name] = value
    text = _SLOT_RE.sub(lambda m: chosen[m.group(1)], template)
    return text[0].upper() + text[1:]


def templates(label: str) -> Sequence[str]:
    return _TEMPLATES[label]


def question_pool(rng: random.Random, per_class: int) -> list[list[str]]:
    """Up to ``per_class`` distinct questions for each class (index order of ``CLASSES``).

    Records are drawn from these pools, which is far faster than filling a template per record
    and still gives thousands of distinct texts per class.
    """
    pools: list[list[str]] = []
    for label in CLASSES:
        seen: set[str] = set()
        pool: list[str] = []
        tpls = _TEMPLATES[label]
        attempts = 0
        while len(pool) < per_class and attempts < per_class * 4:
            attempts += 1
            q = fill(rng.choice(tpls), rng)
            if q not in seen:
                seen.add(q)
                pool.append(q)
        pools.append(pool)
    return pools
