"""Actions written in assistant text, for datasets that keep no structured tool calls.

Dialects (`parse(dialect, text) -> (calls, final answer)`; the observation of a call is the next user/tool turn):

    swe-agent   the last fenced block of the message is one SWE-agent command line:
                    Let's open the file.
                    ```
                    open plumbum/cli/image.py
                    ```
    xml         OpenHands / SWE-smith function calls, possibly several per message:
                    <function=str_replace_editor>
                    <parameter=command>view</parameter>
                    <parameter=path>/workspace/repo/a.py</parameter>
                    </function>
    react       ReAct:  Action: web_search  /  Action Input: {"query": "..."} (JSON or plain text)
                and the bracket form  Action: Search[Creed (band)]  /  Final Answer: ...
    agenttuning AgentTuning DB / OS:  Action: Operation + a fenced ```sql block (one statement);
                Action: Answer + Final Answer: [...]

`detect(texts)` picks the dialect that parses the most assistant messages ("" when none does). A message whose
action cannot be parsed yields no call; the run goes on from the next message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from dataset_builder.adapters.swe_agent import command_args

DIALECTS = ("xml", "agenttuning", "react", "swe-agent")

FENCE = re.compile(r"^```[ \t]*([\w+-]*)[ \t]*\n(.*?)\n?^```[ \t]*$", re.M | re.S)
XML_CALL = re.compile(r"<function=([\w.:-]+)>(.*?)(?:</function>|\Z)", re.S)
XML_PARAM = re.compile(r"<parameter=([\w.-]+)>(.*?)</parameter>", re.S)
REACT_ACTION = re.compile(r"^\s*Action\s*\d*\s*:\s*(.+?)\s*$", re.M)
REACT_INPUT = re.compile(
    r"^\s*Action\s+Input\s*\d*\s*:\s*(.*?)(?=^\s*(?:Observation|Thought|Action)\b|\Z)", re.M | re.S
)
BRACKET = re.compile(r"^(\w+)\[(.*)\]$", re.S)
FINAL = re.compile(r"Final Answer\s*:\s*(.*)\Z", re.S)
AT_OPERATION = re.compile(r"^\s*Action\s*:\s*Operation\s*$", re.M)
AT_ANSWER = re.compile(r"^\s*Action\s*:\s*Answer\s*$", re.M)


@dataclass
class TextCall:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


def parse(dialect: str, text: str) -> tuple[list[TextCall], str]:
    """(calls, final answer) written in one assistant message."""
    text = text or ""
    if dialect == "xml":
        return _xml(text), ""
    if dialect == "agenttuning":
        return _agenttuning(text)
    if dialect == "react":
        return _react(text)
    if dialect == "swe-agent":
        return _swe_agent(text), ""
    return [], ""


def detect(texts: list[str]) -> str:
    best, best_n = "", 0
    for dialect in DIALECTS:
        n = sum(1 for t in texts if parse(dialect, t)[0] or (dialect != "swe-agent" and parse(dialect, t)[1]))
        if n > best_n:
            best, best_n = dialect, n
    return best


def thought_before(dialect: str, text: str) -> str:
    """The reasoning text before the action (what the message says besides the call)."""
    cut = {
        "xml": text.find("<function="),
        "agenttuning": min((m.start() for m in (AT_OPERATION.search(text), AT_ANSWER.search(text)) if m), default=-1),
        "react": (m.start() if (m := REACT_ACTION.search(text)) else -1),
        "swe-agent": (list(FENCE.finditer(text))[-1].start() if FENCE.search(text) else -1),
    }.get(dialect, -1)
    return (text[:cut] if cut >= 0 else text).strip()


def _xml(text: str) -> list[TextCall]:
    calls = []
    for m in XML_CALL.finditer(text):
        args: dict[str, Any] = {}
        for p in XML_PARAM.finditer(m.group(2)):
            value = p.group(2).strip("\n")
            args[p.group(1)] = _json_value(value) if p.group(1) in ("view_range", "insert_line") else value
        calls.append(TextCall(m.group(1), args))
    return calls


def _json_value(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _agenttuning(text: str) -> tuple[list[TextCall], str]:
    if m := AT_OPERATION.search(text):
        block = FENCE.search(text, m.end())
        if block and block.group(2).strip():
            return [TextCall("Operation", {"sql": block.group(2).strip()})], ""
        return [], ""
    if AT_ANSWER.search(text) and (m := FINAL.search(text)):
        return [], m.group(1).strip()
    return [], ""


def _react(text: str) -> tuple[list[TextCall], str]:
    action = REACT_ACTION.search(text)
    if action is None:
        final = FINAL.search(text)
        return [], final.group(1).strip() if final else ""
    name = action.group(1).strip()
    if m := BRACKET.match(name):
        if m.group(1).lower() == "finish":
            return [], m.group(2).strip()
        return [TextCall(m.group(1), {"query": m.group(2).strip(), "entity": m.group(2).strip()})], ""
    if name.lower() in ("operation", "answer"):  # AgentTuning, not ReAct
        return [], ""
    raw = (m.group(1).strip() if (m := REACT_INPUT.search(text, action.end())) else "").strip("` \n")
    parsed = _json_value(raw) if raw[:1] in ("{", "[") else raw
    args = parsed if isinstance(parsed, dict) else {"input": raw, "query": raw}
    if name.lower() in ("final answer", "finish", "final_answer"):
        return [], str(args.get("answer") or raw)
    return [TextCall(name, args)], ""


def _swe_agent(text: str) -> list[TextCall]:
    blocks = list(FENCE.finditer(text))
    if not blocks:
        return []
    command = blocks[-1].group(2).strip()
    if not command or blocks[-1].group(1) not in ("", "bash", "sh", "shell"):
        return []
    tool, args = command_args(command)
    if tool in ("open", "goto", "scroll_up", "scroll_down", "create", "edit", "insert", "append", "submit",
                "find_file", "search_dir", "search_file"):  # fmt: skip
        return [TextCall(tool, args)]
    return [TextCall("bash", {"command": command})]
