"""`acc traces` end to end: a real dataset (writer), a real chat-completions server, real verifiers per domain."""

import difflib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from acc_records import acc_record
from chat_server import ChatServer, Reply, last_user_text

from dataset_builder.assemble import completion_messages
from dataset_builder.compile import CompileResult, DomainCounts
from dataset_builder.schema import ACCRecord, Piece
from dataset_builder.traces.run import generate_traces
from dataset_builder.traces.teacher import TeacherConfig
from dataset_builder.writer import write_dataset

ROOT = Path(__file__).resolve().parents[3]
HARBOUR = '''"""Tide tables for the harbour."""


def high_water(times):
    """The first high water of the day."""
    return times[0]


def low_water(times):
    return times[-1]
'''


def make_record(rid, domain, question, pieces, gold, meta=None, answer=""):
    return acc_record(rid, domain, question, pieces, answer, gold=gold, meta=meta)


def write(out: Path, records: list[ACCRecord], **settings) -> Path:
    counts = {}
    for r in records:
        c = counts.setdefault(r.domain, DomainCounts())
        c.n_in += 1
        c.n_records += 1
        c.n_tokens += r.n_tokens
    settings = {
        "seed": 0,
        "tokenizer": "acc-hf/default-bpe-8k",
        "budgets": {},
        "format": "auto",
        "command": "",
        **settings,
    }
    write_dataset(out, CompileResult(records, [], counts, settings))
    return out


def rows(out: Path) -> dict[str, dict]:
    return {r["id"]: r for shard in sorted(out.glob("data/*/*.parquet")) for r in pq.read_table(shard).to_pylist()}


def diff(path: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}"))


@pytest.fixture
def harbour_db(tmp_path):
    db = tmp_path / "dbs" / "harbour.sqlite"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE sailings (vessel TEXT, passengers INTEGER, cancelled INTEGER)")
    data = [("Skerry Star", 120, 0), ("Skerry Star", 95, 0), ("Gannet", 210, 0), ("Gannet", 180, 1), ("Merrow", 60, 0)]
    conn.executemany("INSERT INTO sailings VALUES (?, ?, ?)", data)
    conn.commit()
    conn.close()
    return db


def mixed_dataset(tmp_path: Path, harbour_db: Path) -> Path:
    page = Piece("page", "https://carrow.example/wiki/agnes-pyle", "Agnes Pyle was born in Tollan in 1871.")
    search = [
        make_record(f"s-{name}", "search", f"[s-{name}] Where was Agnes Pyle born?", [page], "Tollan | Tollan town")
        for name in ("right", "second", "wrong", "garbage", "down", "429")
    ]
    table = Piece("table", "sailings", "vessel | passengers | cancelled\n'Skerry Star' | 120 | 0\n...")
    gold_sql = "SELECT vessel, SUM(passengers) AS total FROM sailings WHERE cancelled = 0 GROUP BY vessel"
    sql_meta = {"evidence": {"database": "harbour.sqlite"}, "trajectory": {"gold_kind": "sql"}}
    sql = [
        make_record(
            f"q-{name}", "sql", f"[q-{name}] Passengers per vessel, cancelled excluded?", [table], gold_sql, sql_meta
        )
        for name in ("right", "sql", "wrong")
    ]
    file = Piece("file", "tides/harbour.py", HARBOUR)
    gold_patch = diff("tides/harbour.py", HARBOUR, HARBOUR.replace("return times[0]", "return max(times)"))
    swe = [
        make_record(
            f"w-{name}", "swe", f"[w-{name}] high_water returns the first time, not the highest.", [file], gold_patch
        )
        for name in ("right", "wrong")
    ]
    return write(tmp_path / "ds", search + sql + swe, db_dir=str(harbour_db.parent))


def teacher_script():
    fixed = HARBOUR.replace("return times[0]", "return max(times)")
    answers = {
        "s-right": [
            Reply(content="Final answer: Tollan", reasoning_content="The page says Agnes Pyle was born in Tollan.")
        ],
        "s-second": [Reply(content="Port Wendle"), Reply(content="<think>Born in Tollan.</think>\n\nTollan")],
        "s-wrong": [Reply(content="Port Wendle"), Reply(content="Ashby Cross")],
        "s-garbage": [Reply(raw=b"\x00\x01 not json"), Reply(content="Tollan", reasoning="Tollan, per the page.")],
        "q-right": [
            Reply(content="| vessel | total |\n|---|---|\n| Gannet | 210 |\n| Merrow | 60 |\n| Skerry Star | 215 |")
        ],
        "q-sql": [Reply(content="SELECT vessel, SUM(passengers) FROM sailings GROUP BY vessel")] * 2,
        "q-wrong": [
            Reply(content="| vessel | total |\n|---|---|\n| Gannet | 390 |\n| Merrow | 60 |\n| Skerry Star | 215 |")
        ]
        * 2,
        "w-right": [Reply(content="The fix:\n```diff\n" + diff("tides/harbour.py", HARBOUR, fixed) + "```\n")],
        "w-wrong": [Reply(content=diff("tides/harbour.py", HARBOUR, HARBOUR.replace("times[0]", "min(times)")))] * 2,
    }

    def script(body, seen):
        name = re.search(r"\[([\w-]+)\]", last_user_text(body)).group(1)
        if name == "s-down":
            return Reply(status=500)
        if name == "s-429":
            return Reply(status=429, headers={"Retry-After": "0"}) if seen == 0 else Reply(content="Tollan")
        return answers[name][body["seed"]]

    return script


def test_keep_and_reject_per_domain(tmp_path, harbour_db):
    ds = mixed_dataset(tmp_path, harbour_db)
    before = rows(ds)
    with ChatServer(teacher_script()) as server:
        cfg = TeacherConfig(url=server.url, model="teacher-x", backoff=0.01, max_retries=2, timeout=10)
        summary = generate_traces(ds, teacher=cfg, k=2, cache_path=tmp_path / "cache.sqlite", progress=False)
    after = rows(ds)
    assert set(after) == set(before)  # no record disappears
    verified = {rid for rid, r in after.items() if r["verified"]}
    assert verified == {"s-right", "s-second", "s-garbage", "s-429", "q-right", "w-right"}
    t = summary.domains
    assert (t["search"].attempted, t["search"].verified, t["search"].rejected, t["search"].no_answer) == (6, 4, 1, 1)
    assert (t["sql"].attempted, t["sql"].verified, t["sql"].rejected) == (3, 1, 2)
    assert (t["swe"].attempted, t["swe"].verified, t["swe"].rejected) == (2, 1, 1)
    assert summary.retries == 3  # s-down: 2 retries, s-429: 1

    right = after["s-right"]
    meta = json.loads(right["meta"])
    assert (right["answer"], right["reasoning"]) == ("Tollan", "The page says Agnes Pyle was born in Tollan.")
    assert right["completion"] == completion_messages(right["reasoning"], "Tollan")
    assert right["prompt"] == before["s-right"]["prompt"]  # the teacher saw exactly the student's prompt
    assert meta["teacher"]["model"] == "teacher-x" and meta["teacher"]["host"] == "127.0.0.1"
    assert meta["teacher"]["sample_index"] == 0 and meta["verifier"]["score"] == 1.0
    assert json.loads(after["s-second"]["meta"])["teacher"]["sample_index"] == 1
    assert after["s-second"]["reasoning"] == "Born in Tollan."
    assert after["s-garbage"]["reasoning"] == "Tollan, per the page."
    assert (
        after["w-right"]["answer"].startswith("--- a/tides/harbour.py") and "max(times)" in after["w-right"]["answer"]
    )
    assert after["q-right"]["answer"].startswith("| vessel | total |")

    down = json.loads(after["s-down"]["meta"])["traces"]
    assert down["status"] == "no_answer" and "HTTP 500" in down["why"] and not after["s-down"]["verified"]
    assert after["s-down"]["answer"] == before["s-down"]["answer"]
    wrong = json.loads(after["s-wrong"]["meta"])["traces"]
    assert wrong["status"] == "rejected" and wrong["candidates"] == 2 and "Ashby Cross" in wrong["why"]
    assert "never executed" in json.loads(after["q-sql"]["meta"])["traces"]["why"]
    assert (
        "no answer column has the values of gold column(s) ['total']"
        in json.loads(after["q-wrong"]["meta"])["traces"]["why"]
    )
    assert "differ from the gold result" in json.loads(after["w-wrong"]["meta"])["traces"]["why"]

    card = (ds / "README.md").read_text()
    assert card.startswith("---\n") and "## Reasoning traces" in card and "| search | 6 | 4 | 66.7% |" in card
    assert json.loads((ds / "traces_summary.json").read_text())["domains"]["total"]["verified"] == 6
    assert json.loads((ds / "stats.json").read_text())["traces"]["domains"]["sql"]["pass_rate"] == 0.3333

    from datasets import load_dataset

    loaded = load_dataset(str(ds), "search", split="train")
    assert len(loaded) == 6 and sum(loaded["verified"]) == 4

    # a second run skips what is verified and answers the rest from the cache: no new request reaches the server
    with ChatServer(teacher_script()) as again:
        cfg = TeacherConfig(url=again.url, model="teacher-x", backoff=0.01, max_retries=0, timeout=10)
        summary2 = generate_traces(ds, teacher=cfg, k=2, cache_path=tmp_path / "cache.sqlite", progress=False)
    assert [last_user_text(r.body)[:8] for r in again.requests] == ["[s-down]"]  # the one never answered
    assert summary2.total().skipped_verified == 6 and summary2.total().new_responses == 0
    assert (ds / "README.md").read_text().count("## Reasoning traces") == 1


def cached(path: Path) -> int:
    """Responses in the cache file a running process writes (0 until it has created its table)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_killed_run_resumes_without_asking_twice(tmp_path):
    page = Piece(
        "page", "https://carrow.example/wiki/port-wendle", "The rowing club was founded in Port Wendle in 1883."
    )
    records = [
        make_record(f"r{i}", "search", f"[r{i}] In which year was the rowing club founded?", [page], "1883")
        for i in range(8)
    ]
    ds = write(tmp_path / "ds", records)
    shard = next(ds.glob("data/search/*.parquet"))
    original = shard.read_bytes()
    cache = tmp_path / "cache.sqlite"

    def script(body, seen):  # odd records are wrong at the first sample and right at the second
        i = int(re.search(r"\[r(\d+)\]", last_user_text(body)).group(1))
        return Reply(content="1884" if i % 2 and body["seed"] == 0 else "1883", delay=0.05)

    command = [sys.executable, "-m", "acc_hf.cli", "traces", str(ds), "--model", "t", "-k", "2", "--concurrency", "2"]
    command += ["--cache", str(cache), "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with ChatServer(script, answer_limit=5) as server:
        command += ["--teacher-url", server.url]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if cached(cache) == 5:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the first run never cached 5 responses")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        first_run = server.answered()
        assert len(first_run) == 5 and shard.read_bytes() == original  # killed before writing anything
        server.release()
        n_before = len(server.requests)
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        second_run = [r.key for r in server.requests[n_before:]]
    answered = server.answered()
    assert len(answered) == 12 and not [k for k, n in Counter(answered).items() if n > 1]  # 8 + 4 second samples
    assert not set(first_run) & set(second_run)  # nothing answered before was asked again
    out = rows(ds)
    assert len(out) == 8 and all(r["verified"] and r["answer"] == "1883" for r in out.values())
    assert "| **total** | 8 | 8 | 100.0% |" in done.stdout


def test_trajectory_mode_on_smolagents_simpleqa(tmp_path, real):
    """The agents' own answers as traces: gpt-4o's SimpleQA run verifies 44/50, the benchmark's own exact-match count."""
    run = real / "search/huggingface__smolagents/examples/smolagents_benchmark/output"
    lines = (run / "gpt-4o__tool-calling__simpleqa__2025-07-24.jsonl").read_text().splitlines()
    reported = json.loads((run / "benchmark_scores_gpt-4o__tool-calling__2025-07-24.json").read_text())
    records = []
    for i, line in enumerate(lines):
        d = json.loads(line)
        steps = [s["content"][0]["text"] for s in d["intermediate_steps"] if s["role"] == "tool-response"]
        meta = {"trajectory_answer": d["answer"], "trajectory_reasoning": f"Searched and found {d['answer']}."}
        page = Piece("snippet", "web_search", steps[0][:2000] if steps else "no results")
        records.append(make_record(f"sqa{i}", "search", d["question"], [page], d["true_answer"], meta))
    records.append(make_record("no-answer", "search", "Unanswered?", [page], "x", {}))
    ds = write(tmp_path / "ds", records)
    summary = generate_traces(ds, tmp_path / "out", mode="trajectory", progress=False)
    assert summary.domains["search"].verified == reported["benchmarks"]["simpleqa"]["exact_matches"] == 44
    assert summary.domains["search"].no_answer == 1 and summary.domains["search"].attempted == 51
    out = rows(tmp_path / "out")
    assert len(out) == 51 and out["sqa0"]["verified"] and out["sqa0"]["reasoning"] == "Searched and found 1842."
    assert json.loads(out["sqa0"]["meta"])["traces"] == {"candidates": 1, "mode": "trajectory", "status": "verified"}
    assert not rows(ds)["sqa0"]["verified"]  # --out leaves the input dataset alone


def test_search_f1_option_sets_how_close_a_search_answer_must_be(tmp_path, capsys):
    """`acc traces --search-f1 1.0` keeps only normalized exact matches; the default 0.8 also takes a near answer."""
    from acc_hf.cli import main

    page = Piece("page", "https://example.org/brewery", "Stone Brewing was founded in 1996 in San Marcos.")
    records = [
        make_record("exact", "search", "Which brewery?", [page], "Stone Brewing", {"trajectory_answer": "stone brewing"}),
        make_record("near", "search", "Which brewery?", [page], "Stone Brewing", {"trajectory_answer": "Stone Brewing Co."}),
    ]  # fmt: skip
    ds = write(tmp_path / "ds", records)
    for f1, verified in (("0.8", {"exact": True, "near": True}), ("1.0", {"exact": True, "near": False})):
        out = tmp_path / f"out{f1}"
        assert main(["traces", str(ds), "--out", str(out), "--search-f1", f1, "--no-progress"]) == 0
        assert {rid: row["verified"] for rid, row in rows(out).items()} == verified
    assert main(["traces", str(ds), "--search-f1", "0"]) == 2
    assert "--search-f1 must be in (0, 1]" in capsys.readouterr().out


def test_db_url_option_runs_gold_sql_on_a_sqlalchemy_url(tmp_path, harbour_db, capsys):
    """A record compiled from `--db-url harbour=...` names no database file: `acc traces --db-url` finds its gold."""
    from acc_hf.cli import main

    gold = "SELECT vessel, SUM(passengers) FROM sailings GROUP BY vessel"
    answer = "| vessel | total |\n|---|---|\n| Gannet | 390 |\n| Merrow | 60 |\n| Skerry Star | 215 |"
    table = Piece("table", "sailings", "vessel | passengers | cancelled")
    meta = {"db_id": "harbour", "gold_kind": "sql", "trajectory_answer": answer}
    ds = write(tmp_path / "ds", [make_record("q", "sql", "Passengers per vessel?", [table], gold, meta)])
    assert main(["traces", str(ds), "--out", str(tmp_path / "without"), "--no-progress"]) == 0
    assert not rows(tmp_path / "without")["q"]["verified"]
    url = f"harbour=sqlite:///{harbour_db}"
    assert main(["traces", str(ds), "--out", str(tmp_path / "with"), "--db-url", url, "--no-progress"]) == 0
    assert rows(tmp_path / "with")["q"]["verified"]
    assert main(["traces", str(ds), "--db-url", "no-equals-sign"]) == 2
    assert "expected DB_ID=URL" in capsys.readouterr().out
