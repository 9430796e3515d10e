"""The compile pipeline on real files: the bundled samples, malformed inputs, and the real fixtures."""

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest

from dataset_builder.adapters.triage import non_trajectory_reason
from dataset_builder.compile import compile_trajectories, reason_class
from dataset_builder.readers import input_files
from dataset_builder.schema import ACCRecord
from dataset_builder.tokens import token_counter

SAMPLES = Path(__file__).resolve().parents[2] / "dataset_builder" / "samples"
SMALL = {"search": "2k:4k", "swe": "4k:8k", "sql": "2k:4k"}  # small budgets keep the tests fast


def sample_rows(rel: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLES / rel).read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def check_records(result):
    counter = token_counter()
    contexts = [r.context for r in result.records]
    for rec, n in zip(result.records, counter.count_batch(contexts)):
        assert n == rec.n_tokens <= rec.budget, rec.id
        gold = [p for p in rec.pieces if not p.is_distractor]
        assert gold and all(p.text in rec.context for p in gold)
    for dom, c in result.counts.items():
        assert c.n_in == c.n_records + c.n_rejected, dom
    assert len(result.records) + len(result.rejects) == sum(c.n_in for c in result.counts.values())


def origins(result) -> dict[str, str]:
    return {
        Path(r.origin.split(":")[0].split("#")[0]).name + r.origin[len(r.origin.split(":")[0]) :]: r.reason
        for r in result.rejects
    }


@pytest.fixture
def bad_inputs(tmp_path):
    """A directory of real trajectories (from the bundled samples) mixed with every kind of bad input."""
    d = tmp_path / "inputs"
    (d / "nested").mkdir(parents=True)
    search = sample_rows("search/carrow_messages.jsonl")
    write_jsonl(d / "search_runs.jsonl", [search[0], '{"id": "cut-off", "messages": [{"role": "us', search[1]])
    (d / "empty.jsonl").write_text("")
    (d / "nested" / "blob.jsonl").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    (d / "notes.log").write_text("2024-05-01 12:00 started\n2024-05-01 12:01 finished\n")
    huge = json.loads(json.dumps(search[2]))
    tool_msg = next(m for m in huge["messages"] if m["role"] == "tool")
    tool_msg["content"] = "x" * (50 * 2**20)  # a 50 MB observation
    write_jsonl(d / "huge.jsonl", [huge])
    write_jsonl(d / "sql_runs.jsonl", sample_rows("sql/ferries_messages.jsonl")[:1])  # its database is not given
    swe = sample_rows("swe/tides_messages.jsonl")[0]
    escape = dict(swe, id="escape", answer=swe["answer"].replace("tides/timeparse.py", "../../outside.py"), gold="")
    write_jsonl(d / "escape.jsonl", [escape])
    con = sqlite3.connect(d / "ferries_copy.db")
    con.execute("create table t (x int)")
    con.commit()
    con.close()
    (d / "gold.csv").write_text("name,total\nSkerry Star,6804\nTern,5120\n")
    (d / "fix.patch").write_text(swe["answer"])
    write_jsonl(
        d / "all_preds.jsonl", [{"instance_id": "a__b-1", "model_patch": swe["answer"], "model_name_or_path": "m"}]
    )
    (d / "LICENSE").write_text("Copyright (c) 2024 Someone\n\nPermission is hereby granted, free of charge, ...\n")
    (d / "scores.json").write_text(json.dumps({"model_id": "m", "benchmarks": {"qa": {"exact_match": 0.5}}}))
    deep = '{"messages": ' + "[" * 200_000 + "]" * 200_000 + "}"  # RecursionError in json, not JSONDecodeError
    (d / "deep.json").write_text(deep)
    write_jsonl(d / "deep_line.jsonl", [search[3], deep, search[4]])  # one line nested 200,000 levels deep
    (d / "latin1.jsonl").write_bytes(json.dumps(search[5]).encode().replace(b"}", "\u00e9}".encode()) + b"\xe9\n")
    return d


def test_bad_inputs_become_rejects_with_reasons(bad_inputs, tmp_path):
    result = compile_trajectories([bad_inputs], tmp_path / "out", budgets=SMALL, progress=False)
    check_records(result)
    reasons = origins(result)
    assert reasons["search_runs.jsonl:2"].startswith("malformed JSON line")
    assert reasons["empty.jsonl"] == "empty file"
    assert "binary data" in reasons["blob.jsonl"]
    assert reasons["notes.log"].startswith("unknown format")
    huge_reason = next(v for k, v in reasons.items() if k.startswith("huge.jsonl"))
    assert re.search(r"observation of 52\.4M characters exceeds the 2M limit", huge_reason)
    assert "database" in next(v for k, v in reasons.items() if k.startswith("sql_runs.jsonl"))
    assert "outside the repository" in next(v for k, v in reasons.items() if k.startswith("escape.jsonl"))
    assert reasons["ferries_copy.db"] == "database file: pass its directory with --db-dir"
    assert reasons["gold.csv"] == "table file (gold results?) not a trajectory"
    assert reasons["fix.patch"].startswith("patch file")
    assert reasons["all_preds.jsonl"].startswith("SWE-bench predictions")
    assert reasons["LICENSE"] == "licence text, not a trajectory"
    assert reasons["scores.json"].startswith("benchmark score summary")
    assert "RecursionError" in reasons["deep.json"]
    assert reasons["deep_line.jsonl:2"] == "malformed JSON line: RecursionError (nested too deeply to parse)"
    assert reasons["latin1.jsonl"].startswith("not UTF-8 text")
    # the good search runs beside them (two in search_runs.jsonl, two around the deep line) are records
    rows = sample_rows("search/carrow_messages.jsonl")
    want = sorted(rows[i]["id"] for i in (0, 1, 3, 4))
    assert sorted(json.loads(r.meta)["trajectory_id"] for r in result.records) == want
    assert len(result.rejects) == 16 and result.balanced
    lines = (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()
    assert len(lines) == 16 and all(json.loads(line)["reason"] for line in lines)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["n_in"] == 20 and stats["balanced"]


def test_acc_compile_cli_survives_every_malformed_input(bad_inputs, tmp_path, capsys):
    """The CLI on the whole malformed directory: exit 0, no traceback, every bad input named in rejects.jsonl."""
    from acc_hf.cli import main

    budgets = sum((["--budget", f"{d}={b}"] for d, b in SMALL.items()), [])
    code = main(["compile", str(bad_inputs), "--out", str(tmp_path / "cli"), "--no-progress", *budgets])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.out + captured.err
    named = {json.loads(line)["origin"].split(":")[0] for line in (tmp_path / "cli" / "rejects.jsonl").open()}
    for bad in ("deep.json", "deep_line.jsonl", "latin1.jsonl", "blob.jsonl", "empty.jsonl", "LICENSE", "huge.jsonl"):
        assert any(origin.endswith(bad) for origin in named), bad


def test_domain_filter_and_format_override(bad_inputs):
    result = compile_trajectories([bad_inputs / "search_runs.jsonl"], domain="sql", progress=False)
    assert not result.records
    assert [r.reason for r in result.rejects if r.stage == "filter"] == [
        "domain filter: search trajectory, compiling only sql"
    ] * 2
    assert result.counts["search"].n_in == 3 and result.balanced
    forced = compile_trajectories([bad_inputs / "notes.log"], fmt="smolagents", progress=False)
    assert len(forced.rejects) == 1 and "unknown format" not in forced.rejects[0].reason
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        compile_trajectories([bad_inputs], fmt="nope", progress=False)
    with pytest.raises(ValueError, match="unknown domain video"):
        compile_trajectories([bad_inputs], domain="video", progress=False)
    with pytest.raises(FileNotFoundError, match="input not found"):
        compile_trajectories([bad_inputs / "missing.jsonl"], progress=False)


def test_view_outside_the_repository_is_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a9 do not leak\n")
    swe = sample_rows("swe/tides_messages.jsonl")[0]
    msgs = swe["messages"]
    call = {
        "id": "call_x",
        "type": "function",
        "function": {"name": "bash", "arguments": json.dumps({"command": "cat ../../secret.txt"})},
    }
    peek = [
        {"role": "assistant", "content": "Let me look outside.", "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": "call_x",
            "name": "bash",
            "content": "<returncode>0</returncode>\n<output>\nTOP-SECRET-7f3a9 do not leak\n</output>",
        },
    ]
    row = dict(swe, id="peek", messages=msgs[:2] + peek + msgs[2:])
    result = compile_trajectories([write_jsonl(tmp_path / "peek.jsonl", [row])], budgets=SMALL, progress=False)
    check_records(result)
    assert len(result.records) == 1, result.rejects
    assert "TOP-SECRET" not in result.records[0].context


def test_same_output_for_any_num_proc_and_run(tmp_path):
    inputs = [SAMPLES / "search", SAMPLES / "sql", SAMPLES / "swe"]
    from dataset_builder.domains import DomainOptions

    opts = DomainOptions(db_dir=SAMPLES / "sql", repos_dir=SAMPLES / "swe", page_cache_dir=SAMPLES / "corpus")

    def run(name, num_proc):
        out = tmp_path / name
        res = compile_trajectories(inputs, out, num_proc=num_proc, domain_options=opts, seed=3, progress=False)
        check_records(res)
        files = sorted(out.glob("data/*/*.parquet"))
        assert files
        return {f.relative_to(out).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}, res

    (a, res_a), (b, _), (c, res_c) = run("a", 1), run("b", 1), run("c", 2)
    assert a == b == c
    assert [r.to_json() for r in res_a.rejects] == [r.to_json() for r in res_c.rejects]
    other = compile_trajectories(inputs, tmp_path / "d", domain_options=opts, seed=4, progress=False)
    assert [r.id for r in other.records] != [r.id for r in res_a.records]


def test_real_fixtures_every_input_accounted_for(real, tmp_path):
    from dataset_builder.domains import DomainOptions

    result = compile_trajectories(
        [real], budgets=SMALL, domain_options=DomainOptions(db_dir=real / "sql"), progress=False
    )
    check_records(result)
    assert result.balanced
    n_files = sum(1 for _ in input_files([real]))
    assert sum(c.n_in for c in result.counts.values()) >= n_files
    assert {"search", "swe"} <= {r.domain for r in result.records}
    by_reason = {reason_class(r.reason) for r in result.rejects}
    assert "database file, not a trajectory (read through --db-dir)" in by_reason
    assert "SWE-bench predictions (final patches only, no trajectory)" in by_reason
    assert all(isinstance(r, ACCRecord) for r in result.records)


def test_non_trajectory_detection_is_by_content(tmp_path):
    (tmp_path / "data.txt").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    assert non_trajectory_reason(tmp_path / "data.txt")[0].startswith("database file")
    (tmp_path / "table.csv").write_text("just one line of prose, with a comma\n")
    assert non_trajectory_reason(tmp_path / "table.csv") is None  # not tabular: left to the adapters
    (tmp_path / "preds.json").write_text(json.dumps({"x__y-1": {"instance_id": "x__y-1", "model_patch": "diff"}}))
    assert non_trajectory_reason(tmp_path / "preds.json")[0].startswith("SWE-bench predictions")
    (tmp_path / "traj.json").write_text(json.dumps([{"instance_id": "x", "model_patch": "d", "history": []}]))
    assert non_trajectory_reason(tmp_path / "traj.json") is None  # has agent steps: a trajectory


def test_langgraph_sql_record_holds_every_row_of_the_tables_its_query_read(real):
    """The LangGraph tutorial's genre query reads Track (3503 rows) and Genre: the record holds all of both.

    Track alone is ~170k tokens under the bundled tokenizer, so at the default 128k maximum the record is rejected
    with that reason (never cut); with a longer window (--max-length 256k) it compiles, every row present."""
    from dataset_builder.domains import DomainOptions
    from dataset_builder.domains.sql import render_value

    notebook = real / "sql/langchain-ai__langgraph/docs/docs/tutorials/sql-agent.ipynb"
    db_path = real / "sql/lerocha__chinook-database/Chinook_Sqlite.sqlite"
    opts = DomainOptions(db_dir=db_path.parent)

    default = compile_trajectories([notebook], domain_options=opts, progress=False)
    assert not default.records and len(default.rejects) == 2
    assert all(
        re.search(r"gold evidence alone is \d+ tokens, over the \d+ maximum .*--max-length 131072 ", r.reason)
        for r in default.rejects
    )

    result = compile_trajectories([notebook], domain_options=opts, max_length=262144, progress=False)
    check_records(result)
    assert len(result.records) == 2
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    for rec in result.records:
        assert "genre" in rec.question.lower()
        gold = {p.title: p for p in rec.pieces if not p.is_distractor}
        assert set(gold) == {"Track", "Genre"}
        for table, piece in gold.items():
            lines = set(piece.text.splitlines())
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            assert len(rows) == db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
            missing = [row for row in rows if " | ".join(render_value(v) for v in row) not in lines]
            assert not missing, f"{table}: {len(missing)} of {len(rows)} rows missing, e.g. {missing[0]}"
        assert rec.budget <= 262144 and json.loads(rec.meta)["evidence"]["db_id"].lower() == "chinook"
