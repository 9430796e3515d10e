"""Row layout: {role, text} turns (nebius/SWE-agent-trajectories), with role aliases (`ai` = assistant).

    {"instance_id": "tomerfiliba__plumbum-366_17", "target": true, "generated_patch": "diff --git ...",
     "trajectory": [{"role": "system", "text": null, "system_prompt": "..."},
                    {"role": "user", "text": "We're currently solving the following issue ... ISSUE: ..."},
                    {"role": "ai", "text": "Let's open the file.\\n```\\nopen plumbum/cli/image.py\\n```"},
                    {"role": "user", "text": "[File: /plumbum/plumbum/cli/image.py (99 lines total)] ..."}]}

The actions are in the assistant text (SWE-agent command blocks here; any dialect of text_actions.py); the
observation is the next user turn. `text` may be null (system turns keep their prompt elsewhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataset_builder.adapters.common import content_text
from dataset_builder.adapters.openai_messages import ROLE_ALIASES
from dataset_builder.adapters.row_build import Turn
from dataset_builder.adapters.row_fields import RowFields

NAME = "role-text-rows"
DOMAIN = None
TEXT_KEYS = ("text", "message", "utterance")


def sniff(path: Path, head: str) -> bool:
    return (
        path.suffix.lower() in (".json", ".jsonl", ".ndjson")
        and '"role"' in head
        and '"text"' in head
        and ('"role": "ai"' in head or '"role":"ai"' in head or '"trajectory"' in head)
    )


def read(path: Path):
    from dataset_builder.adapters.rows import read_rows

    return read_rows(path, NAME)


def matches(cells: list[list[Any]]) -> bool:
    items = [m for cell in cells for m in cell[:3] if isinstance(m, dict)]
    return bool(items) and all("role" in m and any(k in m for k in TEXT_KEYS) and "content" not in m for m in items)


def turns(cell: list[Any], fields: RowFields) -> list[Turn]:
    out = []
    for item in cell:
        if not isinstance(item, dict):
            continue
        role = ROLE_ALIASES.get(str(item.get("role") or "").lower(), "")
        if role:
            text = next((item[k] for k in TEXT_KEYS if item.get(k) is not None), "")
            out.append(Turn(role=role, text=content_text(text)))
    return out
