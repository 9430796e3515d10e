"""One length contract from compile to training, end to end: `acc compile --samples --max-length 4096`, `acc traces`
from a real HTTP teacher on 127.0.0.1 that thinks ~1,500 words before every answer, then `acc train
recipes/tiny_moe_cpu.yaml` at max_length 4096: no row is dropped for its length, and the records whose trace did not
fit the reserve were re-fitted (distractors dropped, gold kept), not rejected."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq

from acc_hf.cli import main as acc_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dataset_builder" / "traces"))
from chat_server import ChatServer, Reply, last_user_text  # noqa: E402

RECIPE = ROOT / "recipes" / "tiny_moe_cpu.yaml"
MAX_LENGTH = 4096
THINKING_WORDS = 1500

SENTENCES = [
    "First I read the question again and note what kind of answer it asks for.",
    "The documents are numbered, and only some of them are about the question at all.",
    "This page mentions the place and the year, so I keep it in mind.",
    "That one talks about another person with a similar name, which could mislead me.",
    "I should check whether the dates agree before I trust this part.",
    "Looking back at the earlier page, the same fact is stated in different words.",
    "The table lists several rows, and I need to count only the ones that match.",
    "Let me compare the two candidates and see which one the evidence supports.",
    "The file shows the function, and the bug is in how the value is returned.",
    "Nothing in the remaining documents contradicts what I found so far.",
    "Document 4, the page on Agnes Pyle, says she was born in Tollan in 1871; document 9 dates the priory to 1342.",
    "The ferry Skerry Star sailed 15 times in 2024-06, while the Gannet carried 210 passengers on 12 June.",
    "In tides/timeparse.py the parser reads '06:45' as 6.75 hours, but the units module expects minutes (405).",
]


def thinking(words: int, seed: str) -> str:
    """Plain English reasoning of exactly `words` words (seeded)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < words:
        out += rng.choice(SENTENCES).split()
    return " ".join(out[:words])


def rows(ds: Path) -> list[dict]:
    return [r for shard in sorted(ds.glob("data/*/*.parquet")) for r in pq.read_table(shard).to_pylist()]


def sql_result(gold_sql: str, db: Path) -> str:
    """The gold query's result on the sample database (opened read-only), as a markdown table."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cursor = conn.execute(gold_sql)
    header = [d[0] for d in cursor.description]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in cursor.fetchall()]
    conn.close()
    return "\n".join(lines)


def oracle(records: list[dict]) -> dict[str, str]:
    """question -> the answer of a teacher that knows it: the gold (first alias) for search, the gold patch for swe,
    the gold query's result for sql; a record without a gold gets the trajectory's answer."""
    db = ROOT / "dataset_builder" / "samples" / "sql" / "ferries.sqlite"
    answers = {}
    for r in records:
        gold = (r["gold"] or "").strip()
        if not gold:
            answer = r["answer"]
        elif r["domain"] == "search":
            answer = gold.split(" | ")[0]
        elif r["domain"] == "sql":
            answer = sql_result(gold, db)
        else:
            answer = gold
        answers[r["question"].strip()] = answer
    return answers


def test_compile_traces_train_keep_every_row_within_max_length(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = tmp_path / "acc"
    code = acc_main(["compile", "--samples", "--out", str(ds), "--max-length", str(MAX_LENGTH), "--no-progress"])
    assert code == 0
    stats = json.loads((ds / "stats.json").read_text())
    assert stats["settings"]["max_length"] == MAX_LENGTH and stats["settings"]["reasoning_reserve"] == 2048
    compiled = rows(ds)
    for r in compiled:  # compile: every row + the reserve fits
        assert json.loads(r["meta"])["row_tokens"] + 2048 <= MAX_LENGTH
    budget_rejects = [json.loads(line) for line in (ds / "rejects.jsonl").read_text().splitlines()]
    budget_rejects = [r for r in budget_rejects if r["stage"] == "budget"]
    assert all("--max-length 4096 - reasoning reserve 2048" in r["reason"] for r in budget_rejects)

    answers = oracle(compiled)
    thought = {}

    def script(body, seen):
        text = last_user_text(body)
        question = next(q for q in answers if text.startswith(q))
        thought[question] = thinking(THINKING_WORDS, question)
        return Reply(content=answers[question], reasoning_content=thought[question])

    with ChatServer(script) as server:
        code = acc_main(
            ["traces", str(ds), "--teacher-url", server.url, "--model", "thinker", "-k", "1"]
            + ["--cache", str(tmp_path / "cache.sqlite"), "--no-progress"]
        )
    assert code == 0
    summary = json.loads((ds / "traces_summary.json").read_text())
    total = summary["domains"]["total"]
    assert summary["max_length"] == MAX_LENGTH and summary["longest_row"] <= MAX_LENGTH
    assert total["balanced"] and total["attempted"] == len(compiled)

    after = {r["id"]: r for r in rows(ds)}
    assert set(after) == {r["id"] for r in compiled}  # no record disappears
    with_gold = [r for r in after.values() if (r["gold"] or "").strip()]
    verified = [r for r in with_gold if r["verified"]]
    refitted = [r for r in verified if "refit" in json.loads(r["meta"])]
    print(
        f"\ncompiled {len(compiled)} records ({len(budget_rejects)} budget rejects); with gold {len(with_gold)}, "
        f"verified {len(verified)} ({len(verified) / len(with_gold):.0%}), re-fitted {len(refitted)}, over length "
        f"{total['over_length']}; longest row {summary['longest_row']}"
    )
    assert len(verified) >= 0.8 * len(with_gold)
    assert refitted and total["refitted"] == len(refitted)  # some 1,500-word traces are longer than the reserve
    before = {r["id"]: r for r in compiled}
    for r in verified:
        meta = json.loads(r["meta"])
        assert r["reasoning"] == thought[r["question"].strip()]
        assert meta["row_tokens"] <= MAX_LENGTH
        old_gold = [p["text"] for p in before[r["id"]]["pieces"] if not p["is_distractor"]]
        assert [p["text"] for p in r["pieces"] if not p["is_distractor"]] == old_gold  # gold is never dropped
        assert r["context"] in r["prompt"][0]["content"]
        if "refit" in meta:
            assert len(r["pieces"]) < len(before[r["id"]]["pieces"]) and r["n_tokens"] <= r["budget"]
            # kept documents keep their index: the trace's references still point at the same document
            for index, piece in zip(meta["refit"]["indices"], r["pieces"]):
                assert f'<document index="{index}" kind="{piece["kind"]}"' in r["context"]
    for r in after.values():
        why = json.loads(r["meta"])["traces"].get("why", "")
        if not r["verified"] and "verified, but" in why:
            assert "does not fit beside this completion" in why

    # the tokenized training row never exceeds meta.row_tokens (the contract's count is an upper bound)
    from acc_hf.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    for r in verified:
        prompt = [{"role": m["role"], "content": m["content"]} for m in r["prompt"]]
        completion = [{"role": m["role"], "content": m["content"]} for m in r["completion"]]
        n = len(tok.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"])
        assert json.loads(r["meta"])["row_tokens"] - 80 <= n <= json.loads(r["meta"])["row_tokens"]

    from datasets import load_dataset

    from acc_hf.train import length_notice

    data = load_dataset("parquet", data_files=[str(p) for p in sorted(ds.glob("data/*/*.parquet"))], split="train")
    args = SimpleNamespace(max_length=2048, only_verified=True, acc_domains=None)
    n_train = sum(r["verified"] for r in after.values())
    over = sum(json.loads(r["meta"])["row_tokens"] > 2048 for r in after.values() if r["verified"])
    assert over > 0
    assert f"max_length is 2048: {over} of the {n_train} rows to train on" in (length_notice(str(ds), data, args) or "")
    assert length_notice(str(ds), data, SimpleNamespace(max_length=MAX_LENGTH, only_verified=True)) is None

    out = tmp_path / "run"
    code = acc_main(
        [
            "train", str(RECIPE), "--dataset_path", str(ds), "--output_dir", str(out), "--max_length", str(MAX_LENGTH),
            "--max_steps", "1", "--logging_steps", "1", "--save_strategy", "steps", "--save_steps", "1",
        ]
    )  # fmt: skip
    assert code == 0
    history = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())["log_history"]
    data_entry = next(h for h in history if "acc/train/dropped_over_length" in h)
    assert data_entry["acc/train/dropped_over_length"] == 0
    assert data_entry["acc/train/samples"] == sum(r["verified"] for r in after.values())
