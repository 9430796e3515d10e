import json
import re

import pytest
from compile_helpers import make_item, make_items

from dataset_builder import assemble
from dataset_builder.assemble import Assembler, render_context, render_piece, rerender
from dataset_builder.budget import MAX_LENGTH, parse_budgets
from dataset_builder.schema import ACCRecord, Reject
from dataset_builder.tokens import token_counter

COUNTER = token_counter()
DOC = re.compile(r'<document index="(\d+)" kind="([^"]*)" title="([^"]*)">\n')


def assemble_items(items, budgets=None, seed=0):
    return Assembler(counter=COUNTER, budgets=parse_budgets(budgets), seed=seed).assemble(items)


def check_record(rec: ACCRecord, item):
    # every gold piece is in the context, whole
    gold_texts = [p.text for p in item.evidence.gold]
    for t in gold_texts:
        assert t in rec.context
    assert sorted(p.text for p in rec.pieces if not p.is_distractor) == sorted(gold_texts)
    # never over budget, by the tokenizer itself
    assert COUNTER.count(rec.context) == rec.n_tokens <= rec.budget
    # the context is exactly the rendered pieces, indexed 1..n
    assert rec.context == render_context(rec.pieces)
    assert [int(m.group(1)) for m in DOC.finditer(rec.context)] == list(range(1, len(rec.pieces) + 1))
    assert len({p.title for p in rec.pieces}) == len(rec.pieces)  # no document twice
    exact = COUNTER.count_batch([render_piece(k, p) for k, p in enumerate(rec.pieces, start=1)])
    assert all(abs(p.n_tokens - n) <= 2 for p, n in zip(rec.pieces, exact))  # per-piece counts (by parts)
    # prompt-completion form
    assert [m["role"] for m in rec.prompt] == ["user"] and [m["role"] for m in rec.completion] == ["assistant"]
    user = rec.prompt[0]["content"]
    assert user.startswith(item.traj.question) and rec.context in user
    assert user.endswith(assemble.ANSWER_FORMAT[rec.domain])
    assert rec.completion[0]["content"] == f"<think>\n\n</think>\n\n{item.evidence.answer}"


def test_records_keep_gold_fit_budget_and_fill_from_the_pool():
    items = make_items(12, gold_words=300)
    out = assemble_items(items, ["search=8k:16k"])
    assert all(isinstance(r, ACCRecord) for r in out)
    for rec, item in zip(out, items):
        check_record(rec, item)
        meta = json.loads(rec.meta)
        assert meta["n_gold"] == 2 and meta["n_own"] == 3  # own distractors first (they all fit)
        assert meta["n_filler"] > 0  # 8k+ budgets need pieces of other trajectories
        assert rec.n_tokens > 0.8 * rec.budget  # filled, not just bounded
        own = {p.title for p in item.evidence.distractors}
        filler = [p for p in rec.pieces if p.is_distractor and p.title not in own]
        assert filler and all(f"-{item.traj.id.split('-')[1]}-" not in p.title for p in filler)
        assert list(json.loads(rec.meta)) == sorted(json.loads(rec.meta))  # meta keys sorted


def test_order_is_a_seeded_permutation():
    items = make_items(6)
    a = assemble_items(items, seed=0)
    b = assemble_items(items, seed=0)
    c = assemble_items(items, seed=1)
    assert [r.to_row() for r in a] == [r.to_row() for r in b]
    assert [r.id for r in a] != [r.id for r in c]
    # with a fixed budget the gold and own pieces are the same for both seeds, in another order
    fixed = ["search=4096"]
    a, c = assemble_items(items, fixed, seed=0), assemble_items(items, fixed, seed=1)
    orders = [[p.title for p in r.pieces] for r in a], [[p.title for p in r.pieces] for r in c]
    assert orders[0] != orders[1]
    gold_positions = {tuple(i for i, p in enumerate(r.pieces) if not p.is_distractor) for r in a}
    assert len(gold_positions) > 1  # gold is not always first


def test_record_does_not_depend_on_its_neighbours_order():
    items = make_items(5)
    out = assemble_items(items)
    rev = assemble_items(items[::-1])
    assert {r.id: r.to_row() for r in out} == {r.id: r.to_row() for r in rev}


def test_filler_skips_trajectories_with_the_same_question():
    items = [make_item(i, question="Who kept the Gannet Head light?" if i < 3 else "") for i in range(8)]
    out = assemble_items(items, ["search=16k"])
    for rec in out[:3]:
        titles = {p.title for p in rec.pieces}
        for other in (0, 1, 2):
            if f"run-{other}" != json.loads(rec.meta)["trajectory_id"]:
                assert not any(f"-{other}-" in t for t in titles), titles


def test_large_gold_moves_up_and_oversized_gold_is_rejected():
    big = make_item(0, gold_words=9000, n_gold=1)  # ~ 10k+ tokens, over a fixed 4k budget
    huge = make_item(1, gold_words=130_000, n_gold=1)
    out = assemble_items([big, huge, make_item(2)], ["search=4096"])
    rec, rej = out[0], out[1]
    assert isinstance(rec, ACCRecord)
    gold_tokens = COUNTER.count(render_context([p for p in rec.pieces if not p.is_distractor]))
    assert rec.budget > 4096 and rec.budget & (rec.budget - 1) == 0 and rec.budget >= gold_tokens
    assert json.loads(rec.meta)["budget_drawn"] == 4096
    check_record(rec, big)
    assert isinstance(rej, Reject) and rej.stage == "budget"
    assert re.match(
        rf"gold evidence alone is \d+ tokens, over the \d+ maximum for this record's context \(--max-length "
        rf"{MAX_LENGTH} - reasoning reserve 16384 - \d+ for question, answer and chat template\); the evidence is never cut",
        rej.reason,
    )
    assert rej.origin == huge.traj.origin
    assert isinstance(out[2], ACCRecord)


def test_exact_count_drops_distractors_when_estimates_are_low(monkeypatch):
    # estimates 40 tokens too small per piece: the plan overfills, the exact count must pull it back
    monkeypatch.setattr(assemble, "PLAN_SLACK", -40)
    items = make_items(8, gold_words=200)
    for rec, item in zip(assemble_items(items, ["search=4096"]), items):
        check_record(rec, item)
        assert rec.budget == 4096


def test_gold_is_moved_up_when_the_exact_count_needs_it(monkeypatch):
    # the estimate says the gold fits 4096 (800 tokens too low); the exact count says it does not: move up, never cut
    monkeypatch.setattr(assemble, "PLAN_SLACK", -200)
    item = make_item(0, n_gold=4, gold_words=400, n_own=0)
    rec = assemble_items([item], ["search=4096"])[0]
    check_record(rec, item)
    assert 4096 < rec.n_tokens <= rec.budget == 8192
    assert json.loads(rec.meta)["budget_drawn"] == 4096


def test_record_ids_are_stable_and_depend_on_settings():
    items = make_items(3)
    ids = [r.id for r in assemble_items(items)]
    assert ids == [r.id for r in assemble_items(items)]
    assert len(set(ids)) == 3
    assert ids != [r.id for r in assemble_items(items, ["search=32k"])]


def test_rerender_gold_only_and_smaller_budget():
    item = make_item(0, gold_words=300)
    rec = assemble_items(make_items(6, gold_words=300)[1:] + [item], ["search=16k"])[-1]
    gold_only = rerender(rec, drop_distractors=True)
    assert [p.text for p in gold_only.pieces] == [p.text for p in rec.pieces if not p.is_distractor]
    assert gold_only.n_tokens == COUNTER.count(gold_only.context) < rec.n_tokens
    assert gold_only.id != rec.id and json.loads(gold_only.meta)["ablation"]["from"] == rec.id
    assert gold_only.context in gold_only.prompt[0]["content"]
    half = rerender(rec, drop_distractors=0.5)
    n_dis = sum(p.is_distractor for p in rec.pieces)
    assert sum(p.is_distractor for p in half.pieces) == n_dis - round(n_dis / 2)
    small = rerender(rec, budget=4096)
    assert small.budget == 4096 and COUNTER.count(small.context) == small.n_tokens <= 4096
    assert all(p.text in small.context for p in rec.pieces if not p.is_distractor)
    # kept pieces keep their relative order
    order = [p.title for p in rec.pieces]
    assert [order.index(p.title) for p in small.pieces] == sorted(order.index(p.title) for p in small.pieces)
    with pytest.raises(ValueError, match="gold evidence alone"):
        rerender(rec, budget=300)


def test_swe_filler_comes_from_the_same_repository_first():
    """Files of another repository (another language, even) are weak distractors: the same repo's are taken first."""
    items = make_items(8, "swe", gold_words=200, n_own=0)
    for i, item in enumerate(items):
        item.traj.meta["repo"] = "org/near" if i < 3 else "org/far"
    out = assemble_items(items, ["swe=4k"])
    for i, (rec, item) in enumerate(zip(out, items)):
        check_record(rec, item)
        filler = [p.title for p in rec.pieces if p.is_distractor]
        owners = {int(t.split("-")[1]) for t in filler}
        if i < 3:  # two other trajectories of org/near: their 4 pieces come before any of org/far
            near = {j for j in range(3) if j != i}
            assert near <= owners, (i, filler)
        assert filler


def test_a_log_repeating_its_trajectories_gives_each_once(real):
    """The Reflexion ReAct log re-prints every solved trajectory in each of its 5 trials: one record each."""
    from collections import Counter

    from dataset_builder.compile import compile_trajectories

    log = real / "search/noahshinn__reflexion/hotpotqa_runs/root/ReAct/base/100_questions_5_trials.txt"
    result = compile_trajectories([log], budgets={"search": "2k:4k"}, progress=False)
    seen = Counter(
        (r.question, tuple(sorted(p.text for p in r.pieces if not p.is_distractor)), r.answer) for r in result.records
    )
    assert seen and max(seen.values()) == 1
    # "Which of Jonny Craig and Pete Doherty ..." is solved in trial 1 (line 8) and re-printed in trials 2-5
    jonny = [r for r in result.records if r.question.startswith("Which of Jonny Craig and Pete Doherty")]
    assert [json.loads(r.meta)["origin"].rsplit(":", 1)[1] for r in jonny] == ["8"]
    repeats = [r for r in result.rejects if r.reason.startswith("duplicate:") and r.reason.endswith(f"{log}:8'")]
    assert sorted(int(r.origin.rsplit(":", 1)[1]) for r in repeats) == [1642, 3280, 4883, 6482]
    assert len(result.records) + len(result.rejects) == sum(c.n_in for c in result.counts.values())
    assert len(result.records) < 200 < sum(c.n_in for c in result.counts.values())


def test_title_only_snippets_are_no_filler(real):
    """ReAct's `Similar: [...]` titles are distractors of the run that saw them, not documents for other records."""
    from dataset_builder.adapters import read_file
    from dataset_builder.compile import compile_trajectories
    from dataset_builder.domains import CompileError, extract
    from dataset_builder.schema import Trajectory

    react = real / "search/noahshinn__reflexion/hotpotqa_runs/root/ReAct/base/100_questions_5_trials.txt"
    smol = real / "search/huggingface__smolagents/examples/smolagents_benchmark/output"
    smol = smol / "gpt-4o__tool-calling__simpleqa__2025-07-24.jsonl"
    result = compile_trajectories([react, smol], budgets={"search": "8k:16k"}, progress=False)
    own: dict[str, set[str]] = {}
    for t in read_file(smol):
        if isinstance(t, Trajectory):
            try:
                own[t.origin.rsplit("/", 1)[-1]] = {p.text for p in extract(t).distractors}
            except CompileError:
                pass
    react_titles = 0
    for rec in result.records:
        one_line = {p.text for p in rec.pieces if p.kind == "snippet" and "\n" not in p.text.strip()}
        origin = json.loads(rec.meta)["origin"]  # relative to the input's folder
        if rec.source == "smolagents":
            origin = origin.rsplit("/", 1)[-1]
            assert one_line <= own[origin], origin
        else:
            react_titles += len(one_line)
    assert react_titles > 100  # they are still there, in the records of the runs that saw them


def test_swe_filler_from_other_repositories_prefers_the_gold_files_language():
    """With no file of its own repository left, a Python task gets Python files from elsewhere before C files."""
    from dataclasses import replace as dc_replace

    items = make_items(6, "swe", gold_words=150, n_own=0)
    for i, item in enumerate(items):
        item.traj.meta["repo"] = f"org/repo-{i}"
        ext = ".py" if i < 3 else ".c"
        item.evidence.gold = [dc_replace(p, title=p.title + ext) for p in item.evidence.gold]
    out = assemble_items(items, ["swe=2k"])
    for i, (rec, item) in enumerate(zip(out, items)):
        check_record(rec, item)
        filler = [p.title for p in rec.pieces if p.is_distractor]
        assert filler
        own_ext = ".py" if i < 3 else ".c"
        same_language = [t for t in filler if t.endswith(own_ext)]
        assert len(same_language) == min(len(filler), 4), (i, filler)  # the 4 same-language files come first
