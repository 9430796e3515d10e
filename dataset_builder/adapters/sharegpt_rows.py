"""Row layout: ShareGPT conversations, {from, value} turns (SFT exports such as ADP's `sft_*` and SWE-Gym's).

    {"id": "python__mypy-15976_0", "system": "...",
     "conversations": [{"from": "human", "value": "<uploaded_files> ... <pr_description> ... </pr_description>"},
                       {"from": "gpt", "value": "<function=str_replace_editor>\\n<parameter=command>view..."},
                       {"from": "human", "value": "EXECUTION RESULT of [str_replace_editor]:\\n..."}]}

Speakers: human/user, gpt/assistant, system, function_call (the value is the call as JSON {name, arguments}),
observation/function/tool (its result). Calls written in the gpt text are read with text_actions.py (OpenHands XML
function calls, ReAct, SWE-agent blocks, AgentTuning); the observation is the next turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataset_builder.adapters.chat_rows import _call
from dataset_builder.adapters.common import content_text
from dataset_builder.adapters.openai_messages import ROLE_ALIASES
from dataset_builder.adapters.row_build import Turn
from dataset_builder.adapters.row_fields import RowFields

NAME = "sharegpt-rows"
DOMAIN = None


def sniff(path: Path, head: str) -> bool:
    from dataset_builder.adapters.rows import has_row_signals

    return (
        path.suffix.lower() in (".json", ".jsonl", ".ndjson")
        and '"from"' in head
        and '"value"' in head
        and has_row_signals(head)
    )


def read(path: Path):
    from dataset_builder.adapters.rows import read_rows

    return read_rows(path, NAME)


def matches(cells: list[list[Any]]) -> bool:
    items = [m for cell in cells for m in cell[:3] if isinstance(m, dict)]
    return bool(items) and all("from" in m and "value" in m for m in items)


def turns(cell: list[Any], fields: RowFields) -> list[Turn]:
    out = []
    for item in cell:
        if not isinstance(item, dict):
            continue
        speaker = str(item.get("from") or "").lower()
        value = item.get("value")
        if speaker == "function_call":
            call = _call(value)
            out.append(Turn(role="assistant", calls=[call] if call else []))
            continue
        role = ROLE_ALIASES.get(speaker, "")
        if role:
            out.append(Turn(role=role, text=content_text(value)))
    return out
