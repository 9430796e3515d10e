"""One trajectory -> one agent-SFT conversation: chat messages in the transformers tool-calling convention, the JSON
schemas of the tools it used, redaction of credentials and personal data, and token counts under a chat template.

    user question -> (assistant thought + tool_calls -> tool observation)* -> assistant final answer

    {"role": "assistant", "content": thought, "tool_calls": [{"type": "function",
                                                             "function": {"name": "bash", "arguments": {...}}}]}
    {"role": "tool", "name": "bash", "content": observation}

Every message carries the four keys `role`, `content`, `name`, `tool_calls` (None where unused), so that parquet has
one struct type for all of them. Used by `agent_sft.py`; imports no torch and no transformers.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataset_builder.schema import DOMAINS, Trajectory

TRAJECTORY_META_KEYS = ("model", "instance_id", "repo", "base_commit", "db_id", "resolved", "correct", "exit_status")
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use marks around `{% generation %}` output while rendering


class ConversationError(ValueError):
    """A trajectory that cannot become a training conversation (the reason is the message)."""


def message(role: str, content: str, name: str | None = None, tool_calls: list | None = None) -> dict[str, Any]:
    return {"role": role, "content": content, "name": name, "tool_calls": tool_calls}


def conversation(traj: Trajectory) -> list[dict[str, Any]]:
    """The trajectory as chat messages; tool-call `arguments` are dicts here (JSON-encoded only when written)."""
    if not traj.question.strip():
        raise ConversationError("no question: the trajectory has no task text to start the conversation")
    messages = [message("user", traj.question)]
    for i, step in enumerate(traj.steps, 1):
        if not step.tool.strip():
            raise ConversationError(f"step {i}: a tool call without a tool name")
        if not isinstance(step.args, dict):
            raise ConversationError(f"step {i}: tool arguments are {type(step.args).__name__}, not an object")
        call = {"type": "function", "function": {"name": step.tool, "arguments": step.args}}
        messages.append(message("assistant", step.thought, tool_calls=[call]))
        messages.append(message("tool", step.observation, name=step.tool))
    final = "\n\n".join(text for text in (traj.reasoning, traj.final_answer) if text.strip())
    if final:
        messages.append(message("assistant", final))
    if len(messages) == 1:
        raise ConversationError("no assistant turn: no tool calls and no final answer to train on")
    return messages


def tool_schemas(traj: Trajectory) -> list[dict[str, Any]]:
    """JSON schemas of the tools the trajectory called, in order of first use: the source's own schemas when an
    adapter kept them (`meta["tools"]`), else inferred from the calls (argument names and JSON types; an argument
    present in every call is required)."""
    given = {
        (t.get("function") or t).get("name"): t
        for t in traj.meta.get("tools") or []
        if isinstance(t, dict) and isinstance((t.get("function") or t).get("name"), str)
    }
    calls: dict[str, list[dict]] = {}
    for step in traj.steps:
        calls.setdefault(step.tool, []).append(step.args)
    schemas = []
    for name, args in calls.items():
        if name in given:
            schemas.append(given[name] if "function" in given[name] else {"type": "function", "function": given[name]})
            continue
        properties: dict[str, dict] = {}
        for call in args:
            for key, value in call.items():
                properties.setdefault(key, {"type": json_type(value)})
        required = [key for key in properties if all(key in call for call in args)]
        description = f"The `{name}` tool as the agent called it (schema inferred from {len(args)} call(s))."
        parameters = {"type": "object", "properties": properties, "required": required}
        schemas.append(
            {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}
        )
    return schemas


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "null" if value is None else "string"


def trajectory_meta(traj: Trajectory) -> dict[str, Any]:
    return {k: traj.meta[k] for k in TRAJECTORY_META_KEYS if k in traj.meta}


def redact_conversation(messages: list[dict[str, Any]], scanner) -> Counter:
    """Credentials and personal data in message texts and tool arguments -> typed placeholders (`<SECRET:...>`,
    `<EMAIL>`, ...), in place; one `Redactor` per conversation, so a value keeps its placeholder across turns."""
    from dataset_builder.secrets import Redactor

    texts = [m["content"] or "" for m in messages]
    red, found = Redactor.continuing(texts), Counter()

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            spans = scanner.scan(value)
            found.update(s.type for s in spans)
            return red.redact(value, spans) if spans else value
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    for m in messages:
        m["content"] = sub(m["content"])
        for call in m["tool_calls"] or []:
            call["function"]["arguments"] = sub(call["function"]["arguments"])
    return found


def encode_arguments(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as written to parquet: `arguments` as JSON text (the `datasets.Json` feature decodes it)."""
    out = []
    for m in messages:
        calls = m["tool_calls"]
        if calls:
            calls = [
                {**c, "function": {**c["function"], "arguments": to_json(c["function"]["arguments"])}} for c in calls
            ]
        out.append({**m, "tool_calls": calls})
    return out


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class ConversationTokens:
    """Token counts of conversations rendered with a tokenizer's chat template: all tokens, and the tokens inside
    `{% generation %}` blocks (the assistant output: what assistant-only loss trains on)."""

    tokenizer_dir: str

    def __post_init__(self):
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        from dataset_builder.tokens import token_counter

        counter = token_counter(self.tokenizer_dir)
        self.name, self._tok = counter.name, counter._tok
        config = json.loads((Path(self.tokenizer_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[_generation_extension()]
        )  # as transformers renders chat templates
        env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
        self._template = env.from_string(config["chat_template"])

    def count(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> tuple[int, int]:
        """(tokens, assistant tokens) of the rendered conversation."""
        text = self._template.render(messages=messages, tools=tools or None, add_generation_prompt=False)
        plain, spans, pos = [], [], 0
        for part in text.split(_OPEN):
            body, sep, rest = part.partition(_CLOSE)
            if sep:
                spans.append((pos, pos + len(body)))
                plain.append(body + rest)
                pos += len(body) + len(rest)
            else:
                plain.append(part)
                pos += len(part)
        encoding = self._tok.encode("".join(plain), add_special_tokens=False)
        k, n_loss = 0, 0
        for start, _ in encoding.offsets:
            while k < len(spans) and spans[k][1] <= start:
                k += 1
            n_loss += k < len(spans) and spans[k][0] <= start
        return len(encoding.ids), n_loss


def _generation_extension():
    """`{% generation %}...{% endgeneration %}` (transformers' tag for assistant-only masks) as marks in the output."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

        def _mark(self, caller):
            return f"{_OPEN}{caller()}{_CLOSE}"

    return Generation


# ---- parquet shards and card ----------------------------------------------------------------------------------------


def features(storage: bool = False):
    """`datasets.Features` of an agent-SFT row. Tool-call `arguments` and `tools` are `Json` (JSON text in parquet,
    dicts once loaded): a struct would take the union of every tool's argument names and render the missing ones as
    nulls in the chat template. `storage=True`: the same with plain strings, to build tables from Python rows
    (pyarrow cannot build JSON extension arrays from Python objects; the table is then cast)."""
    from datasets import Features, Json, List, Value

    json_value = Value("string") if storage else Json()
    call = {"type": Value("string"), "function": {"name": Value("string"), "arguments": json_value}}
    message = {"role": Value("string"), "content": Value("string"), "name": Value("string"), "tool_calls": List(call)}
    return Features(
        {
            "id": Value("string"),
            "domain": Value("string"),
            "source": Value("string"),
            "verified": Value("bool"),
            "messages": List(message),
            "tools": List(json_value),
            "meta": Value("string"),
        }
    )


def arrow_schemas():
    """(storage schema for Python rows, final schema with the `huggingface` metadata that `datasets` reads back)."""
    feats = features()
    final = feats.arrow_schema.with_metadata({"huggingface": json.dumps({"info": {"features": feats.to_dict()}})})
    return features(storage=True).arrow_schema, final


def conversation_bytes(row: dict[str, Any]) -> int:
    """A row's text size, for cutting shards (`writer.ShardWriter`)."""
    return sum(len(m["content"] or "") for m in row["messages"]) + len(row["meta"]) + 1024


def remove_old_output(out: Path) -> None:
    """Shards and reports an earlier run wrote into OUT (nothing else in the folder is touched)."""
    for old in [*out.glob("data/*/*-*-of-*.parquet"), *out.glob("data/*/.*.tmp")]:
        old.unlink()
    for name in ("README.md", "stats.json", "rejects.jsonl", "missing.jsonl"):
        (out / name).unlink(missing_ok=True)


def write_card(out: Path, stats: dict[str, Any]) -> str:
    """OUT/README.md: configs (one per domain with rows, plus `all`, the default) and what the view is."""
    import yaml

    from model_cards import render

    with_data = [d for d in DOMAINS if stats["domains"].get(d, {}).get("n_records")]
    configs = []
    for cfg in ["all", *with_data]:
        doms = with_data if cfg == "all" else [cfg]
        splits = sorted({s for d in doms for s in stats["domains"][d]["splits"]}, key=lambda s: (s != "train", s))
        folder = "*" if cfg == "all" else cfg
        config = {
            "config_name": cfg,
            "data_files": [{"split": s, "path": f"data/{folder}/{s}-*.parquet"} for s in splits],
        }
        configs.append({**config, "default": True} if cfg == "all" else config)
    acc = stats["acc_dataset"]
    meta = {
        "pretty_name": f"{acc['name']} (agent-SFT baseline)",
        "license": stats["license"],
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["acc", "agent-sft", "tool-calling", "agent-trajectories", *with_data],
        "configs": configs if with_data else [],
    }
    card = render(
        "agent_sft_card.md.j2",
        front_matter=yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000),
        acc=acc,
        stats=stats,
        domains=[d for d in (*DOMAINS, "unknown") if d in stats["domains"]],
        configs=[c["config_name"] for c in configs] if with_data else [],
    )
    (out / "README.md").write_text(card, encoding="utf-8")
    return card
