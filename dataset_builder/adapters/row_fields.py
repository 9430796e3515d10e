"""Column aliases of trajectory datasets, in one place: which column holds the id, the turns, the patch, ...

A row is one run. `row_fields(row)` finds, by the first alias present (dotted names reach into struct columns):

    id          instance_id | trajectory_id | traj_id | uuid | id
    turns       messages | trajectory | conversations | conversation | content (ADP std) | chat | dialog
    tools       tools | available_tools          (tool declarations: a list, or a JSON string of one)
    resolved    target | resolved | test_result.report.resolved | report.resolved   (bool, 0/1, "true"/"false")
    patch       generated_patch | model_patch | patch | test_result.git_patch | details.generated_patch | submission
    repo        repo | repository            (else from an owner__name-N instance id)
    base_commit base_commit | environment_setup_commit
    question    question | problem_statement | instruction | task    (else the first user turn, boilerplate stripped)
    gold        gold_patch | gold_sql | gold_answer | true_answer | answer (search rows: the expected answer)
    model       model_name | model | run_id
    db_id       db_id | database | db
    domain      domain

Every string cell that holds JSON (Toucan stores every column as a string, messages included) is decoded when the
field wants a list or dict. Instance ids often carry a run suffix (`tomerfiliba__plumbum-366_17`): `instance_id()`
gives the id without it when the rest is a SWE-bench style id (`owner__name-N`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ID_KEYS = ("instance_id", "trajectory_id", "traj_id", "uuid", "id")
TURN_KEYS = ("messages", "trajectory", "conversations", "conversation", "content", "chat", "dialog")
TOOLS_KEYS = ("tools", "available_tools")
RESOLVED_KEYS = ("target", "resolved", "test_result.report.resolved", "report.resolved")
PATCH_KEYS = (
    "generated_patch",
    "model_patch",
    "patch",
    "test_result.git_patch",
    "details.generated_patch",
    "submission",
)
REPO_KEYS = ("repo", "repository")
BASE_COMMIT_KEYS = ("base_commit", "environment_setup_commit")
QUESTION_KEYS = ("question", "problem_statement", "instruction", "task")
GOLD_KEYS = (("gold_patch", "patch"), ("gold_sql", "sql"), ("gold_answer", "answer"), ("true_answer", "answer"))
MODEL_KEYS = ("model_name", "model", "run_id")
DB_KEYS = ("db_id", "database", "db")

SWE_ID = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)__([A-Za-z0-9._-]+)-(\d+)")


@dataclass
class RowFields:
    id: str = ""
    turns: Any = None  # the raw turns cell (list, or None when the row has none)
    turns_key: str = ""
    tools: list[Any] = field(default_factory=list)
    resolved: bool | None = None
    patch: str | None = None  # None: the row has no patch column; "": the column is empty
    repo: str = ""
    base_commit: str = ""
    question: str = ""
    gold: str = ""
    gold_kind: str = ""
    answer: str = ""
    model: str = ""
    db_id: str = ""
    domain: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # exit_status, run_id, details ... (kept in meta)


def get(row: dict[str, Any], key: str) -> Any:
    """row[key], following dots into dict cells (decoding JSON-string cells on the way)."""
    value: Any = row
    for part in key.split("."):
        value = decode_json(value) if isinstance(value, str) else value
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def decode_json(value: Any) -> Any:
    """A JSON-encoded list/dict cell decoded; anything else unchanged (a broken one raises ValueError)."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        return json.loads(value)
    return value


def first(row: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        value = get(row, key)
        if value is not None and value != "":
            return key, value
    return "", None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "resolved"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "unresolved"):
        return False
    return None


def text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def row_fields(row: dict[str, Any]) -> RowFields:
    """The fields of a row under their aliases. Raises ValueError for a turns cell that is broken JSON."""
    f = RowFields()
    f.id = text(first(row, ID_KEYS)[1]).strip()
    f.turns_key, turns = first(row, TURN_KEYS)
    f.turns = decode_json(turns) if isinstance(turns, str) else turns
    try:
        tools = decode_json(first(row, TOOLS_KEYS)[1])
    except ValueError:
        tools = None
    f.tools = tools if isinstance(tools, list) else []
    f.resolved = as_bool(first(row, RESOLVED_KEYS)[1])
    patch_key, patch = first(row, PATCH_KEYS)
    if patch_key:
        f.patch = text(patch)
    elif any(get(row, k) is not None for k in PATCH_KEYS):
        f.patch = ""
    f.repo = text(first(row, REPO_KEYS)[1]).strip()
    f.base_commit = text(first(row, BASE_COMMIT_KEYS)[1]).strip()
    question = first(row, QUESTION_KEYS)[1]
    f.question = question if isinstance(question, str) else ""
    for key, kind in GOLD_KEYS:
        if isinstance(row.get(key), str) and row[key].strip():
            f.gold, f.gold_kind = row[key], kind
            break
    f.answer = text(row.get("answer") or row.get("final_answer") or "")
    f.model = text(first(row, MODEL_KEYS)[1]).strip()
    f.db_id = text(first(row, DB_KEYS)[1]).strip()
    f.domain = text(row.get("domain") or "").strip().lower()
    for key in ("exit_status", "run_id", "subset_name", "engine"):
        if isinstance(row.get(key), str | int | float) and row[key] != "":
            f.extra[key] = row[key]
    return f


def instance_id(run_id: str, known: set[str] | None = None) -> str:
    """The task instance of a run id: the id itself when known (or SWE-bench shaped), else without a `_N` suffix."""
    if known is not None and run_id in known:
        return run_id
    base, sep, suffix = run_id.rpartition("_")
    if sep and suffix.isdigit() and base and ((known is not None and base in known) or SWE_ID.fullmatch(base)):
        return base
    return run_id


def repo_of(instance: str) -> str:
    """owner/name from a SWE-bench style instance id (`pylint-dev__astroid-1978` -> `pylint-dev/astroid`)."""
    m = SWE_ID.fullmatch(instance)
    return f"{m.group(1)}/{m.group(2)}" if m else ""
