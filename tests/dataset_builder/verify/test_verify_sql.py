"""SQL verifier on real cases: the BIRD record's queries, the LangGraph tutorial's result on the real Chinook database,
Spider 2.0's gold CSV variants; plus table formats, tolerance, order, and the read-only gold execution."""

import csv
import io
import json
import random
import re
import sqlite3

import pytest

from dataset_builder.verify import verify
from dataset_builder.verify.sql import TableError, check_gold_sql, compare_tables, parse_table, run_readonly_sql

BIRD = "sql/All-Hands-AI__OpenHands/evaluation/benchmarks/bird/README.md"
SPIDER = "sql/xlang-ai__Spider2/spider2-snow/evaluation_suite/gold"


def record(gold: str, **meta) -> dict:
    return {"domain": "sql", "gold": gold, "meta": json.dumps(meta)}


def bird_case(real):
    text = (real / BIRD).read_text()
    gen_sql, gold_sql = (
        json.loads(re.search(rf'"{k}": ("(?:[^"\\]|\\.)*")', text).group(1)) for k in ("gen_sql", "gold_sql")
    )
    observed = re.search(r"california_schools\.sqlite\\r\\n(\[\([^\]]*\)\])", text).group(
        1
    )  # what the agent's script printed
    ddl = json.loads(re.search(r'"instruction": ("(?:[^"\\]|\\.)*")', text).group(1))
    tables = {name: stmt for stmt, name in re.findall(r"(CREATE TABLE (\w+)\s*\(.*?\n\);)", ddl, re.S)}
    return gen_sql, gold_sql, observed, tables


@pytest.fixture
def bird_db(real, tmp_path):
    """A small california_schools database built from the BIRD task's own DDL (the real one is not in the fixtures)."""
    _, _, _, tables = bird_case(real)
    path = tmp_path / "california_schools.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(tables["schools"])
    conn.execute(tables["frpm"])
    schools = [  # (CDSCode, county, free meals K-12, enrollment K-12)
        ("01100170109835", "Alameda", 403.0, 1087.0),
        ("01100170112607", "Alameda", 395.0, 395.0),  # every pupil eligible: the rate 1.0 the agent saw
        ("01100170118489", "Alameda", 12.0, 0.0),  # no enrolment: the rate is NULL (division by zero)
        ("01611190130229", "Alameda", 134.0, 1244.0),
        ("19647330106195", "Los Angeles", 500.0, 480.0),  # over 1.0, but another county
        ("36678760133413", "San Bernardino", 88.0, 902.0),
    ]
    for code, county, free, enrolled in schools:
        conn.execute(
            "INSERT INTO schools (CDSCode, StatusType, County, District, DOC, DOCType, LastUpdate) VALUES (?, 'Active', ?, 'D', '52', 'Elementary', '2015-06-23')",
            (code, county),
        )
        conn.execute(
            "INSERT INTO frpm (CDSCode, `County Name`, `Free Meal Count (K-12)`, `Enrollment (K-12)`) VALUES (?, ?, ?, ?)",
            (code, county, free, enrolled),
        )
    conn.commit()
    conn.close()
    return path


def agent_result(db, sql: str) -> str:
    """What the BIRD agent's script printed: `print(cursor.fetchall())` (test code running the agent's query)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return repr(conn.execute(sql).fetchall())


def test_bird_generated_sql_result_matches_gold_sql(real, bird_db):
    gen_sql, gold_sql, observed, _ = bird_case(real)
    answer = agent_result(bird_db, gen_sql)
    assert answer == observed == "[(1.0,)]"  # the database reproduces what the real run printed
    rec = record(gold_sql, gold_kind="sql", db_path=str(bird_db))
    verdict = verify(rec, answer)
    assert verdict.ok and "gold SQL result: 1 rows x 1 columns match" in verdict.why
    assert verify(rec, "| highest_eligible_free_rate |\n|---|\n| 1 |").ok
    wrong_sql = gen_sql.replace("MAX(", "MIN(")  # a plausible wrong query
    assert agent_result(bird_db, wrong_sql) != answer
    wrong = verify(rec, agent_result(bird_db, wrong_sql))
    assert not wrong.ok and "no answer column has the values" in wrong.why
    everywhere = verify(rec, agent_result(bird_db, gen_sql.split(" WHERE")[0]))  # forgets the county filter
    assert not everywhere.ok
    as_sql = verify(rec, gen_sql)
    assert not as_sql.ok and "never executed" in as_sql.why


def test_langgraph_result_on_the_real_chinook_database(real):
    """The tutorial agent's printed sql_db_query output vs a gold query (written here) run read-only on Chinook."""
    notebook = json.loads((real / "sql/langchain-ai__langgraph/docs/docs/tutorials/sql-agent.ipynb").read_text())
    outputs = "".join("".join(o.get("text", [])) for c in notebook["cells"] for o in c.get("outputs", []))
    printed = re.search(r"\[\('Sci Fi & Fantasy', [\d.]+\)\]", outputs).group(0)
    final = re.search(r"The genre with the longest tracks on average is[^\n]*", outputs).group(0)
    db = real / "sql/lerocha__chinook-database/Chinook_Sqlite.sqlite"
    before = db.stat().st_mtime_ns, db.stat().st_size
    gold = "SELECT g.Name, AVG(t.Milliseconds) FROM Track t JOIN Genre g ON g.GenreId = t.GenreId GROUP BY g.GenreId ORDER BY 2 DESC LIMIT 1"
    rec = record(gold, gold_kind="sql", db_path=str(db))
    assert verify(rec, f"Result:\n{printed}\n").ok
    assert verify(rec, "| Name | AvgTrackLength |\n|---|---|\n| Sci Fi & Fantasy | 2911783.0384615385 |").ok
    rounded = "| Name | AvgTrackLength |\n|---|---|\n| Sci Fi & Fantasy | 2911783 |"
    assert verify(rec, rounded).ok  # within the default relative tolerance 1e-6 (0.04 of 2.9M)
    assert not verify(rec, rounded, rel_tol=1e-12).ok
    assert not verify(rec, rounded.replace("2911783", "2911780")).ok  # 3.04 away: outside
    assert not verify(rec, final).ok  # the prose answer is not a table
    assert (db.stat().st_mtime_ns, db.stat().st_size) == before


def spider_gold(real):
    tables = [(real / SPIDER / "exec_result" / f"sf_bq024_{v}.csv").read_text() for v in "abcd"]
    config = next(
        json.loads(x) for x in (real / SPIDER / "spider2snow_eval.jsonl").read_text().splitlines() if "sf_bq024" in x
    )
    return tables, config


def test_spider2_gold_variants_condition_cols_and_ignore_order(real):
    tables, config = spider_gold(real)
    assert config["condition_cols"] == [1, 2, 3, 4, 5] and config["ignore_order"] is True
    rec = record("", gold_tables=tables, condition_cols=config["condition_cols"], ignore_order=config["ignore_order"])
    rows = list(csv.reader(io.StringIO(tables[1])))
    header, body = rows[0], rows[1:]
    random.Random(0).shuffle(body)
    order = [3, 1, 4, 2, 5]  # only the compared columns, in another order, rows shuffled
    shuffled = io.StringIO()
    csv.writer(shuffled).writerows([[header[i] for i in order]] + [[r[i] for i in order] for r in body])
    verdict = verify(rec, shuffled.getvalue())
    assert verdict.ok and verdict.why.startswith("gold table 1:"), verdict
    assert verify(rec, tables[2]).ok  # variant c verbatim, extra columns included
    broken = tables[0].replace(",56,0.0,", ",57,0.0,", 1)  # one state code wrong
    assert broken != tables[0] and not verify(rec, broken).ok
    strict_order = record("", gold_tables=tables, condition_cols=config["condition_cols"], ignore_order=False)
    assert not verify(strict_order, shuffled.getvalue()).ok and verify(strict_order, tables[0]).ok


def test_table_formats_parse_to_the_same_rows():
    expected = [("Rock", 1297.0), ("Latin", 579.0), ("Metal", None)]
    texts = [
        "| genre | tracks |\n|:---|---:|\n| Rock | 1,297 |\n| Latin | 579 |\n| Metal | NULL |",
        "genre,tracks\nRock,1297\nLatin,579\nMetal,",
        "genre\ttracks\nRock\t1297\nLatin\t579\nMetal\tNone",
        "[('Rock', 1297), ('Latin', 579), ('Metal', None)]",
        "[('Rock', Decimal('1297')), ('Latin', Decimal('579.0')), ('Metal', None)]",
        '[{"genre": "Rock", "tracks": 1297}, {"genre": "Latin", "tracks": 579}, {"genre": "Metal", "tracks": null}]'.replace(
            "null", "None"
        ),
        "```csv\ngenre,tracks\nRock,1297\nLatin,579\nMetal,\n```",
    ]
    for text in texts:
        assert parse_table(text).rows == expected, text
    with pytest.raises(TableError, match="row 2 has 1 cells"):
        parse_table("| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |")


def test_compare_rules():
    gold = parse_table("a,b\n1,x\n2,y\n2,y")
    assert compare_tables(parse_table("b,a\ny,2\nx,1\ny,2"), gold).ok  # columns and rows in any order
    assert not compare_tables(parse_table("a,b\n1,x\n2,y\n1,x"), gold).ok  # multiset: duplicates count
    assert not compare_tables(parse_table("a,b\n2,y\n1,x\n2,y"), gold, ignore_order=False).ok
    assert not compare_tables(parse_table("b,a\nx,1\ny,2\ny,2"), gold, ignore_column_order=False).ok
    assert "3 columns" in compare_tables(parse_table("a,b,c\n1,x,0\n2,y,0\n2,y,0"), gold).why
    assert compare_tables(parse_table("1.0000000001"), parse_table("1")).ok
    assert not compare_tables(parse_table("1.001"), parse_table("1")).ok
    assert compare_tables(parse_table("1.001"), parse_table("1"), abs_tol=1e-2).ok
    crossed = compare_tables(parse_table("a,b\n1,y\n2,x"), parse_table("a,b\n1,x\n2,y"))
    assert not crossed.ok and "do not pair up" in crossed.why  # each column matches, the rows do not
    assert compare_tables(parse_table("| a |\n|---|"), parse_table("[]")).ok  # both empty


def test_gold_sql_is_read_only_single_select_with_deadline(tmp_path):
    db = tmp_path / "t.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    for bad, why in [
        ("DELETE FROM t", "not DELETE"),
        ("SELECT 1; DROP TABLE t", "single statement"),
        ("PRAGMA writable_schema = 1", "not PRAGMA"),
        ("ATTACH DATABASE 'x.db' AS x", "not ATTACH"),
        ("SELEC x FROM", "does not parse"),
    ]:
        with pytest.raises(TableError, match=why):
            check_gold_sql(bad)
        verdict = verify(record(bad, gold_kind="sql", db_path=str(db)), "[(10,)]")
        assert not verdict.ok and verdict.why.startswith("gold unavailable")
    assert run_readonly_sql(db, "WITH s AS (SELECT SUM(x) AS total FROM t) SELECT total FROM s").rows == [(10.0,)]
    forever = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT MAX(i) FROM n"
    with pytest.raises(TableError, match="deadline"):
        run_readonly_sql(db, forever, timeout=0.2)
    with pytest.raises(TableError, match="more than 3 rows"):
        run_readonly_sql(db, "SELECT x FROM t", max_rows=3)
    missing = verify(record("SELECT 1", gold_kind="sql", db_path=str(tmp_path / "nope.sqlite")), "1")
    assert not missing.ok and "database not found" in missing.why
    nested = record("SELECT SUM(x) FROM t", evidence={"database": "t.sqlite"}, trajectory={"gold_kind": "sql"})
    assert verify(nested, "10", db_root=tmp_path).ok  # the compile step's layout: path relative to --db-dir
    assert "names no database" in verify(nested, "10").why
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (5,)


def test_gold_sql_through_a_sqlalchemy_url_is_read_only_with_deadline(tmp_path):
    """Records compiled from `--db-url` databases: the gold SQL runs on the URL given for their db_id, with the same
    guarantees as the sqlite path (checked statement, read-only connection, deadline, row cap)."""
    from dataset_builder.verify.sql import run_readonly_sql_url

    db = tmp_path / "harbour.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    url = f"sqlite:///{db}"
    query = "WITH s AS (SELECT SUM(x) AS total FROM t) SELECT total FROM s"
    assert run_readonly_sql_url(url, query).rows == run_readonly_sql(db, query).rows == [(10.0,)]
    urls = {"harbour": url}
    assert verify(record("SELECT SUM(x) FROM t", gold_kind="sql", db_id="harbour"), "10", db_urls=urls).ok
    assert not verify(record("SELECT SUM(x) FROM t", gold_kind="sql", db_id="harbour"), "11", db_urls=urls).ok
    with pytest.raises(TableError, match="not DELETE"):
        run_readonly_sql_url(url, "DELETE FROM t")
    forever = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT MAX(i) FROM n"
    with pytest.raises(TableError, match="deadline"):
        run_readonly_sql_url(url, forever, timeout=0.2)
    with pytest.raises(TableError, match="more than 3 rows"):
        run_readonly_sql_url(url, "SELECT x FROM t", max_rows=3)
    gone = verify(
        record("SELECT 1", gold_kind="sql", db_id="lost"), "1", db_urls={"lost": f"sqlite:///{tmp_path}/no.db"}
    )
    assert not gone.ok and "cannot open database" in gone.why
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (5,)
