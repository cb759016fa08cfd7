"""RULER-style synthetic long-context tasks, offline and deterministic.

Modelled on RULER (Hsieh et al. 2024, "RULER: What's the Real Context Size of Your Long-Context Language Models?",
arXiv 2404.06654, github.com/NVIDIA/RULER): needle retrieval (single, multi-key, multi-value, multi-query),
variable tracking, common- and frequent-words extraction, and question answering. The code, word lists and prompts
are our own; docs/RULER.md says where each task follows RULER and where it departs.

A case is a pure function of (task, tokens, seed, haystack): every random choice comes from
`random.Random(f"{task}/{tokens}/{seed}/{haystack}")`. Prompts are completion style: `case.prompt()` (the same
text as `run.completion_prompt`) tokenizes to at most `tokens` tokens, and about 5% fewer at worst. The
haystack is real text, Paul Graham's essays or the Python standard library's sources, cut into sentences or lines
with the needles planted between them; cwe and fwe fill the context with their own synthetic text instead.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from numbers import Integral

from tokensieve.data.corpus import essays
from tokensieve.data.stdlib_corpus import file_block, stdlib_files
from tokensieve.errors import TokensieveError

TASKS: tuple[str, ...] = (
    "niah_single_word", "niah_single_number", "niah_single_uuid", "niah_multikey", "niah_multivalue",
    "niah_multiquery", "vt", "cwe", "fwe", "qa",
)
HAYSTACKS: tuple[str, ...] = ("essays", "stdlib")
METRICS: tuple[str, ...] = ("all", "part")
MIN_TOKENS = 256
DEPTHS = tuple(i / 39 for i in range(40))  # 0 = right after the instruction, 1 = just before the question
SYNTHETIC = ("cwe", "fwe")  # tasks whose text is generated, not drawn from a haystack

ADJECTIVES = (
    "amber", "ancient", "azure", "bold", "brave", "breezy", "bright", "calm", "clever", "cosmic", "crimson",
    "curious", "dusty", "eager", "frozen", "fuzzy", "gentle", "gloomy", "golden", "hidden", "hollow", "humble",
    "jolly", "lively", "lonely", "mellow", "misty", "noble", "polite", "proud", "quiet", "rapid", "rustic",
    "scarlet", "shiny", "silent", "sleepy", "smooth", "snowy", "solemn", "spicy", "stormy", "sturdy", "sunny",
    "swift", "tender", "tidy", "vivid", "wild", "windy", "witty", "zesty",
)
NOUNS = (
    "beacon", "bridge", "canyon", "castle", "cavern", "cliff", "comet", "desert", "falcon", "feather", "forest",
    "fountain", "garden", "glacier", "grove", "harbor", "horizon", "island", "kettle", "ladder", "lagoon", "lantern",
    "marble", "meadow", "mirror", "mountain", "oasis", "orchard", "pebble", "pillar", "planet", "prairie", "quarry",
    "rabbit", "ribbon", "river", "saddle", "shadow", "spruce", "summit", "temple", "thicket", "tower", "tundra",
    "valley", "violin", "willow", "window", "wizard", "canoe",
)
VALUE_WORDS = (  # values of niah_single_word: unusual words that occur in neither haystack
    "accordion", "armadillo", "bagpipe", "boomerang", "cappuccino", "catamaran", "chameleon", "dromedary",
    "escalator", "flamenco", "flamingo", "gargoyle", "gazebo", "gondola", "hammock", "harpsichord", "hedgehog",
    "iguana", "jellyfish", "jukebox", "kaleidoscope", "lollipop", "macaroni", "mandolin", "marmalade", "narwhal",
    "nectarine", "octopus", "origami", "pelican", "platypus", "pomegranate", "porcupine", "quesadilla", "quokka",
    "raccoon", "rhubarb", "saxophone", "snorkel", "sombrero", "tambourine", "toboggan", "ukulele", "vermicelli",
    "walrus", "xylophone", "zeppelin", "zucchini",
)
# qa: facts about fictional places, built from these slots.
KINDS = ("observatory", "bakery", "shipyard", "library", "brewery", "clock workshop", "museum", "ferry company")
TOWN_HEADS = ("Ash", "Bram", "Cold", "Dun", "Elm", "Fern", "Glen", "Hol", "Kirk", "Lark", "Mar", "Nor", "Pen",
              "Rook", "Stan", "Thorn", "Wick", "Yar")
TOWN_TAILS = ("bury", "ford", "mouth", "stead", "dale", "haven", "combe", "field", "moor", "wick", "by", "thorpe")
FIRST_NAMES = ("Tamsin", "Ottilie", "Bartholomew", "Ingrid", "Cornelius", "Philippa", "Leopold", "Rosalind",
               "Ambrose", "Henrietta", "Evander", "Clementine", "Mortimer", "Wilhelmina", "Isidore", "Beatrix")
PRODUCTS = (  # (what it is best known for, a shorter answer that also counts)
    ("copper telescopes", "telescopes"), ("rye bread with caraway seeds", "rye bread"),
    ("wooden fishing boats", "fishing boats"), ("hand-bound atlases", "atlases"), ("smoked cherry ale", "cherry ale"),
    ("brass pocket watches", "pocket watches"), ("carved walnut chess sets", "chess sets"),
    ("night crossings by lantern light", "night crossings"), ("blue porcelain teapots", "teapots"),
    ("woollen sea charts", "sea charts"), ("pear and ginger cider", "cider"),
    ("star maps printed on silk", "star maps"),
)
COLOURS = ("green", "yellow", "purple", "orange", "turquoise", "crimson", "silver", "lavender")
QA_ASPECTS = ("year", "town", "founder", "product", "colour")


def suffix(question: str, answer_prefix: str) -> str:
    """What follows the context: the same text as `run.completion_prompt` builds (which imports torch)."""
    return f"\n\nQuestion: {question}\nAnswer:" + (f" {answer_prefix}" if answer_prefix else "")


@dataclass(frozen=True)
class RulerCase:
    task: str
    tokens: int
    seed: int
    haystack: str  # "essays" | "stdlib" (cwe and fwe ignore it: their text is synthetic)
    context: str  # the long text with everything planted
    question: str  # asked after the context
    answer_prefix: str  # completion-style prefix the model continues (may be "")
    expected: tuple[str, ...]  # strings that must appear in the answer
    metric: str  # "all": fraction of expected found; "part": 1.0 if any is found

    def prompt_suffix(self) -> str:
        return suffix(self.question, self.answer_prefix)

    def prompt(self) -> str:
        return self.context + self.prompt_suffix()


def score(case_or_expected: RulerCase | str | tuple[str, ...] | list[str], answer: str,
          metric: str | None = None) -> float:
    """RULER's string_match_all ("all": fraction of the expected strings found in the answer) or
    string_match_part ("part": 1.0 if any is found), case-insensitive. A case brings its own metric unless
    `metric` is given; bare expected strings default to "all"."""
    if isinstance(case_or_expected, RulerCase):
        expected, metric = case_or_expected.expected, metric or case_or_expected.metric
    else:
        expected = (case_or_expected,) if isinstance(case_or_expected, str) else tuple(case_or_expected)
        metric = metric or "all"
    if metric not in METRICS:
        raise TokensieveError(f"unknown metric '{metric}': use one of {', '.join(METRICS)}")
    if not expected:
        raise TokensieveError("nothing to score: the expected strings are empty")
    low = answer.lower()
    hits = [e.lower() in low for e in expected]
    return sum(hits) / len(hits) if metric == "all" else float(any(hits))


def ruler_case(tokenizer, task: str, tokens: int, seed: int, haystack: str = "essays") -> RulerCase:
    """The case of `task` for `tokens` prompt tokens, drawn from `seed`, on `haystack` ("essays" | "stdlib")."""
    if task not in TASKS:
        raise TokensieveError(f"unknown RULER task '{task}': use one of {', '.join(TASKS)}")
    if haystack not in HAYSTACKS:
        raise TokensieveError(f"unknown haystack '{haystack}': use one of {', '.join(HAYSTACKS)}")
    if not isinstance(tokens, Integral) or tokens < MIN_TOKENS:
        raise TokensieveError(f"a RULER case needs tokens >= {MIN_TOKENS}, got {tokens}")
    tokens = int(tokens)
    if task in SYNTHETIC:  # the haystack plays no part, so it is not part of the seed either
        rng = random.Random(f"{task}/{tokens}/{seed}")
        return _cwe(tokenizer, rng, task, tokens, seed, haystack) if task == "cwe" else \
            _fwe(tokenizer, rng, task, tokens, seed, haystack)
    rng = random.Random(f"{task}/{tokens}/{seed}/{haystack}")
    intro, inserts, question, prefix, expected, metric = _PLANTED[task](rng)
    context = _fill(tokenizer, haystack, rng, tokens, intro, inserts, suffix(question, prefix))
    return RulerCase(task, tokens, seed, haystack, context, question, prefix, expected, metric)


# ---------------------------------------------------------------------------------------------------- planting

Plan = tuple[str, list[tuple[float, str]], str, str, tuple[str, ...], str]  # intro, (depth, text)s, q, prefix, ...


def _keys(rng: random.Random, n: int) -> list[str]:
    """n keys such as "calm-river", no two sharing an adjective or a noun."""
    return [f"{a}-{b}" for a, b in zip(rng.sample(ADJECTIVES, n), rng.sample(NOUNS, n), strict=True)]


def _numbers(rng: random.Random, n: int, digits: int = 7) -> list[str]:
    return [str(v) for v in rng.sample(range(10 ** (digits - 1), 10**digits), n)]


def _intro(plural: str) -> str:
    return (f"A few special magic {plural} are hidden in the text below. Memorise them: a question about them "
            f"follows the text.")


def _niah_single(kind: str) -> Callable[[random.Random], Plan]:
    def plan(rng: random.Random) -> Plan:
        key = _keys(rng, 1)[0]
        if kind == "word":
            value = rng.choice(VALUE_WORDS)
        elif kind == "number":
            value = _numbers(rng, 1)[0]
        else:
            value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        needle = f"The special magic {kind} for {key} is: {value}."
        return (_intro(f"{kind}s"), [(rng.choice(DEPTHS), needle)],
                f"What is the special magic {kind} for {key} mentioned in the text?",
                f"The special magic {kind} for {key} mentioned in the text is", (value,), "all")
    return plan


def _niah_multikey(rng: random.Random) -> Plan:
    keys, values = _keys(rng, 4), _numbers(rng, 4)
    needles = [f"The special magic number for {k} is: {v}." for k, v in zip(keys, values, strict=True)]
    return (_intro("numbers"), list(zip(rng.sample(DEPTHS, 4), needles, strict=True)),
            f"What is the special magic number for {keys[0]} mentioned in the text?",
            f"The special magic number for {keys[0]} mentioned in the text is", (values[0],), "all")


def _niah_multivalue(rng: random.Random) -> Plan:
    key, values = _keys(rng, 1)[0], _numbers(rng, 4)
    needles = [f"One of the special magic numbers for {key} is: {v}." for v in values]
    return (_intro("numbers"), list(zip(rng.sample(DEPTHS, 4), needles, strict=True)),
            f"What are all the special magic numbers for {key} mentioned in the text?",
            f"The special magic numbers for {key} mentioned in the text are:", tuple(values), "all")


def _niah_multiquery(rng: random.Random) -> Plan:
    keys, values = _keys(rng, 4), _numbers(rng, 4)
    needles = [f"The special magic number for {k} is: {v}." for k, v in zip(keys, values, strict=True)]
    asked = f"{', '.join(keys[:-1])} and {keys[-1]}"
    return (_intro("numbers"), list(zip(rng.sample(DEPTHS, 4), needles, strict=True)),
            f"What are the special magic numbers for {asked} mentioned in the text?",
            f"The special magic numbers for {asked} mentioned in the text are:", tuple(values), "all")


def _vt(rng: random.Random, hops: int = 4) -> Plan:
    names: list[str] = []
    while len(names) < 2 * (hops + 1):
        name = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=5))
        if name not in names:
            names.append(name)
    chains = [names[: hops + 1], names[hops + 1:]]  # the asked chain, then a distractor chain
    values = _numbers(rng, 2, digits=5)
    statements = [[f"VAR {chain[0]} = {value}."] + [f"VAR {b} = {a}." for a, b in zip(chain, chain[1:], strict=False)]
                  for chain, value in zip(chains, values, strict=True)]
    # Each chain keeps its order; which depth slots belong to which chain is drawn from the seed.
    slots = sorted(rng.sample(DEPTHS, 2 * (hops + 1)))
    mine = set(rng.sample(range(len(slots)), hops + 1))
    queues = [iter(statements[0]), iter(statements[1])]
    inserts = [(d, next(queues[0] if i in mine else queues[1])) for i, d in enumerate(slots)]
    return ("Keep track of the chains of variable assignments hidden in the text below: a question about them "
            "follows the text.", inserts,
            f"Find all variables that are assigned the value {values[0]} in the text above.",
            f"The variables assigned the value {values[0]} are:", tuple(chains[0]), "all")


def _place(rng: random.Random, heads: tuple[str, ...], tails: tuple[str, ...]) -> str:
    return rng.choice(heads) + rng.choice(tails)


def _qa(rng: random.Random) -> Plan:
    syllables = [c + v for c in "bdfglmnprstvz" for v in "aeiou"]
    name = "".join(rng.choices(syllables, k=3)).capitalize()
    subject = f"the {name} {rng.choice(KINDS)}"
    year, town = str(rng.randint(1710, 1960)), _place(rng, TOWN_HEADS, TOWN_TAILS)
    first, last = rng.choice(FIRST_NAMES), _place(rng, TOWN_HEADS, ("well", "wood", "ridge", "more", "wright"))
    (product, short), colour = rng.choice(PRODUCTS), rng.choice(COLOURS)
    cap = subject[0].upper() + subject[1:]
    fact = (f"{cap} was founded in {year} in the town of {town} by {first} {last}. "
            f"Since then {subject} has become best known for its {product}. "
            f"The front door of {subject} is painted {colour}, and it has never been repainted.")
    questions = {
        "year": (f"In which year was {subject} founded?", f"{cap} was founded in", (year,)),
        "town": (f"In which town was {subject} founded?", f"{cap} was founded in the town of", (town,)),
        "founder": (f"Who founded {subject}?", f"{cap} was founded by", (f"{first} {last}", last)),
        "product": (f"What is {subject} best known for?", f"{cap} is best known for its",
                    (product, short)),
        "colour": (f"What colour is the front door of {subject}?", f"The front door of {subject} is painted",
                   (colour,)),
    }
    question, prefix, expected = questions[rng.choice(QA_ASPECTS)]
    return ("Read the documents below: a question about them follows.", [(rng.choice(DEPTHS), fact)],
            question, prefix, expected, "part")


_PLANTED: dict[str, Callable[[random.Random], Plan]] = {
    "niah_single_word": _niah_single("word"), "niah_single_number": _niah_single("number"),
    "niah_single_uuid": _niah_single("uuid"), "niah_multikey": _niah_multikey, "niah_multivalue": _niah_multivalue,
    "niah_multiquery": _niah_multiquery, "vt": _vt, "qa": _qa,
}


# ---------------------------------------------------------------------------------------------------- haystack

def _count(tokenizer, text: str) -> int:
    """Prompt tokens, special tokens (a BOS) included."""
    return len(tokenizer(text, verbose=False).input_ids)


def _docs(haystack: str) -> int:
    return len(essays()) if haystack == "essays" else len(stdlib_files())


@lru_cache(maxsize=512)
def _doc_units(tokenizer, haystack: str, index: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Document `index` cut into units (essay sentences, joined by spaces; source lines, newline included) and
    each unit's token count, tokenized once in a batch."""
    if haystack == "essays":
        units = tuple(s for s in re.split(r"(?<=[.!?])\s+", essays()[index]) if s)
        pieces = [" " + u for u in units]
    else:
        units = tuple(file_block(*stdlib_files()[index]).splitlines(keepends=True))
        pieces = list(units)
    ids = tokenizer(pieces, add_special_tokens=False, verbose=False).input_ids
    return units, tuple(len(i) for i in ids)


def _units(tokenizer, haystack: str, start: int, n_tokens: int) -> tuple[list[str], list[int]]:
    """Consecutive units from document `start` on (wrapping around) until they hold `n_tokens` tokens."""
    units: list[str] = []
    sizes: list[int] = []
    n_docs, i, total = _docs(haystack), start, 0
    while total < n_tokens and i - start < 64 * n_docs:
        u, s = _doc_units(tokenizer, haystack, i % n_docs)
        units += u
        sizes += s
        total += sum(s)
        i += 1
    return units, sizes


def _join(haystack: str, units: list[str], inserts: list[tuple[float, str]]) -> str:
    """The units with each insert placed at the unit boundary nearest its depth (ties keep the inserts' order)."""
    at: dict[int, list[str]] = {}
    for depth, text in inserts:
        at.setdefault(round(depth * len(units)), []).append(text if haystack == "essays" else text + "\n")
    pieces: list[str] = []
    for i in range(len(units) + 1):
        pieces += at.get(i, [])
        if i < len(units):
            pieces.append(units[i])
    return " ".join(pieces) if haystack == "essays" else "".join(pieces)


def _fill(tokenizer, haystack: str, rng: random.Random, tokens: int, intro: str,
          inserts: list[tuple[float, str]], after: str) -> str:
    """intro + haystack units with the inserts planted, as many units as keep the prompt within `tokens`."""
    fixed = _count(tokenizer, intro + "\n\n" + after) + sum(
        len(i) for i in tokenizer([" " + t for _, t in inserts], add_special_tokens=False, verbose=False).input_ids)
    budget = tokens - fixed
    if budget <= 0:
        raise TokensieveError(f"{tokens} tokens cannot hold this task's question and needles: use more")
    units, sizes = _units(tokenizer, haystack, rng.randrange(_docs(haystack)), budget + budget // 8 + 64)
    cum = list(accumulate(sizes))

    def build(k: int, tail: str = "") -> tuple[str, int]:
        context = f"{intro}\n\n{_join(haystack, units[:k] + ([tail] if tail else []), inserts)}"
        return context, _count(tokenizer, context + after)

    def within(target: int) -> int:  # how many leading units hold at most `target` tokens
        return sum(1 for c in cum if c <= target)

    k = within(budget)
    context, n = build(k)
    while n > tokens:  # tokens merged differently in the joined text: drop trailing units covering the excess
        if k == 0:
            raise TokensieveError(f"{tokens} tokens cannot hold this task's question and needles: use more")
        k = min(k - 1, within(cum[k - 1] - (n - tokens)))
        context, n = build(k)
    for _ in range(2):  # the joined text came out shorter than its units' sum: add units while they fit
        more = within((cum[k - 1] if k else 0) + tokens - n)
        if more <= k:
            break
        bigger, m = build(more)
        if m > tokens:
            break
        k, context, n = more, bigger, m
    # Essays: fill what is left with the first words of the next sentence (RULER too cuts its essays at a word).
    if haystack == "essays" and k < len(units):
        words = units[k].split(" ")
        per = max(1, sizes[k]) / len(words)
        j = min(len(words) - 1, int((tokens - n) / per))
        while j > 0:
            longer, m = build(k, " ".join(words[:j]))
            if m <= tokens:
                return longer
            j = min(j - 1, int(j - (m - tokens) / per))
    return context


# ---------------------------------------------------------------------------------------------------- synthetic

def _fit(length: Callable[[int], int], limit: int, guess: int) -> int:
    """The largest n (about) with length(n) <= limit, for a length that grows about linearly in n: secant steps
    from length(0), then steps down until it fits. Raises when even n = 0 does not fit."""
    memo: dict[int, int] = {}

    def size(n: int) -> int:
        if n not in memo:
            memo[n] = length(n)
        return memo[n]

    base = size(0)
    if base > limit:
        raise TokensieveError(f"{limit} tokens cannot hold this task's question and list: use more")
    n = max(1, guess)
    for _ in range(8):
        per = max((size(n) - base) / n, 1e-9)
        nxt = max(0, int((limit - base) / per))
        if nxt == n:
            break
        n = nxt
    while n > 0 and size(n) > limit:
        per = max((size(n) - base) / n, 1e-9)
        n = max(0, min(n - 1, n - int((size(n) - limit) / per)))
    return n


def _pseudo_words(rng: random.Random, n: int, avoid: set[str]) -> list[str]:
    """n distinct pronounceable non-words such as "bodeka"."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    out: list[str] = []
    seen = set(avoid)
    while len(out) < n:
        word = "".join(rng.choices(syllables, k=rng.choice((2, 3))))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def _cwe(tokenizer, rng: random.Random, task: str, tokens: int, seed: int, haystack: str,
         n_common: int = 10) -> RulerCase:
    """A numbered list where `n_common` words appear `f_common` times and every other word `f_rare` times."""
    f_common = min(30, max(2, tokens // 128))  # RULER's 30 / 3 from 4k tokens on, fewer repeats below
    f_rare = min(3, max(1, f_common // 4))
    real = sorted(set(ADJECTIVES + NOUNS + VALUE_WORDS))
    common = rng.sample(real, n_common)
    rare = [w for w in real if w not in common]
    rng.shuffle(rare)
    rare += _pseudo_words(rng, tokens // (2 * f_rare) + 1, set(real))  # more than can ever fit
    intro = ("Below is a numbered list of words. Some of the words appear more often than others: memorise the "
             "ones that appear most often.")
    question = f"What are the {n_common} most common words in the list above?"
    prefix = f"The {n_common} most common words in the list are:"
    order_seed = rng.random()

    def context(n_rare: int) -> str:
        words = common * f_common + rare[:n_rare] * f_rare
        random.Random(f"{order_seed}/{n_rare}").shuffle(words)
        return intro + "\n\n" + "\n".join(f"{i}. {w}" for i, w in enumerate(words, 1))

    def length(n_rare: int) -> int:
        return _count(tokenizer, context(n_rare) + suffix(question, prefix))

    n_rare = _fit(length, tokens, max(1, (tokens // 6 - n_common * f_common) // f_rare))
    return RulerCase(task, tokens, seed, haystack, context(n_rare), question, prefix, tuple(common), "all")


def _fwe(tokenizer, rng: random.Random, task: str, tokens: int, seed: int, haystack: str,
         alpha: float = 2.0, top: int = 3) -> RulerCase:
    """Coded text of random five-letter words whose counts follow a Zipf law of exponent `alpha` (counts are the
    rounded-down expectations, the remainder spread one each over the tail, so the top words are exact)."""
    vocab: list[str] = []
    seen: set[str] = set()
    while len(vocab) < tokens:  # more distinct words than can ever fit
        word = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=5))
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    intro = "Read the coded text below and keep track of how often each coded word appears."
    question = f"What are the {top} most frequent coded words in the text above?"
    prefix = f"The {top} most frequent coded words in the text are:"
    order_seed = rng.random()

    def context(n: int) -> str:
        weights = [r ** -alpha for r in range(1, len(vocab) + 1)]
        total = sum(weights)
        counts = [int(n * w / total) for w in weights]
        spare = n - sum(counts)
        for r in range(top + 1, min(len(counts), top + 1 + spare)):  # +1 for tail words: never reaches the top
            counts[r] += 1
        words = [w for w, c in zip(vocab, counts, strict=True) for _ in range(c)]
        random.Random(f"{order_seed}/{n}").shuffle(words)
        return intro + "\n\n" + " ".join(words)

    def length(n: int) -> int:
        return _count(tokenizer, context(n) + suffix(question, prefix))

    n = _fit(length, tokens, tokens // 4)
    return RulerCase(task, tokens, seed, haystack, context(n), question, prefix, tuple(vocab[:top]), "all")
