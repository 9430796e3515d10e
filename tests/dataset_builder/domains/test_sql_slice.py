"""SQL evidence at real database sizes: slices of the rows the queries read (Chinook fixture, read in place)."""

import json
import sqlite3
from pathlib import Path

import pytest

from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions, extract
from dataset_builder.domains.sql_slice import parse_rendered_table
from dataset_builder.schema import Step, Trajectory
from dataset_builder.verify.sql import Table, compare_tables, run_readonly_sql

CHINOOK = Path("sql/lerocha__chinook-database/Chinook_Sqlite.sqlite")
GOLD = (
    "SELECT t.Name, t.Milliseconds FROM Track t JOIN Album a ON a.AlbumId = t.AlbumId "
    "JOIN Artist ar ON ar.ArtistId = a.ArtistId WHERE ar.Name = 'AC/DC' AND t.Milliseconds > 300000"
)
LOOKUP = "SELECT ArtistId, Name FROM Artist WHERE Name LIKE 'AC%'"


def message_run(question: str, sqls: list[str], gold: str) -> dict:
    """One openai-messages trajectory (the format of the bundled samples), written by the test."""
    messages = [{"role": "user", "content": question}]
    for k, sql in enumerate(sqls):
        call = {
            "id": f"c{k}",
            "type": "function",
            "function": {"name": "sql_db_query", "arguments": json.dumps({"query": sql})},
        }
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{k}", "name": "sql_db_query", "content": "[]"})
    messages.append({"role": "assistant", "content": "| Name | Milliseconds |\n|---|---|\n| x | 1 |"})
    return {"id": "acdc-long", "domain": "sql", "question": question, "gold": gold, "db_id": "Chinook",
            "meta": {"gold_kind": "sql", "engine": "sqlite"}, "messages": messages}  # fmt: skip


@pytest.fixture
def chinook(real) -> Path:
    if not (real / CHINOOK).is_file():
        pytest.skip("Chinook fixture missing")
    return real / CHINOOK


def load_slices(pieces) -> sqlite3.Connection:
    mem = sqlite3.connect(":memory:")
    for p in pieces:
        create, columns, rows = parse_rendered_table(p.text)
        mem.execute(create)
        if rows:
            mem.executemany(f'INSERT INTO "{p.title}" VALUES ({",".join("?" * len(columns))})', rows)
    return mem


def test_filtered_queries_compile_to_a_slice_that_answers_the_gold_sql(real, chinook, tmp_path):
    before = chinook.read_bytes()
    runs = tmp_path / "runs" / "chinook_messages.jsonl"
    runs.parent.mkdir()
    question = "Which AC/DC tracks are longer than five minutes, and how long are they?"
    runs.write_text(json.dumps(message_run(question, [LOOKUP, GOLD], GOLD)) + "\n")
    result = compile_trajectories(
        [runs], tmp_path / "out", domain_options=DomainOptions(db_dir=real / "sql"), progress=False
    )
    assert not result.rejects, [r.reason for r in result.rejects]
    (record,) = result.records
    gold = {p.title: p for p in record.pieces if not p.is_distractor}
    assert set(gold) == {"Track", "Album", "Artist"}
    track = gold["Track"].text.split("\n")
    mark = next(line for line in track if line.startswith("-- rows "))
    shown, total = (int(x.replace(",", "")) for x in mark[len("-- rows ") :].split(" (")[0].split(" of "))
    assert total == 3503 and shown < total  # a slice, marked as one
    meta = json.loads(record.meta)
    assert meta["evidence"]["slices"]["Track"]["of"] == 3503
    assert meta["evidence"]["slices"]["Track"]["rows"] < shown  # sampled rows were added up to the budget
    assert record.n_tokens <= record.budget
    # the gold SQL on the sliced tables (an in-memory database) returns what it returns on the whole database
    mem = load_slices(gold.values())
    on_slice = Table([tuple(r) for r in mem.execute(GOLD).fetchall()])
    full = run_readonly_sql(chinook, GOLD)
    assert full.rows and compare_tables(on_slice, Table([tuple(r) for r in full.rows])).ok
    assert chinook.read_bytes() == before


def test_unfiltered_aggregate_keeps_the_table_whole_and_says_why(real, chinook):
    t = Trajectory(
        id="t", source="test", domain="sql", question="q", final_answer="x",
        steps=[Step("sql_db_query", {"sql": "SELECT AVG(Milliseconds) FROM Track"})],
        meta={"db_id": "Chinook", "engine": "sqlite"},
    )  # fmt: skip
    ev = extract(t, DomainOptions(db_dir=real / "sql"))
    assert ev.slices == {} and ev.gold[0].text.split("\n")[-3504].startswith("TrackId | Name")
    assert ev.meta["needs_every_row"].startswith("the answer needs every row of Track (3,503 rows): step 0")
    assert "an unfiltered aggregate" in ev.meta["needs_every_row"]


def test_langgraph_runs_average_every_track_row_and_are_rejected_with_that_reason(real, chinook, tmp_path):
    notebook = real / "sql/langchain-ai__langgraph"
    result = compile_trajectories(
        [notebook], tmp_path / "out", domain_options=DomainOptions(db_dir=real / "sql"), progress=False
    )
    assert not result.records and len(result.rejects) == 2
    for reject in result.rejects:
        assert reject.reason.startswith("the answer needs every row of Track (3,503 rows)"), reject.reason
        assert "an unfiltered aggregate" in reject.reason and "gold evidence alone is 169801 tokens" in reject.reason


def test_lineage_never_runs_what_is_not_a_checked_select(real, chinook):
    t = Trajectory(
        id="t", source="test", domain="sql", question="q", final_answer="x",
        steps=[Step("q", {"sql": "DELETE FROM Track WHERE TrackId = 1"}), Step("q", {"sql": GOLD})],
        meta={"db_id": "Chinook", "engine": "sqlite"},
    )  # fmt: skip
    ev = extract(t, DomainOptions(db_dir=real / "sql"))
    assert "step 0: not a single SELECT, not run (it reads no rows)" in ev.meta["lineage_notes"]
    assert ev.meta["slices"]["Track"]["rows"] == len(run_readonly_sql(chinook, GOLD).rows)
    assert ev.meta["slices"]["Artist"]["rows"] == 1


def test_rendered_values_read_back_exactly():
    text = "CREATE TABLE t (a, b, c, d)\n-- 2 rows; note\na | b | c | d\n1 | 'it''s | x\\ny' | -2.5 | NULL\n2 | X'00FF' | 1e-300 | ''"
    create, columns, rows = parse_rendered_table(text)
    assert create == "CREATE TABLE t (a, b, c, d)" and columns == ["a", "b", "c", "d"]
    assert rows == [(1, "it's | x\ny", -2.5, None), (2, b"\x00\xff", 1e-300, "")]
