"""Helpers shared by the adapters: safe text/JSON reading, size limits, ANSI stripping, Python-repr parsing, and
`read_records`, the loop of the adapters that read a file as a list of JSON records."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 512 * 1024 * 1024  # larger files are rejected outright
MAX_OBSERVATION_CHARS = 2_000_000  # ~500k tokens: no single observation can fit a 128k budget beyond this
HEAD_BYTES = 64 * 1024

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


class TextFileError(ValueError):
    """The file is not something an adapter can read: missing, empty, binary, too large."""


def read_head(path: Path, n: int = HEAD_BYTES) -> str:
    """First bytes of a file as text, for sniffing. Raises TextFileError for missing, empty or binary files."""
    try:
        with open(path, "rb") as f:
            raw = f.read(n)
    except OSError as err:
        raise TextFileError(f"cannot read file: {err.strerror or err}") from err
    if not raw.strip():
        raise TextFileError("empty file")
    if b"\x00" in raw:
        raise TextFileError("binary data (NUL bytes), not a text trajectory")
    return raw.decode("utf-8", errors="replace")


def read_text(path: Path) -> str:
    """Whole file as UTF-8 text, with the same checks as read_head plus a size limit."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise TextFileError(f"cannot read file: {err.strerror or err}") from err
    if size > MAX_FILE_BYTES:
        raise TextFileError(f"file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB limit")
    read_head(path)
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise TextFileError("binary data (NUL bytes), not a text trajectory")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextFileError(f"not UTF-8 text (byte {err.start})") from err


def load_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise TextFileError(f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from err
    except RecursionError as err:
        raise TextFileError("invalid JSON: RecursionError (nested too deeply to parse)") from err


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any | None, str]]:
    """(line number, parsed object or None, error) for each non-blank line; bad lines are reported, not raised."""
    text = read_text(path)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj, error = parse_json_line(line)
        yield lineno, obj, error


def iter_json_records(path: Path) -> Iterator[tuple[str, Any, str]]:
    """(where, object, error) for each record of a JSON or JSONL file; `where` is "", "#<index>" or ":<line>".

    `.jsonl` / `.ndjson` files are read line by line (a bad line is an error for that line only); other files as
    one JSON document (its items if it is a list, else itself), falling back to lines when that fails. A file
    where no line parses either is one error naming the document's position.
    """
    text = read_text(path)
    as_lines = path.suffix.lower() in (".jsonl", ".ndjson")
    lines = _json_lines(text) if as_lines else []
    if not as_lines or not any(not error for _, _, error in lines):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as err:
            lines = lines or _json_lines(text)
            if not any(not error for _, _, error in lines):
                why = (
                    f"line {err.lineno} column {err.colno}: {err.msg}"
                    if isinstance(err, json.JSONDecodeError)
                    else f"{type(err).__name__} (nested too deeply to parse)"
                )
                yield "", None, f"invalid JSON at {why}"
                return
        else:
            yield from ((f"#{i}", item, "") for i, item in enumerate(doc)) if isinstance(doc, list) else [("", doc, "")]
            return
    yield from lines


def _json_lines(text: str) -> list[tuple[str, Any, str]]:
    results = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            obj, error = parse_json_line(line)
            results.append((f":{lineno}", obj, error))
    return results


def parse_json_line(line: str) -> tuple[Any | None, str]:
    """(object, "") or (None, why): a bad line is a reject of that line only, whatever the parser raised."""
    try:
        return json.loads(line), ""
    except json.JSONDecodeError as err:
        return None, f"malformed JSON line: {err.msg} at column {err.colno}"
    except RecursionError:
        return None, "malformed JSON line: RecursionError (nested too deeply to parse)"
    except (ValueError, MemoryError) as err:
        return None, f"malformed JSON line: {type(err).__name__}: {err}"


def read_records(
    path: Path,
    records: Callable[[Path], Iterable[tuple[str, Any, str]]],
    reject: Callable[[str, str], Any],
    problem: Callable[[Any], str],
    build: Callable[[Any, str, str], Any],
) -> Iterator[Any]:
    """The loop of the record-based adapters: every record of `path` becomes `build(record, where, origin)`, or
    `reject(origin, reason)` when it could not be read or `problem(record)` names what is wrong with its shape.

    `records(path)` gives (where, record, error) triples (`iter_json_records`, or an adapter's own reader); a file
    that cannot be read at all (TextFileError, OSError) is one reject for the whole file. origin = path + where.
    """
    try:
        items = list(records(path))
    except (TextFileError, OSError) as err:  # unreadable, empty, binary or too large
        yield reject(str(path), str(err))
        return
    for where, record, error in items:
        origin = f"{path}{where}"
        try:
            reason = error or problem(record)
            item = reject(origin, reason) if reason else build(record, where, origin)
        except Exception as err:  # one record a parser or adapter chokes on is that record's reject, not the file's
            item = reject(origin, f"adapter failed on this record: {type(err).__name__}: {str(err)[:300]}")
        yield item


def needs_list(key: str, what: str) -> Callable[[Any], str]:
    """A `problem` for read_records: the record must be an object with a list under `key`."""

    def problem(record: Any) -> str:
        return "" if isinstance(record, dict) and isinstance(record.get(key), list) else f"not {what} (no {key} list)"

    return problem


def inside_task_tags(text: str) -> str:
    """The issue inside `<issue_description>` / `<pr_description>` (SWE agents' task templates), else the text."""
    for tag in ("issue_description", "pr_description"):
        if m := re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", text, re.S):
            return m.group(1).strip()
    return text.strip()


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def parse_python_literal(text: str) -> Any:
    """Parse a Python repr (single-quoted dicts/lists, as smolagents logs them) without evaluating code."""
    return ast.literal_eval(text)


def check_observation(obs: str, where: str) -> str | None:
    """Reason to reject a trajectory whose observation cannot be used, else None."""
    if len(obs) > MAX_OBSERVATION_CHARS:
        return f"{where}: observation of {len(obs) / 1e6:.1f}M characters exceeds the {MAX_OBSERVATION_CHARS / 1e6:.0f}M limit (cannot fit any budget)"
    if "\x00" in obs:
        return f"{where}: observation contains binary data (NUL bytes)"
    return None


def check_steps(steps) -> str | None:
    """Reason to reject a trajectory for its first unusable observation ("step 3 (bash): ..."), else None."""
    for i, step in enumerate(steps, start=1):
        if problem := check_observation(step.observation, f"step {i} ({step.tool})"):
            return problem
    return None


def content_text(content: Any) -> str:
    """Text of an OpenAI-style message content: a string, or a list of {type: text, text} parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                    parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return content["text"]
    return str(content)
