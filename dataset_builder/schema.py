"""The two data shapes of the project: a `Trajectory` (what an adapter reads) and an `ACCRecord` (one dataset row).

Every adapter turns its source format into `Trajectory` objects; every domain compiler turns a `Trajectory` into
evidence and distractor `Piece`s; assembly turns those into an `ACCRecord`. Anything that cannot be turned into the
next shape becomes a `Reject` with the place it came from and the reason, so that inputs = records + rejects.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DOMAINS = ("search", "swe", "sql")


@dataclass
class Step:
    """One tool call of an agent and what came back."""

    tool: str  # tool / command name as the agent called it: "bash", "web_search", "sql_db_query", "Search", ...
    # parsed arguments: {"command": ...}, {"query": ...}, {"sql": ...}
    args: dict[str, Any] = field(default_factory=dict)
    observation: str = ""  # the tool's output as text ("" when the source recorded none)
    thought: str = ""  # the agent's text before the call, when the format keeps it
    call_id: str = ""


@dataclass
class Trajectory:
    """One agent run, normalized. `meta` keeps what the domain compilers need (see keys below)."""

    id: str  # stable within the source: instance id, or "<file stem>:<line>"
    source: str  # adapter name, e.g. "swe-agent", "mini-swe-agent", "smolagents", "langgraph"
    domain: str  # "search" | "swe" | "sql"
    question: str  # the task as the agent received it, boilerplate stripped
    steps: list[Step] = field(default_factory=list)
    final_answer: str = ""  # search: short answer; sql: final SQL or result; swe: the submitted diff
    gold: str = ""  # ground truth when the source knows it (gold answer, gold SQL, gold patch)
    reasoning: str = ""  # the agent's own closing reasoning text, when there is one
    origin: str = ""  # "<path>[:<line>|#<index>]" where the trajectory was read from
    # Well-known meta keys: repo, base_commit, instance_id, db_id, db_path, model, exit_status, resolved (bool),
    # correct (bool, the source's own verdict), urls (list), gold_kind ("answer" | "sql" | "patch" | "table").
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reject:
    """An input that did not become a record: where it came from and why."""

    origin: str  # "<path>[:<line>|#<index>]"
    reason: str
    source: str = ""  # adapter name, when known
    domain: str = ""
    stage: str = "read"  # "read" | "compile" | "budget" | "traces"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


@dataclass
class Piece:
    """One document of a compiled context: a page, a file, a table dump, a search snippet."""

    kind: str  # "page" | "snippet" | "file" | "table" | "schema" | "text"
    title: str  # url, repo path, table name: what the model sees as the document header
    text: str
    is_distractor: bool = False
    n_tokens: int = 0  # tokens of the rendered piece (header + text) under the record's tokenizer


@dataclass
class ACCRecord:
    id: str
    domain: str
    source: str
    question: str
    pieces: list[Piece]
    context: str
    reasoning: str = ""
    answer: str = ""
    gold: str = ""
    verified: bool = False
    prompt: list[dict[str, str]] = field(default_factory=list)
    completion: list[dict[str, str]] = field(default_factory=list)
    n_tokens: int = 0
    budget: int = 0
    meta: str = "{}"  # JSON string (keeps the parquet schema fixed whatever the source puts there)

    def to_row(self) -> dict[str, Any]:
        """The parquet row (as `dataclasses.asdict`, without its deep recursion: records hold thousands of pieces)."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["pieces"] = [vars(p).copy() for p in self.pieces]
        row["prompt"] = [dict(m) for m in self.prompt]
        row["completion"] = [dict(m) for m in self.completion]
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ACCRecord:
        row = dict(row)
        row["pieces"] = [Piece(**p) for p in row["pieces"]]
        return cls(**row)


def features():
    """The `datasets.Features` of an ACC record (imported lazily: the schema itself needs no `datasets`)."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    piece = {
        "kind": Value("string"),
        "title": Value("string"),
        "text": Value("string"),
        "is_distractor": Value("bool"),
        "n_tokens": Value("int32"),
    }
    return Features(
        {
            "id": Value("string"),
            "domain": Value("string"),
            "source": Value("string"),
            "question": Value("string"),
            "pieces": List(piece),
            "context": Value("string"),
            "reasoning": Value("string"),
            "answer": Value("string"),
            "gold": Value("string"),
            "verified": Value("bool"),
            "prompt": List(message),
            "completion": List(message),
            "n_tokens": Value("int32"),
            "budget": Value("int32"),
            "meta": Value("string"),
        }
    )
