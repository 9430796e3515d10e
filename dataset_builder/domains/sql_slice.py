"""SQL evidence at real database sizes: each table cut to the rows the queries read (their lineage), plus a sample.

Real databases hold tables of 10^4-10^6 rows; most questions filter them. A table whose complete dump cannot fit a
context becomes a *slice*: the schema, every row that the trajectory's queries read, and (at assembly, up to the
budget) a seeded sample of its other rows as in-table distractors, all in the table's rowid order:

    CREATE TABLE [Track] (...)
    -- rows 412 of 3,503 (a slice: every row the question's queries read, and a sample of the others); columns ...
    TrackId | Name | ...

Lineage (`trace_lineage`): every statement of the trajectory (agent steps, final answer, gold SQL) that is one
SELECT / WITH query is checked with the SQL verifier's `check_gold_sql` and run read-only on the sqlite database
(`mode=ro`, `PRAGMA query_only`, the verifier's deadline per statement by progress handler, its row cap). Then each
SELECT scope of it (CTEs, subqueries, set-operation branches) is rewritten by sqlglot into
`SELECT DISTINCT alias.rowid, ... FROM <its FROM and JOINs> WHERE <its WHERE>` (GROUP BY, HAVING, ORDER BY, LIMIT
dropped: a superset of what the answer needs), checked the same way, and run: the rowids are the rows it reads. A scope
that cannot be traced this way is read whole: an outer join (rows without a partner matter), a correlated subquery
(it fails on its own), a view or a table without rowid, a query past its deadline or over the row cap. Nothing that is
not a checked read-only SELECT is ever run; DDL/DML in a trajectory is parsed, never executed.

A table every row of which is read (an unfiltered aggregate such as `AVG(Milliseconds)` over `Track`) stays whole,
and `meta["needs_every_row"]` says which query needs it, so that a record too large for any budget is rejected with
that reason. When none of the queries ran (all failed, or none is a SELECT), nothing is known about which rows matter
and every table stays whole, as before.

Check (`check_slices`): the answer-defining queries (gold SQL, the final answer when it is SQL, the agent's last query
that ran) are run again on the sliced tables loaded into an in-memory sqlite database, once with the lineage rows only
and once with every sampled row added; a query whose result differs there reads its tables whole.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dataset_builder.schema import Piece

LINEAGE_TIMEOUT_S = 30.0  # per statement, as the SQL verifier's default deadline
SLICE_EXTRA_CHARS = 256_000  # sampled other rows kept per trajectory (~64k tokens, past the sql budgets' 32k)
ROWID_CHUNK = 500
SLICE_NOTE = "a slice: every row the question's queries read, and a sample of the others"


@dataclass
class TableSlice:
    """A table cut to the rows the queries read; `extra` are other rows in a seeded order (in-table distractors)."""

    name: str
    create: str
    header: str
    total: int
    rows: list[tuple[int, str]]  # (rowid, rendered line): the lineage
    extra: list[tuple[int, str]] = field(default_factory=list)
    extra_tokens: list[int] | None = None  # filled by `grow_slices` once per slice

    def render(self, n_extra: int = 0) -> str:
        lines = sorted(self.rows + self.extra[:n_extra])
        shown = len(lines)
        if shown == self.total:
            count = f"-- {shown} row{'s' if shown != 1 else ''}"
        else:
            count = f"-- rows {shown:,} of {self.total:,} ({SLICE_NOTE})"
        from dataset_builder.domains.sql import ROW_NOTE

        body = "\n".join([self.header] + [line for _, line in lines])
        return f"{self.create.strip()}\n{count}; {ROW_NOTE}\n{body}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (for evidence written between pipeline stages)."""
        return {
            "name": self.name,
            "create": self.create,
            "header": self.header,
            "total": self.total,
            "rows": self.rows,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableSlice:
        return cls(
            d["name"],
            d["create"],
            d["header"],
            d["total"],
            [tuple(r) for r in d["rows"]],
            [tuple(r) for r in d.get("extra", [])],
        )


@dataclass
class Lineage:
    rows: dict[str, set[int] | None] = field(default_factory=dict)  # table -> rowids read; None: read whole
    whole_why: dict[str, str] = field(default_factory=dict)  # table -> why every row is needed
    notes: list[str] = field(default_factory=list)
    ran: list[tuple[str, str, list[tuple]]] = field(default_factory=list)  # (where, sqlite SQL, rows) that ran

    def read(self, table: str, rowids: set[int]) -> None:
        if self.rows.get(table, set()) is not None:
            self.rows[table] = self.rows.get(table, set()) | rowids

    def whole(self, table: str, why: str) -> None:
        self.rows[table] = None
        self.whole_why.setdefault(table, why)


# ---------------------------------------------------------------- running checked SELECTs


def run_select(conn: sqlite3.Connection, sql: str, timeout: float = LINEAGE_TIMEOUT_S) -> list[tuple]:
    """One checked SELECT on a read-only connection, with the verifier's deadline and row cap. Raises TableError."""
    from dataset_builder.verify.sql import MAX_ROWS, TableError, check_gold_sql

    check_gold_sql(sql)
    deadline = time.monotonic() + timeout
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = conn.execute(sql).fetchmany(MAX_ROWS + 1)
    except sqlite3.Error as err:
        if time.monotonic() > deadline:
            raise TableError(f"ran past its {timeout:g}s deadline") from err
        raise TableError(f"{type(err).__name__}: {str(err)[:200]}") from err
    finally:
        conn.set_progress_handler(None, 0)
    if len(rows) > MAX_ROWS:
        raise TableError(f"returned over {MAX_ROWS:,} rows")
    return rows


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- lineage


def trace_lineage(
    conn: sqlite3.Connection, statements: list[tuple[str, str]], dialect: str | None, tables: dict[str, str]
) -> Lineage:
    """Rows of `tables` (lower-cased name -> catalog name) that the statements read; see the module docstring."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    from dataset_builder.verify.sql import TableError

    out = Lineage()
    totals: dict[str, int] = {}
    for where, sql in statements:
        try:
            trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
        except Exception:  # noted by tables_in_sql already
            continue
        if len(trees) != 1 or not isinstance(trees[0], exp.Query):
            out.notes.append(f"{where}: not a single SELECT, not run (it reads no rows)")
            continue
        tree = trees[0]
        text = tree.sql(dialect="sqlite")
        try:
            result = run_select(conn, text)
        except TableError as err:
            if "deadline" in str(err) or "over" in str(err):
                for name in _base_tables(tree, tables):
                    out.whole(name, f"{where} {err}")
                out.ran.append((where, text, []))
            else:
                out.notes.append(f"{where}: failed on the database ({err}): it read no rows")
            continue
        out.ran.append((where, text, result))
        for scope in traverse_scope(tree):
            select = scope.expression
            if not isinstance(select, exp.Select):
                continue
            base = [
                (alias, tables[src.name.lower()])
                for alias, (_, src) in scope.selected_sources.items()
                if isinstance(src, exp.Table) and src.name.lower() in tables and not src.args.get("db")
            ]
            if not base:
                continue
            if any(j.side for j in select.args.get("joins") or []):
                for _, name in base:
                    out.whole(name, f"{where} reads {name} through an outer join")
                continue
            query = select.copy()
            for key in ("group", "having", "order", "limit", "offset", "qualify", "windows"):
                query.set(key, None)
            query.set(
                "expressions",
                [
                    exp.alias_(
                        exp.Column(this=exp.to_identifier("rowid"), table=exp.to_identifier(a, quoted=True)), f"r{k}"
                    )
                    for k, (a, _) in enumerate(base)
                ],
            )
            query.set("distinct", exp.Distinct())
            if query.args.get("with") is None and tree.args.get("with") is not None:
                query.set("with", tree.args["with"].copy())
            try:
                rows = run_select(conn, query.sql(dialect="sqlite"))
            except TableError as err:
                for _, name in base:
                    out.whole(name, f"{where}: the rows it reads from {name} cannot be traced ({err})")
                continue
            aggregate = next(select.find_all(exp.AggFunc), None)
            for k, (_, name) in enumerate(base):
                ids = {r[k] for r in rows if r[k] is not None}
                out.read(name, ids)
                if name not in totals:
                    totals[name] = count_rows(conn, name)
                if len(ids) == totals[name] and aggregate is not None:
                    out.whole_why.setdefault(
                        name, f"{where} reads them all ({aggregate.sql()}, an unfiltered aggregate)"
                    )
                elif len(ids) == totals[name]:
                    out.whole_why.setdefault(name, f"{where} reads them all (no filter)")
    return out


def _base_tables(tree, tables: dict[str, str]) -> list[str]:
    from sqlglot import exp

    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    names = [t.name.lower() for t in tree.find_all(exp.Table)]
    return list(dict.fromkeys(tables[n] for n in names if n in tables and n not in ctes))


# ---------------------------------------------------------------- reading rows


def count_rows(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {_quote(table)}").fetchone()[0]


def rows_by_rowid(conn: sqlite3.Connection, table: str, rowids: list[int]) -> Iterator[tuple]:
    """(rowid, *values) for the given rowids, in rowid order (statements built from the catalog name only)."""
    ordered = sorted(rowids)
    for start in range(0, len(ordered), ROWID_CHUNK):
        chunk = ordered[start : start + ROWID_CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT rowid, * FROM {_quote(table)} WHERE rowid IN ({marks}) ORDER BY rowid"
        yield from conn.execute(sql, chunk)


def build_slice(
    conn: sqlite3.Connection, table: str, create: str, rowids: set[int], seed: str, extra_chars: int
) -> TableSlice:
    """The slice of `table`: its lineage rows rendered, and other rows in a seeded order up to `extra_chars`."""
    from dataset_builder.domains.sql import render_value

    columns = [d[0] for d in conn.execute(f"SELECT * FROM {_quote(table)} LIMIT 0").description]
    total = count_rows(conn, table)

    def lines(ids: list[int]) -> Iterator[tuple[int, str]]:
        for row in rows_by_rowid(conn, table, ids):
            yield row[0], " | ".join(render_value(v) for v in row[1:])

    rows = list(lines(list(rowids)))
    others = [r for (r,) in conn.execute(f"SELECT rowid FROM {_quote(table)}") if r not in rowids]
    random.Random(seed).shuffle(others)
    extra: list[tuple[int, str]] = []
    size = 0
    for start in range(0, len(others), ROWID_CHUNK):
        chunk = others[start : start + ROWID_CHUNK]
        rendered = dict(lines(chunk))
        for rowid in chunk:  # keep the seeded order
            extra.append((rowid, rendered[rowid]))
            size += len(rendered[rowid]) + 1
            if size > extra_chars:
                return TableSlice(table, create, " | ".join(columns), total, rows, extra)
    return TableSlice(table, create, " | ".join(columns), total, rows, extra)


# ---------------------------------------------------------------- checking a slice


def check_slices(
    conn: sqlite3.Connection, slices: dict[str, TableSlice], whole: dict[str, str], ran: list[tuple[str, str, list]]
) -> list[str]:
    """The `where`s of answer-defining queries whose result on the sliced tables differs from the full database.

    `whole` maps tables kept whole to their CREATE statement; the in-memory copy holds them completely."""
    from dataset_builder.verify.sql import Table, TableError, cell, compare_tables

    if not slices:
        return []
    checked = [r for r in ran if r[0] in ("gold", "final answer")]
    steps = [r for r in ran if r[0].startswith("step")]
    if steps:
        checked.append(steps[-1])
    bad: list[str] = []
    for with_extra in (False, True):
        mem = sqlite3.connect(":memory:")
        try:
            for name, create in whole.items():
                mem.execute(create)
                columns = [d[0] for d in conn.execute(f"SELECT * FROM {_quote(name)} LIMIT 0").description]
                marks = ",".join("?" * (len(columns) + 1))
                cols = ",".join(["rowid"] + [_quote(c) for c in columns])
                batch = conn.execute(f"SELECT rowid, * FROM {_quote(name)}")
                mem.executemany(f"INSERT INTO {_quote(name)} ({cols}) VALUES ({marks})", batch)
            for s in slices.values():
                mem.execute(s.create)
                columns = [d[0] for d in conn.execute(f"SELECT * FROM {_quote(s.name)} LIMIT 0").description]
                ids = [r for r, _ in s.rows] + ([r for r, _ in s.extra] if with_extra else [])
                marks = ",".join("?" * (len(columns) + 1))
                cols = ",".join(["rowid"] + [_quote(c) for c in columns])
                mem.executemany(
                    f"INSERT INTO {_quote(s.name)} ({cols}) VALUES ({marks})", rows_by_rowid(conn, s.name, ids)
                )
        except sqlite3.Error as err:
            mem.close()
            return [f"the sliced tables cannot be loaded for the check ({err})"]
        try:
            for where, sql, full in checked:
                if where in bad:
                    continue
                try:
                    got = run_select(mem, sql)
                except TableError:
                    bad.append(where)
                    continue
                norm = lambda rows: [tuple(cell(v) for v in r) for r in rows]  # noqa: E731
                if not compare_tables(Table(norm(got)), Table(norm(full)), ignore_column_order=False).ok:
                    bad.append(where)
        finally:
            mem.close()
    return bad


# ---------------------------------------------------------------- at assembly: growing slices up to the budget


def grow_slices(
    slices: dict[str, TableSlice], grown: dict[str, int], room: int, count_batch: Callable[[list[str]], list[int]]
) -> dict[str, int]:
    """More sampled rows per slice (`grown`: table -> rows added so far), about `room` tokens more in all.

    Rows are added one per slice in turn (each slice's sample in its seeded order), each costing its line's tokens
    plus one for the newline, until the next row of every slice is over the room left."""
    counts = dict(grown)
    for s in slices.values():
        if s.extra_tokens is None:
            s.extra_tokens = []
            for start in range(0, len(s.extra), 256):
                s.extra_tokens += count_batch([line for _, line in s.extra[start : start + 256]])
    left = room
    active = [s for s in slices.values() if counts.get(s.name, 0) < len(s.extra)]
    while active and left > 0:
        still = []
        for s in active:
            k = counts.get(s.name, 0)
            cost = s.extra_tokens[k] + 1
            if k < len(s.extra) and cost <= left:
                counts[s.name] = k + 1
                left -= cost
                if k + 1 < len(s.extra):
                    still.append(s)
        active = still
    return counts


def slice_pieces(gold: list[Piece], slices: dict[str, TableSlice], grown: dict[str, int]) -> list[Piece]:
    """The gold pieces with each slice rendered with its grown rows (other pieces unchanged)."""
    out = []
    for p in gold:
        s = slices.get(p.title)
        out.append(p if s is None or p.kind != "table" else Piece(p.kind, p.title, s.render(grown.get(p.title, 0))))
    return out


_ROW_VALUE = re.compile(r"NULL|TRUE|FALSE|X'[0-9A-F]*'|'(?:[^']|'')*'|[^ |][^|]*?(?= \| |$)")


def parse_rendered_table(text: str) -> tuple[str, list[str], list[tuple]]:
    """(CREATE statement, column names, rows as Python values) of a rendered table or slice piece."""
    lines = text.split("\n")
    k = next(i for i, line in enumerate(lines) if line.startswith("-- ") and " row" in line)
    create = "\n".join(lines[:k])
    columns = lines[k + 1].split(" | ")
    rows = [tuple(_parse_value(v) for v in _split_row(line)) for line in lines[k + 2 :]]
    return create, columns, rows


def _split_row(line: str) -> list[str]:
    values, pos = [], 0
    while pos <= len(line):
        m = _ROW_VALUE.match(line, pos)
        if m is None:
            raise ValueError(f"cannot read row {line[:80]!r} at {pos}")
        values.append(m.group())
        pos = m.end() + 3  # " | "
    return values


def _parse_value(text: str) -> Any:
    if text == "NULL":
        return None
    if text in ("TRUE", "FALSE"):
        return text == "TRUE"
    if text.startswith("X'"):
        return bytes.fromhex(text[2:-1])
    if text.startswith("'"):
        body = text[1:-1].replace("''", "'")
        escapes = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
        return re.sub(
            r"\\(x[0-9a-f]{2}|.)",
            lambda m: (
                chr(int(m.group(1)[1:], 16)) if m.group(1).startswith("x") else escapes.get(m.group(1), m.group())
            ),
            body,
        )
    try:
        return int(text)
    except ValueError:
        return float(text)
