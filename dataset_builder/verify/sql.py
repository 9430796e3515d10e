"""SQL answers: a result table, compared with the gold result as a multiset of rows with numeric tolerance.

The answer is a table as text: a markdown table (header row, separator, rows), CSV/TSV (first row is a header unless
it holds a number), or a Python list-of-tuples repr as LangChain's SQL tools print it (`[('Rock', 1297)]`, no header).
Column names never matter; column order is ignored by default (columns are matched by their values); row order is
ignored unless the record says otherwise.

The gold, in order of precedence:
- `meta["gold_tables"]`: several acceptable result tables as text (Spider 2.0 ships CSV variants a/b/c/d, any
  matches), compared on `meta["condition_cols"]` (0-based gold columns, as Spider 2.0's `gold.iloc[:, cols]`;
  the answer may then have extra columns) with `meta["ignore_order"]`;
- `gold_kind == "sql"` (or a gold that starts with SELECT/WITH): the benchmark's gold SQL, run read-only on the
  record's sqlite database (`find_database`): `mode=ro` URI, `PRAGMA query_only=ON`, one SELECT/WITH statement
  checked with sqlglot, a deadline enforced by a progress handler, a row cap. A record whose `db_id` has a
  SQLAlchemy URL in `db_urls` (`acc traces --db-url`, as given to `acc compile`) runs it there instead
  (`run_readonly_sql_url`);
- otherwise the gold text parsed as a table.

SQL written by a model or an agent is never executed: an answer that is SQL fails with that reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dataset_builder.adapters.common import parse_python_literal
from dataset_builder.verify import Verdict, meta_value, record_meta, record_value

REL_TOL = 1e-6
ABS_TOL = 1e-9
MAX_ROWS = 100_000
_NULLS = {"", "null", "none", "nan"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_FENCE = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_SQL_START = re.compile(r"^\s*(select|with|insert|update|delete|create|drop|alter|pragma|attach)\b", re.IGNORECASE)
_DECIMAL = re.compile(r"Decimal\('([^']*)'\)")


class TableError(ValueError):
    """Text that is not a readable table, or a gold that cannot be produced."""


@dataclass
class Table:
    rows: list[tuple]
    header: list[str] | None = None

    @property
    def width(self) -> int:
        return len(self.rows[0]) if self.rows else len(self.header or [])


# ---------------------------------------------------------------- reading tables


def cell(value: Any) -> Any:
    """Normalized cell: None, a float, or a stripped string. Numbers written as text become floats."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    if isinstance(value, bytes):
        return value.hex()
    text = str(value).strip()
    if text.lower() in _NULLS:
        return None
    if _GROUPED.match(text):
        text = text.replace(",", "")
    if _NUMBER.match(text):
        return float(text)
    return text


def _markdown(lines: list[str]) -> Table:
    def cells(line: str) -> list[str]:
        line = line.strip()
        line = line[1:] if line.startswith("|") else line
        line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
        return [c.replace("\\|", "|").strip().strip("*`") for c in re.split(r"(?<!\\)\|", line)]

    header = cells(lines[0])
    rows = [cells(line) for line in lines[2:] if line.strip()]
    for i, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise TableError(f"markdown row {i} has {len(row)} cells, the header has {len(header)}")
    return Table([tuple(cell(c) for c in row) for row in rows], header)


def _literal(text: str) -> Table:
    try:
        value = parse_python_literal(_DECIMAL.sub(r"'\1'", text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise TableError(f"not a Python list of rows: {type(err).__name__}") from err
    if isinstance(value, tuple):
        value = [value]
    if not isinstance(value, list):
        raise TableError(f"a Python {type(value).__name__}, not a list of rows")
    if value and all(isinstance(v, dict) for v in value):
        header = [str(k) for k in value[0]]
        return Table([tuple(cell(v.get(k)) for k in value[0]) for v in value], header)
    rows = [tuple(cell(c) for c in v) if isinstance(v, (list, tuple)) else (cell(v),) for v in value]
    if len({len(r) for r in rows}) > 1:
        raise TableError("rows of the Python list have different lengths")
    return Table(rows)


def _csv(text: str) -> Table:
    delimiter = "\t" if "\t" in text.splitlines()[0] else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
    header = None
    if len(rows) > 1 and not any(isinstance(cell(c), float) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    width = len(header) if header else len(rows[0])
    for i, row in enumerate(rows, start=1):
        if len(row) != width:
            raise TableError(f"CSV row {i} has {len(row)} cells, expected {width}")
    return Table([tuple(cell(c) for c in row) for row in rows], header)


def parse_table(text: str) -> Table:
    """Parse a table written as markdown, CSV/TSV or a Python list-of-tuples repr. Raises TableError."""
    text = (text or "").strip()
    fenced = _FENCE.findall(text)
    if fenced:
        text = fenced[-1][1].strip()
    if not text:
        raise TableError("empty table")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) >= 2 and _SEPARATOR.match(lines[1]) and "|" in lines[0] + lines[1]:
        return _markdown(lines)
    if text[0] in "[(":
        return _literal(text)
    return _csv(text)


def extract_table_text(text: str) -> str:
    """The table in a model's final text: the last non-SQL fenced block, the last markdown table, the last
    Python list on a line of its own, or else the whole text."""
    text = (text or "").strip()
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() != "sql"]
    if blocks:
        return blocks[-1].strip()
    lines = text.splitlines()
    groups, current = [], []
    for line in lines + [""]:
        if line.strip().startswith("|"):
            current.append(line.strip())
        elif current:
            groups.append(current)
            current = []
    groups = [g for g in groups if len(g) >= 2 and _SEPARATOR.match(g[1])]
    if groups:
        return "\n".join(groups[-1])
    for line in reversed(lines):
        if line.strip().startswith("[") and line.strip().endswith("]"):
            return line.strip()
    return text


# ---------------------------------------------------------------- comparing tables


def _same(a: Any, b: Any, rel_tol: float, abs_tol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
    return a == b


def _key(value: Any) -> tuple:
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, float):
        return (1, value, "")
    return (2, 0.0, value)


def _rows_match(a: list[tuple], b: list[tuple], ignore_order: bool, rel_tol: float, abs_tol: float) -> bool:
    if len(a) != len(b):
        return False

    def same_row(x: tuple, y: tuple) -> bool:
        return all(_same(p, q, rel_tol, abs_tol) for p, q in zip(x, y))

    if not ignore_order:
        return all(same_row(x, y) for x, y in zip(a, b))
    sort = lambda rows: sorted(rows, key=lambda r: tuple(_key(v) for v in r))  # noqa: E731
    if all(same_row(x, y) for x, y in zip(sort(a), sort(b))):
        return True
    if len(a) > 2000:  # the sorted pairing only fails near the tolerance; greedy matching is quadratic
        return False
    unused = list(b)
    for row in a:
        hit = next((i for i, other in enumerate(unused) if same_row(row, other)), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True


def compare_tables(
    answer: Table,
    gold: Table,
    *,
    ignore_order: bool = True,
    ignore_column_order: bool = True,
    condition_cols: list[int] | None = None,
    rel_tol: float = REL_TOL,
    abs_tol: float = ABS_TOL,
) -> Verdict:
    """Answer vs gold. With `condition_cols`, only those gold columns are compared and the answer may have more."""
    gold_rows = gold.rows
    if condition_cols:
        if max(condition_cols) >= gold.width:
            return Verdict(False, 0.0, f"condition_cols {condition_cols} outside the gold's {gold.width} columns")
        gold_rows = [tuple(r[c] for c in condition_cols) for r in gold.rows]
    if len(answer.rows) != len(gold_rows):
        return Verdict(False, 0.0, f"answer has {len(answer.rows)} rows, gold has {len(gold_rows)}")
    if not gold_rows:
        return Verdict(True, 1.0, "both results are empty")
    n_gold, n_answer = len(gold_rows[0]), answer.width
    extra_ok = bool(condition_cols)
    if n_answer < n_gold or (n_answer > n_gold and not extra_ok):
        return Verdict(False, 0.0, f"answer has {n_answer} columns, gold has {n_gold}")
    if not ignore_column_order and not extra_ok:
        ok = _rows_match(answer.rows, gold_rows, ignore_order, rel_tol, abs_tol)
        return Verdict(ok, float(ok), "rows match" if ok else "rows differ (columns compared in order)")

    def column(rows: list[tuple], j: int) -> list[tuple]:
        return [(r[j],) for r in rows]

    candidates = [
        [
            a
            for a in range(n_answer)
            if _rows_match(column(answer.rows, a), column(gold_rows, g), True, rel_tol, abs_tol)
        ]
        for g in range(n_gold)
    ]
    missing = [g for g, c in enumerate(candidates) if not c]
    if missing:
        names = [gold.header[condition_cols[g] if condition_cols else g] for g in missing] if gold.header else missing
        return Verdict(False, 0.0, f"no answer column has the values of gold column(s) {names}")
    attempts = 0

    def assign(g: int, used: tuple[int, ...]) -> bool:
        nonlocal attempts
        if g == n_gold:
            attempts += 1
            projected = [tuple(r[a] for a in used) for r in answer.rows]
            return _rows_match(projected, gold_rows, ignore_order, rel_tol, abs_tol)
        return any(assign(g + 1, used + (a,)) for a in candidates[g] if a not in used and attempts < 200)

    if assign(0, ()):
        return Verdict(True, 1.0, f"{len(gold_rows)} rows x {n_gold} columns match")
    return Verdict(False, 0.0, "every column has matching values, but the rows do not pair up")


# ---------------------------------------------------------------- gold SQL, read-only


def check_gold_sql(sql: str, dialect: str = "sqlite") -> None:
    """Raise TableError unless `sql` is exactly one SELECT / WITH ... SELECT statement."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as err:
        raise TableError(f"gold SQL does not parse: {str(err).splitlines()[0][:200]}") from err
    if len(statements) != 1:
        raise TableError(f"gold SQL must be a single statement, found {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise TableError(f"gold SQL must be a SELECT or WITH query, not {statement.key.upper()}")
    forbidden = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Pragma, exp.Command)
    bad = next(statement.find_all(*forbidden), None)
    if bad is not None:
        raise TableError(f"gold SQL contains a {bad.key.upper()} statement")


def run_readonly_sql(db_path: str | Path, sql: str, *, timeout: float = 30.0, max_rows: int = MAX_ROWS) -> Table:
    """Run one benchmark (gold) SELECT on a sqlite database opened read-only, with a deadline and a row cap."""
    check_gold_sql(sql)
    path = Path(db_path).resolve()
    if not path.is_file():
        raise TableError(f"database not found: {db_path}")
    return _run_cached(str(path), path.stat().st_mtime_ns, sql, timeout, max_rows)


@lru_cache(maxsize=256)
def _run_cached(path: str, mtime_ns: int, sql: str, timeout: float, max_rows: int) -> Table:
    conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA query_only=ON")
        deadline = time.monotonic() + timeout
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = conn.execute(sql)
            rows = cursor.fetchmany(max_rows + 1)
        except sqlite3.OperationalError as err:
            if time.monotonic() > deadline:
                raise TableError(f"gold SQL ran past its {timeout:g}s deadline") from err
            raise TableError(f"gold SQL failed: {err}") from err
        except sqlite3.Error as err:
            raise TableError(f"gold SQL failed: {type(err).__name__}: {err}") from err
        if len(rows) > max_rows:
            raise TableError(f"gold SQL returned more than {max_rows} rows")
        header = [d[0] for d in cursor.description or []]
        return Table([tuple(cell(v) for v in row) for row in rows], header)
    finally:
        conn.close()


def run_readonly_sql_url(url: str, sql: str, *, timeout: float = 30.0, max_rows: int = MAX_ROWS) -> Table:
    """Run one benchmark (gold) SELECT through SQLAlchemy, in a transaction that is rolled back.

    Every engine: one SELECT/WITH statement checked with sqlglot in the engine's dialect, and a row cap. sqlite: the
    file opened `mode=ro`, `PRAGMA query_only`, a deadline by progress handler (tested). PostgreSQL: a READ ONLY
    transaction and `statement_timeout`; MySQL/MariaDB: `max_execution_time` (neither tested here: no server)."""
    return _run_url_cached(url, sql, timeout, max_rows)


@lru_cache(maxsize=256)
def _run_url_cached(url: str, sql: str, timeout: float, max_rows: int) -> Table:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from dataset_builder.domains import CompileError
    from dataset_builder.domains.sql import _hide_password, _read_only_url, sql_dialect

    try:
        engine = create_engine(_read_only_url(url))
    except (SQLAlchemyError, CompileError, ImportError, ValueError) as err:
        raise TableError(f"cannot open database {_hide_password(url)}: {err}") from err
    name = engine.dialect.name
    check_gold_sql(sql, sql_dialect(name) or "sqlite")
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as conn:
            ms = max(1, int(timeout * 1000))
            if name == "sqlite":
                raw = conn.connection.driver_connection
                raw.execute("PRAGMA query_only = ON")
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            elif name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            elif name in ("mysql", "mariadb"):
                conn.exec_driver_sql(f"SET SESSION max_execution_time = {ms}")
            try:
                result = conn.exec_driver_sql(sql)
                rows = result.fetchmany(max_rows + 1)
                header = list(result.keys())
            finally:
                conn.rollback()
    except SQLAlchemyError as err:
        if time.monotonic() > deadline:
            raise TableError(f"gold SQL ran past its {timeout:g}s deadline") from err
        raise TableError(f"gold SQL failed: {str(err).splitlines()[0][:300]}") from err
    finally:
        engine.dispose()
    if len(rows) > max_rows:
        raise TableError(f"gold SQL returned more than {max_rows} rows")
    return Table([tuple(cell(v) for v in row) for row in rows], header)


def find_database(meta: dict[str, Any], db_root: str | Path | None = None) -> Path:
    """The record's sqlite file: `meta["db_path"]` (absolute, or under `db_root`), else the compile step's
    `meta["evidence"]["database"]` (relative to the --db-dir it used: pass that as `db_root`). The path an agent
    wrote in its trajectory is only looked up under `db_root`, never opened as given."""
    tried = []
    top = meta.get("db_path")
    if top and Path(str(top)).is_absolute():
        tried.append(Path(str(top)))
    for rel in (top, (meta.get("evidence") or {}).get("database"), (meta.get("trajectory") or {}).get("db_path")):
        if rel and db_root is not None and not Path(str(rel)).is_absolute() and "://" not in str(rel):
            tried.append(Path(db_root) / str(rel))
    for path in tried:
        if path.is_file():
            return path
    if not tried:
        raise TableError("gold is SQL but the record names no database file (meta db_path, or a db_root to look in)")
    raise TableError(f"database not found: {', '.join(str(p) for p in tried)}")


def _gold_tables(
    record: Any, meta: dict, db_root: str | Path | None, timeout: float, db_urls: dict[str, str] | None = None
) -> list[tuple[str, Table]]:
    tables = meta_value(meta, "gold_tables")
    if tables:
        return [(f"gold table {i}", parse_table(t)) for i, t in enumerate(tables)]
    gold = record_value(record, "gold") or ""
    if not gold.strip():
        raise TableError("no gold to verify against")
    kind = meta_value(meta, "gold_kind") or ("sql" if re.match(r"^\s*(select|with)\b", gold, re.I) else "table")
    if kind == "sql":
        url = (db_urls or {}).get(str(meta.get("db_id") or ""))
        if url:
            return [("gold SQL result", run_readonly_sql_url(url, gold, timeout=timeout))]
        return [("gold SQL result", run_readonly_sql(find_database(meta, db_root), gold, timeout=timeout))]
    return [("gold table", parse_table(gold))]


def verify_sql(
    record: Any,
    answer: str,
    *,
    db_root: str | Path | None = None,
    db_urls: dict[str, str] | None = None,
    timeout: float = 30.0,
    ignore_order: bool | None = None,
    ignore_column_order: bool = True,
    condition_cols: list[int] | None = None,
    rel_tol: float | None = None,
    abs_tol: float | None = None,
    **_: Any,
) -> Verdict:
    meta = record_meta(record)
    text = extract_table_text(answer)
    if _SQL_START.match(text):
        return Verdict(False, 0.0, "the answer is SQL, not a result table (SQL from answers is never executed)")
    try:
        table = parse_table(text)
    except TableError as err:
        return Verdict(False, 0.0, f"answer is not a table: {err}")
    try:
        golds = _gold_tables(record, meta, db_root, timeout, db_urls)
    except (TableError, OSError, json.JSONDecodeError) as err:
        return Verdict(False, 0.0, f"gold unavailable: {err}")
    options = {
        "ignore_order": meta_value(meta, "ignore_order", True) if ignore_order is None else ignore_order,
        "ignore_column_order": ignore_column_order,
        "condition_cols": meta_value(meta, "condition_cols") if condition_cols is None else condition_cols,
        "rel_tol": meta_value(meta, "rel_tol", REL_TOL) if rel_tol is None else rel_tol,
        "abs_tol": meta_value(meta, "abs_tol", ABS_TOL) if abs_tol is None else abs_tol,
    }
    failures = []
    for label, gold in golds:
        verdict = compare_tables(table, gold, **options)
        if verdict.ok:
            return Verdict(True, 1.0, f"{label}: {verdict.why}")
        failures.append(f"{label}: {verdict.why}")
    return Verdict(False, 0.0, "; ".join(failures))
