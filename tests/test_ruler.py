"""RULER-style task generators: deterministic, within the token budget, answers planted, scoring as RULER's."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensieve.data.ruler import HAYSTACKS, TASKS, RulerCase, ruler_case, score
from tokensieve.data.stdlib_corpus import stdlib_context, stdlib_dir, stdlib_files, stdlib_haystack
from tokensieve.errors import TokensieveError

T = 1024


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from tokensieve.models import resolve

    return AutoTokenizer.from_pretrained(resolve("smollm2-135m"))


def n_tokens(tok, text: str) -> int:
    return len(tok(text).input_ids)


def word_counts(case: RulerCase) -> Counter:
    body = case.context.split("\n\n", 1)[1]  # after the instruction line
    if case.task == "cwe":
        return Counter(re.findall(r"^\d+\. (\S+)$", body, flags=re.M))
    return Counter(body.split())


@pytest.mark.parametrize("haystack", HAYSTACKS)
@pytest.mark.parametrize("task", TASKS)
def test_case_is_deterministic_fits_and_plants_its_answer(tok, task, haystack):
    case = ruler_case(tok, task, T, 0, haystack)
    assert case == ruler_case(tok, task, T, 0, haystack)
    other = ruler_case(tok, task, T, 1, haystack)
    assert other.context != case.context and other.expected != case.expected
    assert (case.task, case.tokens, case.seed, case.haystack) == (task, T, 0, haystack)
    assert 0.9 * T <= n_tokens(tok, case.prompt()) <= T
    assert case.metric in ("all", "part") and case.expected
    for e in case.expected:  # the question never gives the answer away
        assert e.lower() not in case.question.lower() and e.lower() not in case.answer_prefix.lower()
    if task in ("cwe", "fwe"):  # the expected words are strictly the most frequent ones
        counts = word_counts(case)
        rest = [c for w, c in counts.items() if w not in case.expected]
        assert min(counts[e] for e in case.expected) > max(rest)
    else:
        assert all(e in case.context for e in case.expected)
    assert score(case, " ".join(case.expected)) == 1.0


def test_prompt_matches_completion_prompt(tok):
    from tokensieve.run import completion_prompt

    case = ruler_case(tok, "niah_single_number", T, 0)
    assert "".join(completion_prompt(case.context, case.question, case.answer_prefix)) == case.prompt()


def test_needle_structure(tok):
    multikey = ruler_case(tok, "niah_multikey", T, 2)
    assert multikey.context.count("The special magic number for ") == 4  # the asked needle + 3 distractors
    multivalue = ruler_case(tok, "niah_multivalue", T, 2)
    key = multivalue.question.split(" for ")[1].split()[0]
    assert all(f"for {key} is: {v}." in multivalue.context for v in multivalue.expected)
    multiquery = ruler_case(tok, "niah_multiquery", T, 2)
    assert len(set(multiquery.expected)) == 4 and multiquery.answer_prefix.endswith(":")
    uuid_case = ruler_case(tok, "niah_single_uuid", T, 2)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid_case.expected[0])
    assert re.fullmatch(r"\d{7}", ruler_case(tok, "niah_single_number", T, 2).expected[0])


@pytest.mark.parametrize("haystack", HAYSTACKS)
def test_vt_chain_resolves_to_exactly_the_expected_variables(tok, haystack):
    case = ruler_case(tok, "vt", T, 3, haystack)
    value = re.search(r"value (\d+)", case.question).group(1)
    assigned = dict(re.findall(r"VAR ([A-Z]{5}) = (\w+)\.", case.context))
    assert len(assigned) == 10  # the asked chain and a distractor chain, 5 variables each

    def resolve(name: str) -> str:
        while name in assigned:
            name = assigned[name]
        return name

    assert {n for n in assigned if resolve(n) == value} == set(case.expected)


def test_qa_plants_a_fact_and_scores_any_part(tok):
    case = ruler_case(tok, "qa", T, 4)
    assert case.metric == "part" and all(e in case.context for e in case.expected)
    assert score(case, f"... {case.expected[-1]}") == 1.0
    assert score(case, "I do not know") == 0.0


def test_score():
    assert score(("1234567",), "The number is 1234567.") == 1.0
    assert score(("1", "2", "3", "4"), "1 and 3") == 0.5  # RULER's string_match_all: recall
    assert score(("9999999",), "The number is 1234567.") == 0.0
    assert score("ABCDE-f", "it is abcde-F") == 1.0  # case-insensitive, a bare string is one expected answer
    assert score(["Ada Lovelace", "Lovelace"], "Lovelace", metric="part") == 1.0
    assert score(["Ada Lovelace", "Lovelace"], "Lovelace") == 0.5
    case = RulerCase("qa", T, 0, "essays", "", "q", "", ("Ada Lovelace", "Lovelace"), "part")
    assert score(case, "lovelace") == 1.0 and score(case, "lovelace", metric="all") == 0.5
    with pytest.raises(TokensieveError, match="all, part"):
        score(("a",), "a", metric="most")
    with pytest.raises(TokensieveError):
        score((), "a")


@given(st.lists(st.text(max_size=8), min_size=1, max_size=6), st.text(max_size=40))
def test_score_is_bounded_and_part_dominates_all(expected, answer):
    all_, part = score(expected, answer), score(expected, answer, metric="part")
    assert 0.0 <= all_ <= part <= 1.0
    assert part in (0.0, 1.0)


def test_value_words_occur_in_neither_haystack():
    from tokensieve.data.corpus import essays
    from tokensieve.data.ruler import VALUE_WORDS

    text = (" ".join(essays()) + "".join(t for _, t in stdlib_files())).lower()
    assert [w for w in VALUE_WORDS if w in text] == []


def test_stdlib_files_are_real_stdlib_sources():
    files = stdlib_files()
    paths = [p for p, _ in files]
    assert paths == sorted(paths) and len(paths) > 100
    skipped = {"test", "tests", "idlelib", "site-packages"}
    assert not any(skipped & set(p.split("/")) for p in paths)
    for rel, text in files[:: len(files) // 10]:
        assert (stdlib_dir() / rel).read_text(encoding="utf-8") == text


def test_stdlib_haystack_and_context(tok):
    hay = stdlib_haystack(tok, 2000, offset=3)
    assert hay.startswith(f"# file: {stdlib_files()[3][0]}\n") and hay.endswith("\n")
    assert 1800 <= len(tok(hay, add_special_tokens=False).input_ids) <= 2000
    ctx = stdlib_context(tok, 3000, seed=5)
    assert ctx == stdlib_context(tok, 3000, seed=5) and ctx != stdlib_context(tok, 3000, seed=6)
    assert 2700 <= len(tok(ctx, add_special_tokens=False).input_ids) <= 3000
    texts = dict(stdlib_files())
    blocks = re.split(r"^# file: (\S+)\n", ctx, flags=re.M)[1:]
    pairs = list(zip(blocks[::2], blocks[1::2], strict=True))
    assert len(pairs) >= 2
    for i, (rel, body) in enumerate(pairs):  # whole real files, the last one cut at a line end
        real = texts[rel] if texts[rel].endswith("\n") else texts[rel] + "\n"
        assert body == real if i < len(pairs) - 1 else real.startswith(body)


def test_stdlib_haystack_case_comes_from_stdlib(tok):
    case = ruler_case(tok, "niah_single_number", T, 0, "stdlib")
    texts = dict(stdlib_files())
    headers = re.findall(r"^# file: (\S+)$", case.context, flags=re.M)
    assert headers and all(h in texts for h in headers)
    lines = [ln for ln in case.context.splitlines()[3:] if len(ln) > 30 and "magic" not in ln]
    assert sum(any(ln in t for t in texts.values()) for ln in lines) >= 0.9 * len(lines)


def test_32k_case_is_fast_and_fits(tok):
    start = time.perf_counter()
    case = ruler_case(tok, "niah_multivalue", 32768, 0)
    assert time.perf_counter() - start < 30
    assert 0.95 * 32768 <= n_tokens(tok, case.prompt()) <= 32768


@pytest.mark.parametrize(("args", "match"), [
    (("niah", T, 0), "unknown RULER task 'niah'.*niah_single_word.*qa"),
    (("vt", T, 0, "noise"), "unknown haystack 'noise'.*essays, stdlib"),
    (("vt", 100, 0), "tokens >= 256"),
])
def test_bad_input(tok, args, match):
    with pytest.raises(TokensieveError, match=match) as err:
        ruler_case(tok, *args)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("task", TASKS)
def test_the_answer_budget_fits_every_expected_answer(tok, task):
    """Decoding stops at the bench's answer budget: an answer it cannot fit scores 0 whatever the method kept."""
    from tokensieve.bench.prompts import NEW_TOKENS

    for seed in range(5):
        case = ruler_case(tok, task, T, seed)
        lengths = [len(tok(" " + e, add_special_tokens=False).input_ids) + 1 for e in case.expected]  # + separator
        needed = sum(lengths) if case.metric == "all" else min(lengths)
        assert needed <= NEW_TOKENS.get(task, 16), (task, seed, case.expected)
