"""Row layout: OpenAI chat messages (`messages` of {role, content, tool_calls}), optionally with a `tools` column.

    {"instance_id": "python__mypy-15976_0", "resolved": true,
     "messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "str_replace_editor", "arguments": "{\"command\": \"view\", ...}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "name": "str_replace_editor", "content": "..."}],
     "tools": [...], "test_result": {"git_patch": "diff --git ..."}}

Also: the messages cell (or each message) as a JSON string (Toucan stores every column as a string); `content` as a
string or a list of {type: text} parts; `arguments` as a JSON string, a dict or a Python repr; the legacy
`function_call` {name, arguments}; role aliases (ai, human, function, observation, ...). Assistant messages without
structured calls are read for actions in their text (text_actions.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dataset_builder.adapters.common import content_text, parse_python_literal
from dataset_builder.adapters.openai_messages import ROLE_ALIASES
from dataset_builder.adapters.row_build import Call, Turn
from dataset_builder.adapters.row_fields import RowFields, decode_json

NAME = "chat-rows"
DOMAIN = None


def sniff(path: Path, head: str) -> bool:
    from dataset_builder.adapters.rows import has_row_signals

    return path.suffix.lower() in (".json", ".jsonl", ".ndjson") and '"role"' in head and has_row_signals(head)


def read(path: Path):
    from dataset_builder.adapters.rows import read_rows

    return read_rows(path, NAME)


def matches(cells: list[list[Any]]) -> bool:
    first = [_message(m) for cell in cells for m in cell[:3]]
    return any(m is not None and "role" in m and ("content" in m or "tool_calls" in m) for m in first)


def _message(item: Any) -> dict[str, Any] | None:
    try:
        item = decode_json(item)
    except ValueError:
        return None
    return item if isinstance(item, dict) else None


def turns(cell: list[Any], fields: RowFields) -> list[Turn]:
    out = []
    for item in cell:
        msg = _message(item)
        if msg is None:
            continue
        role = ROLE_ALIASES.get(str(msg.get("role") or "").lower(), "")
        if not role:
            continue
        calls = [c for c in (_call(raw) for raw in (msg.get("tool_calls") or [])) if c]
        if msg.get("function_call"):
            calls += [c for c in [_call(msg["function_call"])] if c]
        out.append(
            Turn(
                role=role,
                text=content_text(msg.get("content")),
                calls=calls if role == "assistant" else [],
                call_id=str(msg.get("tool_call_id") or ""),
                name=str(msg.get("name") or ""),
            )
        )
    return out


def _call(raw: Any) -> Call | None:
    raw = _decoded(raw)
    if not isinstance(raw, dict):
        return None
    function = _decoded(raw.get("function")) if raw.get("function") is not None else raw
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        return None
    arguments = next((function[k] for k in ("arguments", "args", "input", "parameters") if k in function), {})
    arguments = _decoded(arguments)
    if isinstance(arguments, str):
        arguments = {"raw_arguments": arguments} if arguments.strip() else {}
    args = dict(arguments) if isinstance(arguments, dict) else {"input": arguments}
    return Call(name=function["name"], args=args, id=str(raw.get("id") or ""))


def _decoded(value: Any) -> Any:
    """A dict/list stored as JSON or as a Python repr string, decoded; anything else unchanged."""
    if not isinstance(value, str) or value.lstrip()[:1] not in ("{", "["):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return parse_python_literal(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
