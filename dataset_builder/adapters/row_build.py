"""One dataset row -> one Trajectory: the part every row layout shares.

A layout adapter turns its turns cell into `Turn`s (role system/user/assistant/tool, text, structured calls); this
module does the rest, the same way for every layout:

1. calls: the structured ones, else the actions written in the assistant text (text_actions.py, dialect detected
   per row); a call's observation is the tool turn that answers it (by call id, else the oldest unanswered call),
   or the user turn right after it;
2. tool names and arguments through the one table of tool_kinds.py;
3. domain: the row's `domain`, else sql for SQL tools, search for search/page tools, swe for shells and editors
   (or a patch column);
4. question: the question column, else the first user turn (an instruction turn answered by a bare "OK" gives way
   to the next user turn), boilerplate stripped (<pr_description>, SWE-agent ISSUE: ... INSTRUCTIONS:);
5. answer. swe: the stored patch when it touches a file the run saw or edited; a stored patch that touches only
   files the run never mentions belongs to another run (seen in published samples): the patch is then derived
   from the run's own edits (edit_patch.py) or left empty with the reason in meta["patch_problem"] (the record is
   rejected with it unless a task table supplies the gold patch). No stored patch: derived from the edits, or the
   same. sql / search: the final answer (a finish call, `Final Answer:`, else the closing assistant text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dataset_builder.adapters import text_actions, tool_kinds
from dataset_builder.adapters.common import check_steps, inside_task_tags
from dataset_builder.adapters.row_fields import RowFields, instance_id, repo_of
from dataset_builder.adapters.swe_agent import clean_observation, clean_patch
from dataset_builder.schema import DOMAINS, Reject, Step, Trajectory

SWE_KINDS = {"shell", "editor", "swe_agent", "python"}
ACK = re.compile(r"^\s*(ok|okay|sure|understood|got it)[.!]?\s*$", re.I)
AGENTTUNING_DB = "operate a MySQL database"


@dataclass
class Call:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass
class Turn:
    role: str  # system | user | assistant | tool
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    call_id: str = ""  # tool turns: the call they answer
    name: str = ""  # tool turns: the tool's name


def build(turns: list[Turn], fields: RowFields, source: str, origin: str, default_id: str) -> Trajectory | Reject:
    def reject(reason: str, domain: str = "") -> Reject:
        return Reject(origin=origin, reason=reason, source=source, domain=domain or domain_hint(turns, fields))

    if not turns:
        return reject("the turns list is empty or holds no readable turn")
    dialect = ""
    finals: list[str] = []
    if not any(c for t in turns if t.role == "assistant" for c in t.calls):
        dialect = text_actions.detect([t.text for t in turns if t.role == "assistant"])
        if dialect:
            for t in turns:
                if t.role == "assistant":
                    calls, final = text_actions.parse(dialect, t.text)
                    t.calls = [Call(c.name, c.args) for c in calls]
                    t.text = text_actions.thought_before(dialect, t.text) if calls else t.text
                    if final:
                        finals.append(final)
    steps, closing = pair_steps(turns)
    finish_args = [s.args for s in steps if tool_kinds.kind_of(s.tool) == "finish" and s.tool != "submit"]
    steps = [s for s in steps if tool_kinds.kind_of(s.tool) != "finish" or s.tool == "submit"]
    if problem := check_steps(steps):
        return reject(problem)
    if not steps:
        how = (
            f" ({dialect} actions in the text: none parsed)" if dialect else " (no tool calls, no actions in the text)"
        )
        return reject(f"no tool steps: the agent ran no tool{how}")
    domain = fields.domain or infer_domain(steps, fields)
    if domain not in DOMAINS:
        return reject(
            f"unknown domain {domain!r}" if domain else "cannot infer the domain from the tools; pass --domain"
        )
    question = fields.question or task_turn(turns)
    question = swe_issue(question) if domain == "swe" else inside_task_tags(question)
    if not question.strip():
        return reject("no question (no question column and no user turn)", domain)

    run_id = fields.id or default_id
    instance = instance_id(run_id)
    meta: dict[str, Any] = {"instance_id": instance, "layout": source}
    if dialect:
        meta["text_actions"] = dialect
    if fields.resolved is not None:
        meta["resolved"] = fields.resolved
    for key, value in (("repo", fields.repo or (repo_of(instance) if domain == "swe" else "")),
                       ("base_commit", fields.base_commit), ("model", fields.model), ("db_id", fields.db_id)):  # fmt: skip
        if value:
            meta[key] = value
    meta.update(fields.extra)
    if domain == "sql" and "engine" not in meta and any(AGENTTUNING_DB in t.text for t in turns if t.role == "user"):
        meta["engine"] = "mysql"
    if fields.gold:
        meta["gold_kind"] = fields.gold_kind or {"swe": "patch", "sql": "sql"}.get(domain, "answer")

    if domain == "swe":
        from dataset_builder.adapters.edit_patch import guess_workdir

        if workdir := guess_workdir(steps):
            meta["workdir"] = workdir
        answer = swe_answer(steps, fields, meta)
    else:
        finish = next((str(a.get("answer") or a.get("message") or "") for a in reversed(finish_args)), "")
        answer = fields.answer or (finals[-1] if finals else "") or finish or _after_final(closing)
    return Trajectory(
        id=run_id,
        source=source,
        domain=domain,
        question=question.strip(),
        steps=steps,
        final_answer=answer,
        gold=fields.gold,
        reasoning=next((s.thought for s in reversed(steps) if s.thought.strip()), "") if domain == "swe" else "",
        origin=origin,
        meta=meta,
    )


def pair_steps(turns: list[Turn]) -> tuple[list[Step], str]:
    """Steps in call order with their observations, and the closing assistant text (after the last call)."""
    steps: list[Step] = []
    by_id: dict[str, Step] = {}
    pending: list[Step] = []
    closing = ""
    previous = ""
    for turn in turns:
        if turn.role == "assistant":
            for k, call in enumerate(turn.calls):
                tool, args = tool_kinds.normalize(call.name, call.args)
                step = Step(tool=tool, args=args, thought=turn.text.strip() if k == 0 else "", call_id=call.id)
                steps.append(step)
                pending.append(step)
                if call.id:
                    by_id[call.id] = step
            closing = "" if turn.calls else turn.text
        elif turn.role == "tool" or (turn.role == "user" and pending and previous == "assistant"):
            target = by_id.get(turn.call_id) if turn.call_id else None
            if target is None and turn.name:
                wanted = tool_kinds.normalize(turn.name, {})[0]
                target = next((s for s in pending if s.tool == wanted), None)
            target = target or (pending[0] if pending else None)
            if target is not None:
                text = clean_observation(turn.text)
                target.observation = f"{target.observation}\n{text}" if target.observation else text
                if target in pending:
                    pending.remove(target)
        previous = turn.role
    return steps, closing


def infer_domain(steps: list[Step], fields: RowFields) -> str:
    kinds = [tool_kinds.kind_of(s.tool) for s in steps]
    if any(k in ("run_sql", "sql_schema") for k in kinds) or fields.db_id:
        return "sql"
    n_search = sum(k in ("search", "open_page") for k in kinds)
    n_swe = sum(k in SWE_KINDS for k in kinds)
    if fields.patch is not None or fields.base_commit:
        return "swe"
    if n_search == n_swe:
        return ""
    return "search" if n_search > n_swe else "swe"


def domain_hint(turns: list[Turn], fields: RowFields) -> str:
    """The domain a row belongs to from its columns alone (for rejects made before any tool is seen)."""
    if fields.domain:
        return fields.domain
    if fields.patch is not None or fields.base_commit:
        return "swe"
    if fields.db_id or any(AGENTTUNING_DB in t.text for t in turns if t.role == "user"):
        return "sql"
    return ""


def task_turn(turns: list[Turn]) -> str:
    """The first user turn, or the one after it when the first is an instruction the assistant just acknowledged."""
    users = [i for i, t in enumerate(turns) if t.role == "user"]
    if not users:
        return ""
    i = users[0]
    nxt = turns[i + 1] if i + 1 < len(turns) else None
    if nxt is not None and nxt.role == "assistant" and not nxt.calls and ACK.match(nxt.text) and len(users) > 1:
        return turns[users[1]].text
    return turns[i].text


def swe_issue(text: str) -> str:
    """The issue of a SWE task prompt: inside <pr_description>/<issue_description>, or SWE-agent's ISSUE: section."""
    inner = inside_task_tags(text)
    if inner != text.strip():
        return inner
    if (start := text.find("ISSUE:\n")) >= 0:
        end = text.find("\nINSTRUCTIONS:", start)
        return text[start + len("ISSUE:\n") : end if end > 0 else None].strip()
    return text.strip()


def _after_final(text: str) -> str:
    head, marker, tail = (text or "").rpartition("Final answer:")
    return tail.strip() if marker else (text or "").strip()


# ---------------------------------------------------------------- the SWE patch


def swe_answer(steps: list[Step], fields: RowFields, meta: dict[str, Any]) -> str:
    """The run's patch (see the module docstring, point 5); "" with meta["patch_problem"] when there is none."""
    from dataset_builder.adapters.edit_patch import derive_patch
    from dataset_builder.domains import CompileError
    from dataset_builder.domains.swe import is_diff, parse_patch

    stored = clean_patch(fields.patch or "")
    mismatch = ""
    if stored.strip() and is_diff(stored):
        try:
            files = [fp.path for fp in parse_patch(stored)]
        except CompileError as err:
            files, mismatch = [], str(err)
        if files and any(mentioned(path, steps) for path in files):
            return stored
        mismatch = mismatch or (
            f"the stored patch touches only files the run never saw or edited ({', '.join(files[:5])}): "
            "a patch of another run"
        )
    elif stored.strip():
        mismatch = f"the stored patch is not a unified diff (it starts {stored.strip()[:40]!r})"
    derived, why = derive_patch(steps)
    if derived:
        meta["patch_from"] = "edits"
        if mismatch:
            meta["patch_note"] = mismatch + "; used the run's own edits"
        return derived
    stored_state = mismatch or ("no patch column" if fields.patch is None else "the patch column is empty")
    meta["patch_problem"] = f"{stored_state}, and no patch from the run's edits: {why}"
    return ""


def mentioned(path: str, steps: list[Step]) -> bool:
    """Whether a run saw or touched a file: its path, or its file name as a word, in a call or an observation."""
    name = path.rsplit("/", 1)[-1]
    word = re.compile(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-])")
    for step in steps:
        text = f"{step.args}\n{step.observation}"
        if path in text or word.search(text):
            return True
    return False
