"""Row layout: Agent Data Protocol (ADP) standard records, one adapter for every source ADP converts.

    {"id": "tomerfiliba__plumbum-366_17",
     "content": [{"class_": "text_observation", "source": "user", "content": "...ISSUE: ..."},
                 {"class_": "code_action", "language": "bash", "content": "ls -F", "description": "thought"},
                 {"class_": "api_action", "function": "open", "kwargs": {"path": "\\"plumbum/cli/image.py\\""}},
                 {"class_": "message_action", "content": "<finish> ... </finish>"}],
     "details": {"generated_patch": "diff --git ...", "model_name": "...", "exit_status": "submitted"}}

Events: text_observation (a user turn; after an action it is that action's observation), api_action (a call of
`function` with `kwargs`; values that SWE-agent sources keep JSON-quoted are unquoted), code_action (bash -> a shell
command, python / ipython -> python code, sql -> a SQL statement), message_action (assistant text; a
`<solution>...</solution>` inside it is the final answer). The thought of an action is its `description`.
Fields of `details` (patch, model, exit status) are read through row_fields.py's aliases.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dataset_builder.adapters.common import content_text
from dataset_builder.adapters.row_build import Call, Turn
from dataset_builder.adapters.row_fields import RowFields

NAME = "adp-std"
DOMAIN = None
CLASSES = {"text_observation", "api_action", "code_action", "message_action", "image_observation", "web_observation"}
CODE_TOOLS = {"bash": ("bash", "command"), "sh": ("bash", "command"), "shell": ("bash", "command"),
              "python": ("python", "code"), "ipython": ("python", "code"), "sql": ("sql_db_query", "sql"),
              "mysql": ("sql_db_query", "sql"), "sqlite": ("sql_db_query", "sql")}  # fmt: skip
SOLUTION = re.compile(r"<solution>\s*(.*?)\s*</solution>", re.S)


def sniff(path: Path, head: str) -> bool:
    return (
        path.suffix.lower() in (".json", ".jsonl", ".ndjson")
        and '"class_"' in head
        and any(f'"{c}"' in head for c in CLASSES)
    )


def read(path: Path):
    from dataset_builder.adapters.rows import read_rows

    return read_rows(path, NAME)


def matches(cells: list[list[Any]]) -> bool:
    items = [m for cell in cells for m in cell[:3] if isinstance(m, dict)]
    return bool(items) and all(m.get("class_") in CLASSES for m in items)


def turns(cell: list[Any], fields: RowFields) -> list[Turn]:
    out: list[Turn] = []
    for event in cell:
        if not isinstance(event, dict):
            continue
        kind = event.get("class_")
        if kind in ("text_observation", "web_observation", "image_observation"):
            out.append(Turn(role="user", text=content_text(event.get("content") or event.get("html") or "")))
        elif kind == "api_action":
            kwargs = event.get("kwargs") if isinstance(event.get("kwargs"), dict) else {}
            args = {str(k): _unquoted(v) for k, v in kwargs.items()}
            out.append(Turn("assistant", str(event.get("description") or ""), [Call(str(event.get("function")), args)]))
        elif kind == "code_action":
            language = str(event.get("language") or "").lower()
            tool, key = CODE_TOOLS.get(language, (language or "bash", "command"))
            call = Call(tool, {key: content_text(event.get("content"))})
            out.append(Turn("assistant", str(event.get("description") or ""), [call]))
        elif kind == "message_action":
            text = content_text(event.get("content"))
            if m := SOLUTION.search(text):
                fields.answer = fields.answer or m.group(1)
            description = str(event.get("description") or "")
            out.append(Turn("assistant", "\n".join(t for t in (description, text) if t.strip())))
    return out


def _unquoted(value: Any) -> Any:
    """ADP keeps some SWE-agent arguments as JSON-quoted strings ('"image.py"'): the string inside."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        return inner if isinstance(inner, str) else value
    return value
