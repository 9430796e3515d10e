"""SQL evidence: every table the agent's SQL touched, complete (schema + all rows), from the database read-only.

Which tables: the SQL of every step that carries it (`Step.args["sql"]`), the final answer when it is a query, and the
gold SQL (`meta["gold_kind"] == "sql"`), parsed with sqlglot in the engine's dialect (`meta["engine"]`); plus the
`table_names` the agent asked `sql_db_schema` for. CTE names are not tables. SQL from a trajectory is parsed, never
executed; a statement that does not parse is noted in meta (fatal only when no table is found at all).

Which database (`meta["db_id"]`, else the name of `meta["db_path"]`, else the only database given), in order:
1. `opts.db_urls[db_id]`: a SQLAlchemy URL (any engine; sqlite URLs are rewritten to open the file read-only);
2. a file in `opts.db_dir` (searched 3 levels deep) whose name matches db_id case-insensitively, ignoring the
   extension (.sqlite/.sqlite3/.db/.db3) and a `_sqlite` suffix: `Chinook` -> `Chinook_Sqlite.sqlite` or
   `chinook.db`; BIRD/Spider `<db_id>/<db_id>.sqlite` layouts work when db_dir is their parent. A path written in the
   trajectory is matched by its file name inside db_dir, never opened as given.

The only statements run are `SELECT *` reads built from the database's own catalog (names come from
sqlite_master or SQLAlchemy's inspector, never from the trajectory), on a connection opened read-only
(sqlite `mode=ro` + `PRAGMA query_only`; SQLAlchemy connections are rolled back).

Table rendering (one `table` piece per table, title = table name):

    CREATE TABLE "Genre" (...)
    -- 25 rows; columns separated by " | "; NULL is SQL NULL; text is in single quotes ('' is a quote, \\n \\t \\\\ escapes)
    GenreId | Name
    1 | 'Rock'

Integers as digits, floats as Python repr (round-trip exact), blobs as X'hex', dates as quoted ISO text.

The record's answer is the result table the agent saw (`sql_answer.record_answer`): a markdown table in its final
message, else the rows its last query returned; meta["answer_from"] says which when it is not the final message.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dataset_builder.domains import CompileError, DomainOptions, Evidence
from dataset_builder.domains.sql_answer import record_answer
from dataset_builder.domains.sql_slice import (
    SLICE_EXTRA_CHARS,
    TableSlice,
    build_slice,
    check_slices,
    count_rows,
    trace_lineage,
)
from dataset_builder.schema import Piece, Trajectory

MAX_TABLE_CHARS = 2_000_000  # ~500k tokens: a table dump over this cannot fit any budget (max 128k)
DB_SUFFIXES = (".sqlite", ".sqlite3", ".db", ".db3")
SEARCH_DEPTH = 3
ENGINE_DIALECTS = {
    "sqlite3": "sqlite",
    "postgresql": "postgres",
    "pg": "postgres",
    "mssql": "tsql",
    "sqlserver": "tsql",
}
ROW_NOTE = (
    "columns separated by \" | \"; NULL is SQL NULL; text is in single quotes ('' is a quote, \\n \\t \\\\ escapes)"
)


def extract(traj: Trajectory, opts: DomainOptions) -> Evidence:
    db_id = str(traj.meta.get("db_id") or "").strip()
    if not db_id and traj.meta.get("db_path"):
        db_id = _strip_suffix(Path(str(traj.meta["db_path"])).name)
    guessed = False
    if not db_id:
        db_id, guessed = _only_database(opts), True
    if not db_id:
        raise CompileError(
            "no database id in the trajectory (meta db_id / db_path), and not exactly one database given"
        )
    dialect = sql_dialect(traj.meta.get("engine"))
    statements = sql_statements(traj)
    referenced, parsed, unparsed = tables_in_sql(statements, dialect)
    for name in schema_requests(traj):
        if name.lower() not in {r.lower() for r in referenced}:
            referenced.append(name)
    if not referenced:
        detail = f"; {len(unparsed)} statement(s) did not parse: {unparsed[0]['error']}" if unparsed else ""
        raise CompileError(f"no table found in the trajectory's SQL ({len(statements)} statement(s){detail})")

    db = open_database(db_id, opts)
    try:
        by_lower = {name.lower(): name for name in db.table_names()}
        tables = list(dict.fromkeys(by_lower[r.lower()] for r in referenced if r.lower() in by_lower))
        missing = [r for r in referenced if r.lower() not in by_lower]
        if not tables:
            raise CompileError(
                f"none of the tables the SQL touches ({', '.join(referenced)}) is in database {db_id!r} ({db.where})"
            )
        slices, needs_every_row, slice_meta = _slices(db, tables, statements, dialect, traj.id)
        gold = []
        for name in tables:
            if name in slices:
                gold.append(Piece(kind="table", title=name, text=slices[name].render()))
                continue
            text, why = _dump(db, name)
            if text is None:
                because = f" ({needs_every_row})" if needs_every_row else ""
                raise CompileError(f"table {name!r} of {db_id!r}: {why}{because}")
            gold.append(Piece(kind="table", title=name, text=text))
        distractors, skipped = [], []
        for name in by_lower.values():
            if name in tables:
                continue
            text, why = _dump(db, name)
            if text is None:
                skipped.append(f"{name}: {why}")
            else:
                distractors.append(Piece(kind="table", title=name, text=text, is_distractor=True))
    finally:
        db.close()
    meta: dict[str, Any] = {"db_id": db_id, "database": db.where, "tables": tables, "sql": parsed, **slice_meta}
    if needs_every_row:
        meta["needs_every_row"] = needs_every_row
    if missing:
        meta["missing_tables"] = missing
    if unparsed:
        meta["unparsed_sql"] = unparsed
    if guessed:
        meta["db_id_guessed"] = "the trajectory names no database: the only one given was used"
    if skipped:
        meta["skipped_distractor_tables"] = skipped
    answer, answer_from = record_answer(traj, dialect)
    if answer_from != "final message":
        meta["answer_from"] = answer_from
    return SqlEvidence(
        gold=gold, distractors=distractors, answer=answer, gold_answer=traj.gold, meta=meta, slices=slices
    )


@dataclass
class SqlEvidence(Evidence):
    """SQL evidence; `slices` are the gold tables cut to the rows the queries read (grown at assembly)."""

    slices: dict[str, TableSlice] = field(default_factory=dict)


def _slices(
    db: SqliteDatabase | AlchemyDatabase, tables: list[str], statements: list[tuple[str, str]], dialect, traj_id: str
) -> tuple[dict[str, TableSlice], str, dict[str, Any]]:
    """(slices of the gold tables that need not be whole, why the others need every row, meta)."""
    if not isinstance(db, SqliteDatabase):
        return {}, "", {"slices_note": "tables are whole: slices need a sqlite database (--db-dir)"}
    lineage = trace_lineage(db.conn, statements, dialect, {name.lower(): name for name in tables})
    meta: dict[str, Any] = {"lineage_notes": lineage.notes} if lineage.notes else {}
    if not lineage.ran:
        meta["slices_note"] = "tables are whole: none of the queries ran, so which rows matter is unknown"
        return {}, "", meta
    totals = {name: count_rows(db.conn, name) for name in tables}
    wanted = {n: ids for n in tables if (ids := lineage.rows.get(n, set())) is not None and len(ids) < totals[n]}
    slices: dict[str, TableSlice] = {}
    creates = dict(db._catalog)
    for name, ids in wanted.items():
        try:
            seed = f"{db.where}|{name}|{traj_id}"
            slices[name] = build_slice(db.conn, name, creates[name], ids, seed, SLICE_EXTRA_CHARS // len(wanted))
        except sqlite3.Error as err:  # a view, a table without rowid
            lineage.notes.append(f"{name}: kept whole, cannot be sliced ({type(err).__name__}: {err})")
    whole = {n: creates[n] for n in tables if n not in slices and creates.get(n)}
    failed = check_slices(db.conn, slices, whole, lineage.ran)
    if failed:  # a query answers differently on the slices: every table stays whole
        meta["slice_check_failed"] = failed
        slices = {}
    if slices:
        meta["slices"] = {n: {"rows": len(s.rows), "of": s.total, "sampled": len(s.extra)} for n, s in slices.items()}
    needs = sorted((n for n in tables if n not in slices and n in lineage.whole_why), key=lambda n: -totals[n])
    why = ""
    if needs:  # the largest such table is what makes a context too long
        why = f"the answer needs every row of {needs[0]} ({totals[needs[0]]:,} rows): {lineage.whole_why[needs[0]]}"
        why += f" (and every row of {', '.join(needs[1:])})" if needs[1:] else ""
    return slices, why, meta


def _dump(db: SqliteDatabase | AlchemyDatabase, name: str) -> tuple[str | None, str]:
    try:
        text = db.dump(name)
    except Exception as err:  # sqlite3 / SQLAlchemy errors on one table (corrupt page, unsupported type): its reason
        return None, f"cannot be read: {type(err).__name__}: {str(err)[:200]}"
    if text is None:
        return None, f"over {MAX_TABLE_CHARS:,} characters: larger than any context budget"
    return text, ""


# ---------------------------------------------------------------- which tables


def sql_dialect(engine: Any) -> str | None:
    import sqlglot

    name = str(engine or "").strip().lower()
    name = ENGINE_DIALECTS.get(name, name)
    return name if name in sqlglot.Dialect.classes else None


def sql_statements(traj: Trajectory) -> list[tuple[str, str]]:
    """(where, sql) for every SQL text of the trajectory: steps, then the final answer and gold when they are SQL."""
    out = [(f"step {i}", s.args["sql"]) for i, s in enumerate(traj.steps) if isinstance(s.args.get("sql"), str)]
    if _looks_like_query(traj.final_answer):
        out.append(("final answer", traj.final_answer))
    if traj.gold and (traj.meta.get("gold_kind") == "sql" or _looks_like_query(traj.gold)):
        out.append(("gold", traj.gold))
    return [(where, sql) for where, sql in out if sql.strip()]


def _looks_like_query(text: str) -> bool:
    return bool(re.match(r"\s*(select|with)\b", text or "", re.IGNORECASE))


def schema_requests(traj: Trajectory) -> list[str]:
    """Tables named in `sql_db_schema(table_names="A, B")` calls (LangChain's SQL toolkit)."""
    names: list[str] = []
    for step in traj.steps:
        value = step.args.get("table_names")
        if value is None:
            continue
        items = value if isinstance(value, list) else str(value).split(",")
        names += [str(n).strip().strip("\"'`[]") for n in items if str(n).strip()]
    return list(dict.fromkeys(names))


def tables_in_sql(statements: list[tuple[str, str]], dialect: str | None) -> tuple[list[str], list[dict], list[dict]]:
    """Table names referenced (in first-seen order), the parsed statements, and the ones that did not parse."""
    import sqlglot
    from sqlglot import exp

    tables: list[str] = []
    parsed: list[dict] = []
    unparsed: list[dict] = []
    for where, sql in statements:
        try:
            trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
        except Exception as err:  # sqlglot raises ParseError / TokenError; any failure is a note, not a crash
            unparsed.append({"from": where, "sql": sql, "error": f"{type(err).__name__}: {str(err)[:300]}"})
            continue
        found: list[str] = []
        for tree in trees:
            ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
            for table in sorted(tree.find_all(exp.Table), key=_position):  # in the order the SQL names them
                name = table.name
                if not name or (name.lower() in ctes and not table.args.get("db")):
                    continue
                found.append(name)
        parsed.append({"from": where, "sql": sql, "tables": list(dict.fromkeys(found))})
        for name in found:
            if name.lower() not in {t.lower() for t in tables}:
                tables.append(name)
    return tables, parsed, unparsed


def _position(table) -> int:
    meta = getattr(table.this, "meta", None) or {}
    return int(meta.get("start", 1 << 30))


# ---------------------------------------------------------------- which database


def open_database(db_id: str, opts: DomainOptions) -> SqliteDatabase | AlchemyDatabase:
    urls = {k.lower(): v for k, v in (opts.db_urls or {}).items()}
    url = (opts.db_urls or {}).get(db_id) or urls.get(db_id.lower())
    if url:
        return AlchemyDatabase(url)
    if opts.db_dir is None:
        raise CompileError(f"database {db_id!r}: no --db-dir or --db-url given")
    db_dir = Path(opts.db_dir)
    path = find_database_file(db_id, db_dir)
    if path is None:
        looked = f"{db_id}.sqlite, {db_id}.db, {db_id}_sqlite.sqlite, {db_id}/{db_id}.sqlite"
        raise CompileError(
            f"database {db_id!r} not found in --db-dir {opts.db_dir} (looked for {looked} and other "
            f"{'/'.join(DB_SUFFIXES)} names, case-insensitively, {SEARCH_DEPTH} levels deep)"
        )
    return SqliteDatabase(path, where=path.relative_to(db_dir.resolve()).as_posix())


def _only_database(opts: DomainOptions) -> str:
    """The id of the single database given (one --db-url, or one file in --db-dir), else ""."""
    if opts.db_urls:
        return next(iter(opts.db_urls)) if len(opts.db_urls) == 1 else ""
    if opts.db_dir is None or not Path(opts.db_dir).is_dir():
        return ""
    files = [p for paths in _database_index(str(Path(opts.db_dir).resolve())).values() for p in paths]
    return _strip_suffix(files[0].name) if len(files) == 1 else ""


def _strip_suffix(name: str) -> str:
    low = name.lower()
    for suffix in DB_SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _db_key(name: str) -> str:
    key = _strip_suffix(name).lower().replace("-", "_")
    return re.sub(r"[_. ]sqlite3?$", "", key)


def find_database_file(db_id: str, db_dir: Path) -> Path | None:
    want = _db_key(db_id)
    matches = _database_index(str(db_dir.resolve())).get(want, [])
    if not matches:
        return None

    def rank(path: Path) -> tuple:
        exact = _strip_suffix(path.name).lower() == db_id.lower()
        in_own_dir = _db_key(path.parent.name) == want
        return (not exact, not in_own_dir, len(path.parts), str(path))

    return sorted(matches, key=rank)[0]


@lru_cache(maxsize=16)
def _database_index(root: str) -> dict[str, list[Path]]:
    """Database files under root (bounded depth), by matching key. Cached: one walk per --db-dir per process."""
    index: dict[str, list[Path]] = {}
    base_depth = root.rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath.count(os.sep) - base_depth >= SEARCH_DEPTH - 1:
            dirnames[:] = []
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(DB_SUFFIXES):
                index.setdefault(_db_key(name), []).append(Path(dirpath) / name)
    return index


# ---------------------------------------------------------------- reading tables

_DUMPS: OrderedDict[tuple, str | None] = OrderedDict()  # (database key, table) -> dump; many trajectories share a DB
_DUMPS_MAX_CHARS = 256_000_000


def _cached_dump(key: tuple, make) -> str | None:
    if key in _DUMPS:
        _DUMPS.move_to_end(key)
        return _DUMPS[key]
    text = make()
    _DUMPS[key] = text
    while sum(len(t or "") for t in _DUMPS.values()) > _DUMPS_MAX_CHARS and len(_DUMPS) > 1:
        _DUMPS.popitem(last=False)
    return text


def render_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex().upper() + "'"
    if isinstance(value, (datetime, date, time)):
        value = value.isoformat()
    text = (
        str(value)
        .replace("\\", "\\\\")
        .replace("'", "''")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)
    return f"'{text}'"


def render_table(create: str, columns: list[str], rows: Iterator[tuple]) -> str | None:
    """The table as text, or None when it grows over MAX_TABLE_CHARS (rows are streamed, never all in memory)."""
    lines = [" | ".join(columns)]
    size = len(create) + len(lines[0])
    for row in rows:
        line = " | ".join(render_value(v) for v in row)
        size += len(line) + 1
        if size > MAX_TABLE_CHARS:
            return None
        lines.append(line)
    n = len(lines) - 1
    return f"{create.strip()}\n-- {n} row{'s' if n != 1 else ''}; {ROW_NOTE}\n" + "\n".join(lines)


class SqliteDatabase:
    """A sqlite file opened read-only (URI mode=ro + PRAGMA query_only)."""

    def __init__(self, path: Path, where: str = ""):
        self.path = path.resolve()
        self.where = where or str(path)  # what meta shows: the path relative to --db-dir (stable across machines)
        stat = self.path.stat()
        self._key = (str(self.path), stat.st_size, stat.st_mtime_ns)
        try:
            self.conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True)
            self.conn.text_factory = lambda b: b.decode("utf-8", errors="replace")
            self.conn.execute("PRAGMA query_only = ON")
            self._catalog = self.conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            ).fetchall()
        except sqlite3.DatabaseError as err:
            raise CompileError(f"cannot open {path} as a sqlite database read-only: {err}") from err

    def table_names(self) -> list[str]:
        return [name for name, _ in self._catalog]

    def dump(self, name: str) -> str | None:
        create = dict(self._catalog)[name] or f"-- {name} (no CREATE statement stored)"

        def make() -> str | None:
            cursor = self.conn.execute('SELECT * FROM "' + name.replace('"', '""') + '"')
            columns = [d[0] for d in cursor.description]
            return render_table(create, columns, _rows(cursor))

        return _cached_dump((self._key, name), make)

    def close(self) -> None:
        self.conn.close()


def _rows(cursor) -> Iterator[tuple]:
    while batch := cursor.fetchmany(1000):
        yield from batch


def _read_only_url(url: str):
    """SQLAlchemy URL object; a sqlite file URL becomes `sqlite:///file:<path>?mode=ro&uri=true`."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
    ):
        path = Path(database).resolve()
        if not path.is_file():
            raise CompileError(f"sqlite database {database} of the --db-url does not exist")
        return parsed.set(database=f"file:{path}", query={**parsed.query, "mode": "ro", "uri": "true"})
    return parsed


class AlchemyDatabase:
    """Any engine SQLAlchemy supports, through its inspector; reads are SELECT * built from reflected tables."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.exc import SQLAlchemyError

        try:
            parsed = _read_only_url(url)
            self.where = parsed.render_as_string(hide_password=True)
            self.engine = create_engine(parsed)
            self.inspector = inspect(self.engine)
            self._names = self.inspector.get_table_names() + self.inspector.get_view_names()
        except (SQLAlchemyError, ImportError, ValueError) as err:
            raise CompileError(f"cannot open database {_hide_password(url)}: {type(err).__name__}: {err}") from err

    def table_names(self) -> list[str]:
        return list(self._names)

    def dump(self, name: str) -> str | None:
        from sqlalchemy import MetaData, Table, select
        from sqlalchemy.schema import CreateTable

        def make() -> str | None:
            table = Table(name, MetaData(), autoload_with=self.engine)
            create = str(CreateTable(table).compile(dialect=self.engine.dialect)).strip()
            query = select(table)
            key_columns = list(table.primary_key.columns)
            if key_columns:
                query = query.order_by(*key_columns)
            with self.engine.connect() as conn:
                try:
                    result = conn.execute(query)
                    return render_table(create, list(result.keys()), (tuple(r) for r in result))
                finally:
                    conn.rollback()

        return _cached_dump((self.where, name), make)

    def close(self) -> None:
        self.engine.dispose()


def _hide_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
