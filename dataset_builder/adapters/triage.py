"""File triage: which input files are recognisably not trajectories (databases, bundles, tables, patches, predictions,
score summaries, licences, code, docs, configs), decided from content and shape before any adapter, with a specific
reason. Only the adapters layer knows file formats; the compile pipeline asks `non_trajectory_reason` first and, when
no adapter recognises a file, `unknown_format_reason`. Both never raise: a file that breaks a parser here (deep
nesting, bad encoding, ...) is simply not classified, and the adapters' reader gives the reject.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

STEP_KEYS = {"history", "messages", "trajectory", "intermediate_steps", "conversation", "steps", "events"}
CODE_SUFFIXES = (".py", ".js", ".ts", ".sh", ".c", ".h", ".cpp", ".go", ".rs", ".java", ".rb", ".sql")
LICENCE_MARKERS = ("permission is hereby granted", "licensed under", "gnu general public license", "copyright (c)")
MAX_SHAPE_CHECK_BYTES = 64 * 2**20


def _head(path: Path, n: int = 65536) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _json_rows(path: Path, head: bytes) -> list[Any] | None:
    """Rows of a JSON/JSONL file (for shape checks), or None when it is neither, too large, or breaks the parser
    in any way (deep nesting raises RecursionError, not JSONDecodeError)."""
    try:
        if path.stat().st_size > MAX_SHAPE_CHECK_BYTES or head.lstrip()[:1] not in (b"{", b"["):
            return None
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            rows = []
            for line in text.splitlines():
                if line.strip():
                    rows.append(json.loads(line))
            return rows
        if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
            return list(data.values()) if all("instance_id" in v for v in data.values()) else [data]
        return data if isinstance(data, list) else [data]
    except (OSError, ValueError, RecursionError, MemoryError):  # ValueError covers JSON and UTF-8 errors
        return None


def _is_numbers_or_ids(value: Any) -> bool:
    if isinstance(value, (int, float, bool)) or value is None:
        return True
    if isinstance(value, str):
        return len(value) < 200
    if isinstance(value, list):
        return all(isinstance(v, (str, int, float)) and len(str(v)) < 200 for v in value)
    if isinstance(value, dict):
        return all(_is_numbers_or_ids(v) for v in value.values())
    return False


def _inside(path: Path, folder: Any) -> bool:
    return folder is not None and path.resolve().is_relative_to(Path(folder).resolve())


def non_trajectory_reason(path: Path, opts: Any = None) -> tuple[str, str] | None:
    """(reason, domain) when the file is recognisably not a trajectory, else None. Decided before any adapter."""
    head = _head(path)
    if head.startswith(b"SQLite format 3\x00"):
        if _inside(path, getattr(opts, "db_dir", None)):
            return "database file, not a trajectory (read through --db-dir)", "sql"
        return "database file: pass its directory with --db-dir", "sql"
    if head.startswith((b"# v2 git bundle\n", b"# v3 git bundle\n")):
        if _inside(path, getattr(opts, "repos_dir", None)):
            return "git bundle, not a trajectory (read through --repos)", "swe"
        return "git bundle (a repository): pass its directory with --repos", "swe"
    if b"\x00" in head or not head.strip():
        return None  # binary or empty: the adapters' reader gives the precise reason
    text = head.decode("utf-8", errors="replace")
    if re.match(r"(diff --git |--- a/|From [0-9a-f]{40} )", text.lstrip()):
        return "patch file: a final diff without the trajectory that produced it", "swe"
    if path.suffix.lower() in (".csv", ".tsv") and _looks_tabular(text):
        return "table file (gold results?) not a trajectory", ""
    rows = _json_rows(path, head)
    if rows and all(isinstance(r, dict) for r in rows) and not any(STEP_KEYS & r.keys() for r in rows):
        if all({"model_patch", "fix_patch"} & r.keys() for r in rows):
            return "SWE-bench predictions (final patches only, no trajectory)", "swe"
        if len(rows) == 1 and _is_numbers_or_ids(rows[0]):
            domain = "swe" if {"resolved_ids", "resolved_instances"} & rows[0].keys() else ""  # SWE-bench harness
            return "benchmark score summary or evaluation report (numbers and ids), not a trajectory", domain
    return None


def _looks_tabular(text: str) -> bool:
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:5]), delimiters=",\t;")
    except csv.Error:
        return False
    rows = lines[:-1] if len(lines) > 2 else lines  # the last line of the head may be cut
    widths = {len(row) for row in csv.reader(rows, dialect)}
    return len(rows) >= 2 and len(widths) == 1 and widths.pop() > 1


def unknown_format_reason(path: Path) -> str | None:
    """A specific reason for a file that no adapter recognised, when its kind is clear; else None."""
    head = _head(path, 4096).decode("utf-8", errors="replace")
    name = path.name.lower()
    if name.startswith(("license", "licence", "copying", "notice")) or (
        path.suffix.lower() in ("", ".md", ".txt") and any(m in head[:1000].lower() for m in LICENCE_MARKERS)
    ):
        return "licence text, not a trajectory"
    if path.suffix.lower() in CODE_SUFFIXES:
        return "source code file, not a trajectory"
    if path.suffix.lower() in (".md", ".rst", ".txt") or name.startswith("readme"):
        return "documentation (README/markdown) with no trajectory an adapter recognises"
    if path.suffix.lower() in (".yaml", ".yml", ".toml", ".ini", ".cfg"):
        return "configuration file (YAML/TOML) that no adapter recognises as a trajectory"
    rows = _json_rows(path, head.encode())
    if rows and all(isinstance(r, dict) for r in rows) and not any(STEP_KEYS & r.keys() for r in rows):
        if all({"instruction", "question", "problem_statement"} & r.keys() for r in rows):
            return "task list (questions without agent steps), not a trajectory"
        return "JSON data without agent steps (no history/messages/trajectory), not a trajectory"
    return None
