"""Scanning and redacting one ACC record: every text it carries, with gold kept gold and token counts kept exact.

    outcome = scan_record(record, "redact", counter)   # -> ScanOutcome(record=redacted, reject=None, findings=[...])

Scanned: `question`, each piece's `title` and `text`, `answer`, `gold`, `reasoning` and every string in `meta`. The
`context`, `prompt` and `completion` are renderings of those (`assemble.render_context`, `prompt_messages`,
`completion_messages`): when a record's are exactly that, they are re-rendered from the redacted parts, so they stay
consistent; otherwise (a record edited by hand) they are scanned and redacted as texts of their own. A redacted
piece keeps its place and its `is_distractor`: gold evidence stays gold. Token counts are recomputed (changed pieces,
the whole context); if placeholders made the context longer than its budget, distractors are dropped (never gold),
else the budget moves up as in assembly, else the record becomes a Reject.

Policies: "redact" (the default), "drop" (a record with any finding becomes a Reject naming the types), "off".
Findings name the record, the field, the type and the offset in the field, never the value.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from dataset_builder.budget import (
    MAX_LENGTH,
    BudgetError,
    RowLimit,
    default_reasoning_reserve,
    fit_budget,
    frame_tokens,
)
from dataset_builder.schema import ACCRecord, Reject
from dataset_builder.secrets.scan import Redactor, Scanner, Span

POLICIES = ("redact", "drop", "off")


@dataclass(frozen=True)
class Finding:
    record_id: str
    domain: str
    field: str  # "question", "pieces[3].text", "meta.trajectory.cwd", "reason" (a reject), ...
    type: str  # "aws_access_key", "email", ...
    offset: int  # character offset of the value in the field

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "domain": self.domain,
            "field": self.field,
            "type": self.type,
            "offset": self.offset,
        }


@dataclass
class ScanOutcome:
    record: ACCRecord | None  # the record, redacted when there were findings (None when dropped)
    reject: Reject | None = None
    findings: list[Finding] = field(default_factory=list)


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"unknown secrets policy {policy!r} (choose from {', '.join(POLICIES)})")
    return policy


# ---------------------------------------------------------------- what a record carries


def derived_fields(record: ACCRecord) -> dict[str, bool]:
    """Which of context / prompt / completion are exactly the renderings of the record's other fields."""
    from dataset_builder.assemble import completion_messages, prompt_messages, render_context

    context = record.context == render_context(record.pieces)
    try:
        prompt = not record.prompt or record.prompt == prompt_messages(record.domain, record.question, record.context)
    except KeyError:  # a domain without a prompt template
        prompt = False
    completion = not record.completion or record.completion == completion_messages(record.reasoning, record.answer)
    return {"context": context, "prompt": prompt, "completion": completion}


def meta_strings(value: Any, path: str = "meta") -> list[tuple[str, str]]:
    """(path, string) for every string in a parsed meta object (dict keys are paths, not scanned)."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in meta_strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in meta_strings(v, f"{path}[{i}]")]
    return []


def map_strings(value: Any, fn, path: str = "meta") -> Any:
    """`value` with every string s at `path` replaced by fn(path, s)."""
    if isinstance(value, str):
        return fn(path, value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, fn, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def parse_meta(meta: str) -> Any:
    try:
        return json.loads(meta or "{}")
    except ValueError:
        return meta  # not JSON: scanned as one text


def record_texts(record: ACCRecord, derived: dict[str, bool] | None = None) -> list[tuple[str, str]]:
    """(field, text) for every text of the record that is not a rendering of others, in a fixed order."""
    derived = derived if derived is not None else derived_fields(record)
    texts = [("question", record.question)]
    for i, p in enumerate(record.pieces):
        texts += [(f"pieces[{i}].title", p.title), (f"pieces[{i}].text", p.text)]
    texts += [("answer", record.answer), ("gold", record.gold), ("reasoning", record.reasoning)]
    texts += meta_strings(parse_meta(record.meta))
    if not derived["context"]:
        texts.append(("context", record.context))
    for name in ("prompt", "completion"):
        if not derived[name]:
            texts += [(f"{name}[{i}].content", m.get("content", "")) for i, m in enumerate(getattr(record, name))]
    return [(name, text) for name, text in texts if text]


# ---------------------------------------------------------------- scan + redact


def scan_record(
    record: ACCRecord,
    policy: str = "redact",
    counter: Any = None,
    *,
    scanner: Scanner | None = None,
    origin: str | None = None,
    max_length: int = MAX_LENGTH,
    reasoning_reserve: int | None = None,
    contexts: Any = None,
) -> ScanOutcome:
    """Scan every text of `record`; redact it, drop it (a Reject from `origin`), or leave it (policy "off").
    `contexts`: a `context.ContextCounter` of `counter` shared across records, so that a redacted document met again
    (a distractor page in many contexts) is counted once."""
    if check_policy(policy) == "off":
        return ScanOutcome(record)
    scanner = scanner or Scanner()
    derived = derived_fields(record)
    spans = {name: scanner.scan(text) for name, text in record_texts(record, derived)}
    findings = [Finding(record.id, record.domain, name, s.type, s.start) for name, ss in spans.items() for s in ss]
    if not findings:
        return ScanOutcome(record)
    if policy == "drop":
        types = ", ".join(sorted({f.type for f in findings}))
        where = origin or str(json.loads(record.meta or "{}").get("origin", record.id))
        reason = f"credentials or personal data found (--secrets drop): {types}"
        return ScanOutcome(None, Reject(where, reason, record.source, record.domain, stage="secrets"), findings)
    reserve = default_reasoning_reserve(max_length) if reasoning_reserve is None else reasoning_reserve
    redacted = redact_record(record, spans, derived, counter, RowLimit(max_length, reserve), contexts)
    if isinstance(redacted, str):
        where = origin or record.id
        return ScanOutcome(None, Reject(where, redacted, record.source, record.domain, stage="secrets"), findings)
    return ScanOutcome(redacted, None, findings)


def redact_record(
    record: ACCRecord,
    spans: dict[str, tuple[Span, ...]],
    derived: dict[str, bool],
    counter: Any,
    limit: RowLimit,
    contexts: Any = None,
) -> ACCRecord | str:
    """The record with every span replaced by its placeholder; a reason string when it can no longer fit."""
    from dataset_builder.assemble import completion_messages, prompt_messages, render_context

    red = Redactor()

    def sub(name: str, text: str) -> str:
        return red.redact(text, spans[name]) if spans.get(name) else text

    question = sub("question", record.question)
    pieces = [
        replace(p, title=sub(f"pieces[{i}].title", p.title), text=sub(f"pieces[{i}].text", p.text))
        for i, p in enumerate(record.pieces)
    ]
    answer, gold, reasoning = sub("answer", record.answer), sub("gold", record.gold), sub("reasoning", record.reasoning)
    meta = parse_meta(record.meta)
    meta = map_strings(meta, sub) if not isinstance(meta, str) else sub("meta", meta)
    context = render_context(pieces) if derived["context"] else sub("context", record.context)
    out = replace(record, question=question, pieces=pieces, answer=answer, gold=gold, reasoning=reasoning)
    out.context = context
    out.prompt = _messages(
        record.prompt, "prompt", derived, sub, lambda: prompt_messages(out.domain, question, context)
    )
    out.completion = _messages(
        record.completion, "completion", derived, sub, lambda: completion_messages(reasoning, answer)
    )
    types = Counter(s.type for ss in spans.values() for s in ss)
    info: dict[str, Any] = {"redacted": dict(sorted(types.items()))}
    if counter is None:
        counter = _counter_of(meta)
    fitted = _fit(out, record, counter, limit, derived, info, contexts)
    if isinstance(fitted, str):
        return fitted
    frame = info.pop("frame", 0)
    if isinstance(meta, dict):
        meta["secrets"] = info
        meta["n_tokens"] = fitted.n_tokens
        if "row_tokens" in meta and frame:
            meta["row_tokens"] = frame + fitted.n_tokens
        if "gold_tokens" in meta:
            meta["gold_tokens"] = sum(p.n_tokens for p in fitted.pieces if not p.is_distractor)
            meta["gold_fraction"] = round(meta["gold_tokens"] / max(1, fitted.n_tokens), 4)
        fitted.meta = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)
    else:
        fitted.meta = meta
    return fitted


def _messages(original, name, derived, sub, render) -> list[dict[str, str]]:
    if not original:
        return original
    if derived[name]:
        return render()
    return [{**m, "content": sub(f"{name}[{i}].content", m.get("content", ""))} for i, m in enumerate(original)]


def _fit(out: ACCRecord, record: ACCRecord, counter, limit: RowLimit, derived, info, contexts=None) -> ACCRecord | str:
    """Exact token counts for the redacted record, within its budget and the length contract (`budget.RowLimit`:
    the frame is recounted, placeholders in the question or answer can change it): distractors are dropped, never
    gold, or the budget is raised as assembly raises it."""
    from dataset_builder.assemble import Assembler, completion_messages, prompt_messages, render_context
    from dataset_builder.context import ContextCounter

    if contexts is None or contexts.counter is not counter:
        contexts = ContextCounter(counter)  # exact counts from the changed documents alone (context.py)
    changed = [i for i, (a, b) in enumerate(zip(record.pieces, out.pieces)) if (a.title, a.text) != (b.title, b.text)]
    contexts.count_documents([out.pieces[i] for i in changed])  # one batch
    for i in changed:
        out.pieces[i] = replace(out.pieces[i], n_tokens=contexts.document(out.pieces[i], i + 1))
    if out.context == record.context:
        out.n_tokens = record.n_tokens
    elif derived["context"] and contexts.composes and composed_from_pieces(record, contexts.join):
        out.n_tokens = record.n_tokens + sum(out.pieces[i].n_tokens - record.pieces[i].n_tokens for i in changed)
    elif derived["context"]:
        out.n_tokens = contexts.context(out.pieces)
    else:
        out.n_tokens = counter.count(out.context)
    try:
        frame = prompt_messages(out.domain, out.question, "")[0]["content"]
        limit = replace(limit, frame=frame_tokens(counter, frame, completion_messages("", out.answer)[0]["content"]))
        info["frame"] = limit.frame
        out.budget = min(out.budget, limit.max_context) if out.budget else out.budget
    except KeyError:  # a domain without a prompt template: the budget alone is enforced
        info["frame"] = 0
    dropped = 0
    while out.budget and out.n_tokens > out.budget:
        if not derived["context"]:
            return f"redacted context of {out.n_tokens} tokens is over its budget {out.budget} (context not rendered)"
        distractors = [i for i, p in enumerate(out.pieces) if p.is_distractor]
        if distractors:
            del out.pieces[distractors[-1]]
            dropped += 1
            out.pieces = Assembler(counter=counter, contexts=contexts).with_token_counts(out.pieces)
        else:
            try:
                out.budget = fit_budget(out.budget, out.n_tokens, limit)
            except BudgetError as err:
                return f"after redaction: {err}"
        out.context = render_context(out.pieces)
        out.n_tokens = contexts.context(out.pieces)
        if derived["prompt"] and out.prompt:
            out.prompt = prompt_messages(out.domain, out.question, out.context)
    if dropped:
        info["distractors_dropped"] = dropped
    return out


def composed_from_pieces(record: ACCRecord, join: int) -> bool:
    """Whether the record's count is its documents' counts plus the joins (as assembly writes it, context.py)."""
    return record.n_tokens == sum(p.n_tokens for p in record.pieces) + join * max(0, len(record.pieces) - 1)


def _counter_of(meta: Any):
    from dataset_builder.assemble import _tokenizer_path
    from dataset_builder.tokens import token_counter

    name = meta.get("tokenizer") if isinstance(meta, dict) else None
    return token_counter(_tokenizer_path(name))


def redact_trace_row(row: dict[str, Any], meta: dict[str, Any], scanner: Scanner | None = None) -> Counter:
    """`acc traces`: redact, in place, what a teacher (or the trajectory) wrote into a dataset row before it is kept:
    `reasoning`, `answer`, the `completion` rendered from them, and the verifier's and traces' notes in `meta` (they
    quote candidates). New values get placeholders not already used in the row. Returns the counts per type."""
    from dataset_builder.assemble import completion_messages

    scanner = scanner or Scanner()
    red = Redactor.continuing(
        [row.get("context", ""), row.get("question", ""), row.get("reasoning", ""), row.get("answer", "")]
    )
    found: Counter = Counter()

    def sub(_path: str, text: str) -> str:
        spans = scanner.scan(text)
        found.update(s.type for s in spans)
        return red.redact(text, spans) if spans else text

    derived = row.get("completion") == completion_messages(row.get("reasoning", ""), row.get("answer", ""))
    row["reasoning"] = sub("reasoning", row.get("reasoning") or "")
    row["answer"] = sub("answer", row.get("answer") or "")
    if derived or not row.get("completion"):
        row["completion"] = completion_messages(row["reasoning"], row["answer"]) if row.get("completion") else []
    else:
        row["completion"] = [{**m, "content": sub("completion", m.get("content", ""))} for m in row["completion"]]
    for key in ("verifier", "traces", "teacher"):
        if key in meta:
            meta[key] = map_strings(meta[key], sub, key)
    if found:
        info = meta.setdefault("secrets", {})
        traces = Counter(info.get("traces_redacted") or {})
        traces.update(found)
        info["traces_redacted"] = dict(sorted(traces.items()))
    return found
