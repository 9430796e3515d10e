"""SWE-agent trajectories: `*.traj` files (legacy <= 0.7 and 1.x layouts) and YAML demonstrations.

Layouts read
* legacy (<= 0.7): `history` messages carry `action` (a raw command line such as "open foo.py 120") and `thought`;
  `trajectory[i].state` is a JSON *string* taken before the action; the observation is the next `user` message.
* 1.x: assistant messages carry OpenAI `tool_calls` (arguments as a JSON string) and `message_type`; observations are
  `role: tool`; `state` is a dict taken after the action; `replay_config` holds the run configuration (repo, base
  commit, model).
* history only (`function_calling_simple.traj`) and the YAML demonstrations (`str_replace_anthropic_demo.yaml`, where
  `tool_calls` / `tool_call_ids` are Python reprs) are read from the history alone.

Steps come from `trajectory` when the file has one: it is what actually ran (it includes the final `submit` that the
history may lack) and its observations carry no shell-prompt tail. The history supplies each step's function-call
arguments, matched by action text. From the history, an observation is the tool/user message after the action with the
"(Open file: ...)\\n(Current directory: ...)\\nbash-$" prompt removed; that prompt also tells which file is open, which
is the file that `edit`, `goto`, `scroll_*`, `insert` and `search_file` act on (put in args["path"]).

Question (what is stripped): the issue text between "ISSUE:" and the template's "INSTRUCTIONS:" section; the text inside
<pr_description> for templates that use it; for EnIGMA CTF tasks everything before "INSTRUCTIONS:" (challenge name,
category, description, files), with meta["task_kind"] = "ctf" and the flag as final answer. Demonstrations inlined in
the history (`is_demo: true`) are skipped.

Final answer: `info.submission`, else the output of the `submit` step. A run without either is rejected (nothing to
verify or compile). Terminal `\\r\\n` line ends (a diff whose every newline is `\\r\\n`) become `\\n`, like the
observations, so that the diff applies to the file text the observations show.

Trajectory.id is the instance id (replay_config's problem_statement id, else the file stem; several demonstrations of
one instance share it). meta: instance_id, exit_status, repo (from the GitHub URL, the SWE-bench id or the
/<owner>__<name> checkout), base_commit (1.x, when a real commit), workdir (the shell's first directory), model, and
resolved + report when a harness report named after a legacy run folder judges the instance.

The helpers at the bottom (clean_observation, clean_patch, repo names, harness reports) are shared with the
mini-swe-agent and OpenHands adapters.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from dataset_builder.adapters.common import (
    TextFileError,
    check_steps,
    load_json,
    parse_python_literal,
    read_text,
    strip_ansi,
)
from dataset_builder.schema import Reject, Step, Trajectory

NAME = "swe-agent"
DOMAIN = "swe"

# Commands of SWE-agent's windowed editor that act on the currently open file.
OPEN_FILE_TOOLS = {"edit", "goto", "scroll_up", "scroll_down", "insert", "set_cursors", "search_file"}
_PROMPT_TAIL = re.compile(r"\n?\(Open file: ([^\n]*)\)\s*\(Current directory: ([^\n]*)\)\s*bash-\$\s*\Z")
_EDIT_RANGE = re.compile(r"edit\s+(\d+):(\d+)\b")


class FormatError(ValueError):
    """The file parses but is not a usable trajectory of the format; the message is the Reject reason."""


def sniff(path: Path, head: str) -> bool:
    if path.suffix == ".traj":
        return '"history"' in head or '"trajectory"' in head
    if path.suffix in (".yaml", ".yml"):
        return re.search(r"^history:\s*$", head, re.M) is not None and "role:" in head
    return False


def read(path: Path) -> Iterator[Trajectory | Reject]:
    origin = str(path)
    try:
        if path.suffix in (".yaml", ".yml"):
            data = _load_yaml(path)
        else:
            data = load_json(path)
        yield trajectory_from_data(data, path)
    except (TextFileError, FormatError) as err:
        yield Reject(origin=origin, reason=str(err), source=NAME, domain=DOMAIN)


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as err:
        raise FormatError(f"invalid YAML: {str(err).splitlines()[0]}") from err


def trajectory_from_data(data: Any, path: Path) -> Trajectory:
    origin = str(path)
    if not isinstance(data, dict):
        raise FormatError(f"not a SWE-agent trajectory: top level is a {type(data).__name__}, expected an object")
    history = data.get("history")
    entries = data.get("trajectory")
    if not isinstance(history, list) or not all(isinstance(m, dict) for m in history):
        raise FormatError("not a SWE-agent trajectory: no 'history' list of messages")
    if entries is not None and (not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries)):
        raise FormatError("'trajectory' is not a list of step objects")
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    replay = _json_dict(data.get("replay_config"))

    messages = [m for m in history if not m.get("is_demo")]
    task = next((m for m in messages if m.get("role") == "user"), None)
    if task is None:
        raise FormatError("no task: the history has no (non-demonstration) user message")
    task_text = clean_observation(_text(task.get("content")))
    tail = _PROMPT_TAIL.search(task_text)
    open_file = _open_file(tail.group(1)) if tail else ""
    is_ctf = task_text.lstrip().startswith("We're currently solving the following CTF challenge")

    if entries:
        steps = _steps_from_trajectory(entries, messages, open_file)
    else:
        steps = _steps_from_history(messages, open_file)
    if not steps:
        raise FormatError("no agent actions: nothing to compile")
    if reason := check_steps(steps):
        raise FormatError(reason)

    exit_status = info.get("exit_status")
    submission = info.get("submission") if isinstance(info.get("submission"), str) else ""
    if not submission.strip():
        submission = next((s.observation for s in reversed(steps) if s.tool == "submit"), "")
    final = submission.strip() if is_ctf else clean_patch(submission)
    if not final.strip():
        raise FormatError(f"no submission (exit_status={exit_status!r}): the run produced no patch to compile")

    instance_id = str((replay.get("problem_statement") or {}).get("id") or path.stem)
    workdir = (tail.group(2).strip() if tail else "") or _first_working_dir(entries or []) or _replay_workdir(replay)
    repo_cfg = (replay.get("env") or {}).get("repo") or {}
    meta: dict[str, Any] = {"instance_id": instance_id}
    if exit_status:
        meta["exit_status"] = exit_status
    if is_ctf:
        meta["task_kind"] = "ctf"
    else:
        repo = repo_from_url(repo_cfg.get("github_url", "")) or repo_from_instance_id(instance_id)
        if repo := repo or repo_from_workdir(workdir):
            meta["repo"] = repo
    if is_commit(repo_cfg.get("base_commit")):
        meta["base_commit"] = repo_cfg["base_commit"]
    if workdir:
        meta["workdir"] = workdir
    model = ((replay.get("agent") or {}).get("model") or {}).get("name") or _model_from_run_dir(path.parent.name)
    if model:
        meta["model"] = model
    # legacy runs write all_preds.jsonl with model_name_or_path = the run folder's name, which names the harness report
    if not is_ctf and _model_from_run_dir(path.parent.name):
        if verdict := harness_resolved(path, instance_id, path.parent.name):
            meta["resolved"], meta["report"] = verdict
    return Trajectory(
        id=instance_id,
        source=NAME,
        domain=DOMAIN,
        question=_question(task_text, is_ctf),
        steps=steps,
        final_answer=final,
        reasoning=next((s.thought for s in reversed(steps) if s.thought.strip()), ""),
        origin=origin,
        meta=meta,
    )


def _steps_from_trajectory(entries: list[dict], messages: list[dict], open_file: str) -> list[Step]:
    assistant = [m for m in messages if m.get("role") == "assistant"]
    steps, k = [], 0
    for entry in entries:
        action = _text(entry.get("action"))
        if not action.strip():
            continue
        calls: list = []
        for j in range(k, len(assistant)):  # the history may lack steps (final submit) or order them differently
            if assistant[j].get("action") == action:
                calls, k = _tool_calls(assistant[j]), j + 1
                break
        # legacy states (JSON strings) were taken before the action, 1.x states (dicts) after it
        state = _json_dict(entry.get("state"))
        if isinstance(entry.get("state"), str):
            open_file = _open_file(state.get("open_file")) or open_file
        steps.append(_step(action, calls, entry.get("observation"), _text(entry.get("thought")), open_file))
        if isinstance(entry.get("state"), dict):
            open_file = _open_file(state.get("open_file")) or open_file
    return steps


def _steps_from_history(messages: list[dict], open_file: str) -> list[Step]:
    steps = []
    for i, msg in enumerate(messages):
        if msg.get("role") != "assistant":
            continue
        calls = _tool_calls(msg)
        action = _text(msg.get("action"))
        if not action.strip() and calls:
            action = str((calls[0].get("function") or {}).get("name") or "")
        if not action.strip():
            continue
        reply = messages[i + 1] if i + 1 < len(messages) and messages[i + 1].get("role") in ("tool", "user") else {}
        text = clean_observation(_text(reply.get("content")))
        tail = _PROMPT_TAIL.search(text)
        thought = _text(msg.get("thought")) or _text(msg.get("content"))
        steps.append(_step(action, calls, text[: tail.start()] if tail else text, thought, open_file))
        if tail:
            open_file = _open_file(tail.group(1)) or open_file
    return steps


def _step(action: str, calls: list, observation: Any, thought: str, open_file: str) -> Step:
    if calls:
        tool, args = function_call_args(calls[0], action, open_file)
        call_id = str(calls[0].get("id") or "")
    else:
        tool, args = command_args(action, open_file)
        call_id = ""
    obs = clean_observation(_text(observation))
    if tail := _PROMPT_TAIL.search(obs):
        obs = obs[: tail.start()]
    return Step(tool=tool, args=args, observation=obs, thought=thought, call_id=call_id)


def command_args(action: str, open_file: str = "") -> tuple[str, dict[str, Any]]:
    """Tool name and arguments of a legacy SWE-agent command line ("open foo.py 120", "edit 3:5\\n...\\nend_of_edit")."""
    command = action.strip()
    first_line, _, body = command.partition("\n")
    words = _split(first_line)
    tool = words[0] if words else first_line.split(" ", 1)[0]
    args: dict[str, Any] = {"command": command}
    if tool in ("open", "create") and len(words) > 1:
        args["path"] = words[1]
        if tool == "open" and len(words) > 2 and words[2].isdigit():
            args["line_number"] = int(words[2])
    elif tool == "edit" and re.match(r"edit\s+['\"]", first_line):  # 1.x edit_replace: edit 'search' 'replace' [all]
        for key, value in zip(("search", "replace", "replace-all"), _split(command)[1:]):
            args[key] = value
    elif tool == "edit":  # edit START:END (or the cursor range) + replacement lines + end_of_edit
        if m := _EDIT_RANGE.match(first_line):
            args["start_line"], args["end_line"] = int(m.group(1)), int(m.group(2))
        args["replacement"] = body.removesuffix("end_of_edit").removesuffix("\n")
    elif tool == "insert":
        parts = _split(command)
        if len(parts) > 1:
            args["text"] = parts[1]
        if len(parts) > 2 and parts[2].isdigit():
            args["line"] = int(parts[2])
    elif tool == "goto" and len(words) > 1 and words[1].isdigit():
        args["line_number"] = int(words[1])
    elif tool in ("search_file", "search_dir", "find_file") and len(words) > 1:
        args["file_name" if tool == "find_file" else "search_term"] = words[1]
        if len(words) > 2:
            args["path" if tool == "search_file" else "dir"] = words[2]
    if tool in OPEN_FILE_TOOLS and open_file:
        args.setdefault("path", open_file)
    return tool, args


def function_call_args(call: dict, action: str, open_file: str = "") -> tuple[str, dict[str, Any]]:
    """Tool name and arguments of a 1.x function call; "command" keeps the command line SWE-agent ran."""
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    name = str(function.get("name") or "")
    raw = function.get("arguments")
    args: dict[str, Any] = {}
    if isinstance(raw, dict):
        args = dict(raw)
    elif isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
            args = parsed if isinstance(parsed, dict) else {"arguments": raw}
        except json.JSONDecodeError:
            args = {"arguments": raw}
    if "filename" in args and "path" not in args:
        args["path"] = args["filename"]
    args.setdefault("command", action.strip() or name)
    if name in OPEN_FILE_TOOLS and open_file:
        args.setdefault("path", open_file)
    return name or (_split(action) or [""])[0], args


def _tool_calls(msg: dict) -> list[dict]:
    calls = msg.get("tool_calls")
    if isinstance(calls, str):  # YAML demonstrations keep the Python repr of the list
        try:
            calls = parse_python_literal(calls)
        except (ValueError, SyntaxError):
            return []
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _question(task_text: str, is_ctf: bool) -> str:
    text = task_text
    if tail := _PROMPT_TAIL.search(text):
        text = text[: tail.start()]
    if m := re.search(r"<pr_description>\s*(.*?)\s*</pr_description>", text, re.S):
        return m.group(1).strip()
    cut = text.rfind("\nINSTRUCTIONS:")
    if cut >= 0:
        text = text[:cut]
    if not is_ctf and (start := text.find("ISSUE:\n")) >= 0:
        text = text[start + len("ISSUE:\n") :]
    return text.strip()


def _json_dict(value: Any) -> dict:
    """A dict that SWE-agent stored either as a dict (1.x) or as a JSON string (legacy `state`, `replay_config`)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _first_working_dir(entries: list[dict]) -> str:
    for entry in entries:
        if wd := _json_dict(entry.get("state")).get("working_dir"):
            return str(wd)
    return ""


def _replay_workdir(replay: dict) -> str:
    """SWE-agent 1.x puts the repository at /<repo_name>: the folder name of a local path, owner__name for GitHub."""
    repo = (replay.get("env") or {}).get("repo") or {}
    if name := repo.get("repo_name"):
        return "/" + str(name)
    if path := repo.get("path"):
        return "/" + Path(str(path)).name
    if repo_name := repo_from_url(repo.get("github_url", "")):
        return "/" + repo_name.replace("/", "__")
    return ""


def _model_from_run_dir(name: str) -> str:
    """Legacy run folders are named <model>__<data>__<config>__t-<temperature>__p-<top_p>__c-<cost>__install-<n>."""
    m = re.match(r"(.+?)__.+__t-[\d.]+__p-[\d.]+", name)
    return m.group(1) if m else ""


def _open_file(value: Any) -> str:
    value = str(value or "").strip()
    return "" if value in ("n/a", "None") else value


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes in a command the agent mistyped
        return text.split()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # content parts
        return "\n".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in value)
    return value if isinstance(value, str) else str(value)


# ---- helpers shared by the SWE adapters -------------------------------------------------------------------------


def clean_observation(text: str) -> str:
    """Observation text as the compilers want it: no ANSI escapes, `\\n` line ends."""
    return strip_ansi(text).replace("\r\n", "\n")


def clean_patch(patch: str) -> str:
    """A submitted diff: leading blank lines dropped; terminal `\\r\\n` line ends (every newline) turned into `\\n`."""
    if patch.count("\r\n") and patch.count("\r\n") == patch.count("\n"):
        patch = patch.replace("\r\n", "\n")
    return re.sub(r"\A(?:[ \t]*\r?\n)+", "", patch)


def is_commit(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{7,40}", value) is not None


def repo_from_instance_id(instance_id: str) -> str:
    """SWE-bench ids are <owner>__<name>-<number> ("pylint-dev__astroid-1978" -> "pylint-dev/astroid")."""
    m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9-]*)__([A-Za-z0-9._-]+)-\d+", instance_id or "")
    return f"{m.group(1)}/{m.group(2)}" if m else ""


def repo_from_workdir(workdir: str) -> str:
    """SWE-agent checks a GitHub repository out at /<owner>__<name>."""
    m = re.fullmatch(r"/([A-Za-z0-9][A-Za-z0-9-]*)__([A-Za-z0-9._-]+)/?", workdir or "")
    return f"{m.group(1)}/{m.group(2)}" if m else ""


def repo_from_url(url: str) -> str:
    m = re.match(r"https?://github\.com/([^/\s]+)/([^/\s#?]+)", url or "")
    return f"{m.group(1)}/{m.group(2).removesuffix('.git')}" if m else ""


REPORT_LEVELS = 4  # the trajectory's folder and three above it
MAX_REPORT_BYTES = 64 * 1024 * 1024


def harness_resolved(traj_path: Path, instance_id: str, model: str) -> tuple[bool, str] | None:
    """(resolved, report path relative to the trajectory's folder) from the nearest SWE-bench harness report of this
    run, or None when there is none. The path is relative so that published records name no local directories.

    The harness writes `<model_name_or_path with / as __>.<run_id>.json` with `resolved_ids` / `unresolved_ids`. When
    the trajectory names its model, only reports named after that model are used: runs of other models often sit in
    sibling folders under the same ancestors with the same instance ids, and their verdicts must not leak onto this
    run. A trajectory that records no model takes the nearest report of any name.
    """
    if not instance_id:
        return None
    prefix = model.replace("/", "__") + "." if model else ""
    home = folder = traj_path.resolve().parent
    for _ in range(REPORT_LEVELS):
        for name, resolved, unresolved in _reports_in(str(folder), prefix):
            if instance_id in resolved or instance_id in unresolved:
                return instance_id in resolved, Path(os.path.relpath(folder / name, home)).as_posix()
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


@lru_cache(maxsize=256)
def _reports_in(folder: str, prefix: str) -> tuple[tuple[str, frozenset, frozenset], ...]:
    """(file name, resolved ids, unresolved ids) of the harness reports named `<prefix>*.json` directly in `folder`."""
    found = []
    try:
        candidates = sorted(p for p in Path(folder).glob("*.json") if p.name.startswith(prefix) and p.is_file())
    except OSError:
        return ()
    for path in candidates:
        if path.name.endswith(".traj.json"):
            continue
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                continue
            with open(path, "rb") as f:  # reports open with their counts; skip other JSON without parsing it
                head = f.read(4096)
            if b'"total_instances"' not in head and b'"resolved_ids"' not in head:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("resolved_ids"), list):
            unresolved = data.get("unresolved_ids") if isinstance(data.get("unresolved_ids"), list) else []
            found.append((path.name, frozenset(map(str, data["resolved_ids"])), frozenset(map(str, unresolved))))
    return tuple(found)
