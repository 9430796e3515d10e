"""Search verifier: normalization, aliases, F1 threshold, and agreement with smolagents' own benchmark scores."""

import json

import pytest

from dataset_builder.verify import verify
from dataset_builder.verify.search import extract_answer, gold_aliases, normalize, token_f1

SMOLAGENTS = "search/huggingface__smolagents/examples/smolagents_benchmark/output"


def record(gold: str, meta: dict | None = None) -> dict:
    return {"domain": "search", "gold": gold, "meta": json.dumps(meta or {})}


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("1,842", "1842"),
        ("1842.0", " 1842"),
        ("André-Jean-Jacques Deshayes", "andre jean jacques deshayes"),
        ("The Beatles.", "beatles"),
        ("Picnic is in Polybius Plaza", "Picnic is in Polybius Plaza."),
        ("3.50", "3.5"),
        ("**Final answer:** Tollan.", "Tollan"),
    ],
)
def test_equivalent_answers_verify(answer, gold):
    verdict = verify(record(gold), answer)
    assert verdict.ok and verdict.score == 1.0, verdict


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("1939", "1937"),
        ("35", "3.5"),  # a decimal point is not punctuation to drop
        ("Claus Peter Flor", "Claus"),  # F1 0.5
        ("St. Petersburg", "Saint Petersburg"),
        (
            "broccoli, celery, lettuce, sweet potatoes, zucchini",
            "broccoli, celery, fresh basil, lettuce, sweet potatoes",
        ),
        ("There are 99 vampires in the village.", "100"),
    ],
)
def test_different_answers_do_not(answer, gold):
    verdict = verify(record(gold), answer)
    assert not verdict.ok and "F1" in verdict.why, verdict


def test_aliases_json_list_pipes_and_meta():
    assert gold_aliases('["New York City", "NYC"]') == ["New York City", "NYC"]
    assert gold_aliases("Tollan | Tollan town") == ["Tollan", "Tollan town"]
    assert verify(record('["New York City", "NYC"]'), "nyc").ok
    assert verify(record("Tollan | Tollan town"), "Tollan Town").ok
    assert verify(record("United Kingdom", {"evidence": {"gold_aliases": ["UK", "Britain"]}}), "Britain").ok
    assert not verify(record(""), "anything").ok and "no gold" in verify(record(""), "anything").why


def test_f1_threshold_and_normalization():
    assert normalize("The  Salt-Road!") == "salt road"
    assert token_f1("salt road of carrow", "the salt road") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert verify(record("the old salt road"), "old salt road north", f1_threshold=0.9).ok is False
    assert verify(record("the old salt road"), "old salt road north", f1_threshold=0.85).ok is True
    assert extract_answer("Reasoning...\nAnswer: \\boxed{42}") == "\\boxed{42}"
    assert extract_answer("so it is \\boxed{42}") == "42"


@pytest.mark.parametrize(
    ("run", "benchmark"),
    [
        ("gpt-4o__tool-calling__simpleqa", "simpleqa"),
        ("gpt-4o__code__simpleqa", "simpleqa"),
        ("gpt-4o__tool-calling__gaia", "gaia"),
    ],
)
def test_agrees_with_the_benchmarks_own_scores(real, run, benchmark):
    """Real (answer, true_answer) pairs: the verifier's count equals the run's reported exact-match count, and on the
    clear cases (both sides a plain number, where the benchmark compares numbers) it agrees record by record."""
    out = real / SMOLAGENTS
    scores_file = f"benchmark_scores_{run.rsplit('__', 1)[0]}__2025-07-24.json"
    reported = json.loads((out / scores_file).read_text())["benchmarks"][benchmark]
    rows = [json.loads(line) for line in (out / f"{run}__2025-07-24.jsonl").read_text().splitlines()]
    verdicts = [verify(record(str(r["true_answer"])), str(r["answer"])) for r in rows]
    assert sum(v.ok for v in verdicts) == reported["exact_matches"]
    clear = 0
    for r, v in zip(rows, verdicts):
        answer, gold = str(r["answer"]).strip(), str(r["true_answer"]).strip()
        if answer.replace(".", "", 1).isdigit() and gold.replace(".", "", 1).isdigit():
            clear += 1
            assert v.ok == (float(answer) == float(gold)), (answer, gold, v)
    print(
        f"{run}: verified {sum(v.ok for v in verdicts)}/{len(rows)}, reported exact matches "
        f"{reported['exact_matches']:.0f}; {clear} clear numeric cases, all in agreement"
    )
    assert clear >= (len(rows) * 0.9 if benchmark == "simpleqa" else 1)


def test_agrees_with_hotpotqa_exact_match_verdicts_of_react_runs(real):
    """Reflexion's ReAct logs mark every answer CORRECT/INCORRECT by HotpotQA's exact match: with f1_threshold=1.0
    the verifier agrees on every distinct (question, answer, gold); the default 0.8 also accepts near answers."""
    from dataset_builder.adapters import read_file
    from dataset_builder.schema import Trajectory

    judged = {}
    for path in sorted((real / "search/noahshinn__reflexion").rglob("*.txt")):
        for t in read_file(path):
            if isinstance(t, Trajectory) and "correct" in t.meta and t.final_answer:
                judged[t.question, t.final_answer, t.gold] = t.meta["correct"]
    assert len(judged) > 100 and 0 < sum(judged.values()) < len(judged)
    strict = {key: verify(record(key[2]), key[1], f1_threshold=1.0).ok for key in judged}
    assert strict == judged
    lenient = {key for key in judged if verify(record(key[2]), key[1]).ok and not judged[key]}
    assert ("Stone Brewing Co.", "Stone Brewing") in {(answer, gold) for _, answer, gold in lenient}
    assert all(judged[key] <= verify(record(key[2]), key[1]).ok for key in judged)  # 0.8 only ever adds
