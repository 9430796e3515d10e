"""A unified diff rebuilt from the edits a SWE run made, for rows that store no (usable) final patch.

    derive_patch(steps) -> (diff, "") | ("", why not)

The base text of each edited file is what the run saw before changing it (the views of swe_views.replay_steps:
windows, `cat -n` style views, partial ones included). The edits are replayed on it in order, as the tools did:

- str_replace_editor `str_replace` (old_str must occur exactly once in the text seen so far), `insert`
  (after insert_line), `create` of a new file (skipped: scripts the agent wrote for itself are not the fix);
- SWE-agent `edit START:END` + replacement lines (the lines are those of the file as it is at that step).

Edits whose observation says they were not applied are skipped. A file changed any other way (shell redirection,
`sed -i`, a script, git) cannot be replayed: no patch (with that reason), never a guess. Hunks carry up to three
lines of context, only lines whose base text the run saw; a changed or removed base line the run never saw means no
patch. Paths are repository-relative (the repository root is the first directory the run listed, else the
`/workspace/<name>` or `/<name>` folder of the edited paths).
"""

from __future__ import annotations

import difflib
import posixpath
import re
from typing import Any

from dataset_builder.domains.swe_views import NOT_APPLIED, WINDOW_HEADER, replay_steps
from dataset_builder.schema import Step

CONTEXT = 3
EDITOR_TOOLS = {"str_replace_editor", "str_replace_based_edit_tool", "file_editor", "text_editor", "edit_file"}


class CannotDerive(ValueError):
    pass


def derive_patch(steps: list[Step]) -> tuple[str, str]:
    edits = list(_edits(steps))
    if not edits:
        return "", "the run made no editor edits"
    workdir = guess_workdir(steps, [e[1] for e in edits])
    replay = replay_steps(steps, workdir)
    files: dict[str, list[Any]] = {}  # path -> current lines: int (base line number) or str (new text)
    base: dict[str, dict[int, str]] = {}
    created: set[str] = set()
    edit_steps: dict[str, set[int]] = {}
    try:
        for i, raw_path, action, args in edits:
            path = _relative(raw_path, workdir)
            if path in created:
                continue
            if path not in files:
                if action == "create":
                    created.add(path)
                    continue
                base[path], files[path] = _base_text(replay, path)
            edit_steps.setdefault(path, set()).add(i)
            _apply(files[path], base[path], action, args, path)
        for path in files:
            first_other = replay.changed.get(path)
            if first_other is not None and first_other not in edit_steps[path]:
                raise CannotDerive(f"{path} was changed at step {first_other + 1} by a command that cannot be replayed")
            if replay.changed_all is not None and replay.changed_all < max(edit_steps[path]):
                raise CannotDerive(f"a command at step {replay.changed_all + 1} may have changed every file")
        diff = "".join(_file_diff(path, base[path], files[path]) for path in sorted(files))
    except CannotDerive as err:
        return "", str(err)
    if not diff:
        return "", "the edits leave every file as it was"
    return diff, ""


def _edits(steps: list[Step]):
    """(step index, path, action, args) of each applied edit."""
    for i, step in enumerate(steps):
        obs = step.observation or ""
        if NOT_APPLIED.search(obs[:2000]):
            continue
        tool = step.tool.lower()
        if tool in EDITOR_TOOLS:
            action = str(step.args.get("command") or "")
            path = str(step.args.get("path") or "")
            if action in ("str_replace", "insert", "create") and path:
                yield i, path, action, step.args
        elif tool == "edit" and ("start_line" in step.args or "replacement" in step.args):
            header = WINDOW_HEADER.search(obs)
            path = header.group(1) if header else str(step.args.get("path") or "")
            if path:
                yield i, path, "lines", step.args


def guess_workdir(steps: list[Step], edited: list[str] | None = None) -> str:
    """The repository root in the agent's environment: the first directory it listed or worked in, else the
    /workspace/<name> (or /<name>) folder of the absolute paths it edited or viewed."""
    if edited is None:
        edited = [str(s.args.get("path")) for s in steps if str(s.args.get("path") or "").startswith("/")]
    for step in steps:
        obs = step.observation or ""
        if m := re.search(r"files and directories up to \d+ levels deep in (/\S+?),? excluding", obs):
            return posixpath.normpath(m.group(1))
        if m := re.search(r"^\(Current directory: (/[^)\n]*)\)", obs, re.M):
            return posixpath.normpath(m.group(1))
    absolute = [p for p in edited if p.startswith("/")]
    if not absolute:
        return ""
    parts = absolute[0].strip("/").split("/")
    return "/" + "/".join(
        parts[:2] if parts[0] in ("workspace", "home", "repo", "src") and len(parts) > 2 else parts[:1]
    )


def _relative(path: str, workdir: str) -> str:
    norm = posixpath.normpath(path)
    if norm.startswith("/"):
        if not workdir or not norm.startswith(workdir.rstrip("/") + "/"):
            raise CannotDerive(f"{path} is outside the repository {workdir or '(unknown root)'}")
        norm = norm[len(workdir.rstrip("/")) + 1 :]
    if norm.startswith("../") or norm in ("..", "."):
        raise CannotDerive(f"{path} is outside the repository")
    return norm


def _base_text(replay, path: str) -> tuple[dict[int, str], list[Any]]:
    known: dict[int, str] = {}
    total = None
    for view in replay.base_views(path):
        for k, line in enumerate(view.lines):
            known.setdefault(view.start + k, line)
        total = total or view.total
    if not known:
        raise CannotDerive(f"{path}: the run edited it without viewing it first (no base text)")
    last = total or max(known)
    return known, list(range(1, last + 1))


def _texts(lines: list[Any], base: dict[int, str]) -> list[str | None]:
    return [base.get(x) if isinstance(x, int) else x for x in lines]


def _apply(lines: list[Any], base: dict[int, str], action: str, args: dict[str, Any], path: str) -> None:
    if action == "lines":
        start = _int(args.get("start_line"))
        end = _int(args.get("end_line"))
        text = args.get("replacement", args.get("replacement_text", ""))
        if start is None or end is None or not (1 <= start <= end + 1) or end > len(lines):
            raise CannotDerive(f"{path}: edit range {start}:{end} outside the text seen")
        text = str(text).removesuffix("\n")  # SWE-agent's edit block ends with a newline before end_of_edit
        new = text.split("\n") if text else []
        lines[start - 1 : end] = new
    elif action == "insert":
        after = _int(args.get("insert_line"))
        if after is None or not 0 <= after <= len(lines):
            raise CannotDerive(f"{path}: insert_line {args.get('insert_line')!r} outside the text seen")
        lines[after:after] = str(args.get("new_str") or "").split("\n")
    elif action == "str_replace":
        _str_replace(lines, base, str(args.get("old_str") or ""), str(args.get("new_str") or ""), path)


def _str_replace(lines: list[Any], base: dict[int, str], old: str, new: str, path: str) -> None:
    if not old:
        raise CannotDerive(f"{path}: str_replace without old_str")
    texts = _texts(lines, base)
    matches = []
    k = 0
    while k < len(texts):  # search each run of lines whose text is known
        if texts[k] is None:
            k += 1
            continue
        end = k
        while end < len(texts) and texts[end] is not None:
            end += 1
        run = "\n".join(texts[k:end])
        offsets = [0]
        for t in texts[k:end]:
            offsets.append(offsets[-1] + len(t) + 1)
        for m in re.finditer(re.escape(old), run):
            first = max(j for j in range(end - k) if offsets[j] <= m.start())
            last = max(j for j in range(end - k) if offsets[j] <= max(m.end() - 1, m.start()))
            matches.append((k + first, k + last, m.start() - offsets[first], m.end() - offsets[first]))
        k = end
    if len(matches) != 1:
        what = "not found in" if not matches else f"found {len(matches)} times in"
        raise CannotDerive(f"{path}: the replaced text is {what} the text the run saw")
    first, last, start, stop = matches[0]
    joined = "\n".join(texts[first : last + 1])
    lines[first : last + 1] = (joined[:start] + new + joined[stop:]).split("\n")


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip().strip('"'))
    except ValueError:
        return None


def _file_diff(path: str, base: dict[int, str], lines: list[Any]) -> str:
    """Unified diff of the base text and the edited lines; unseen base lines compare by number, never by text."""
    n_old = max([x for x in lines if isinstance(x, int)] + list(base) + [0])
    old = [base.get(n, ("unseen", n)) for n in range(1, n_old + 1)]
    new = [x if isinstance(x, str) else base.get(x, ("unseen", x)) for x in lines]
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(CONTEXT):
        group = _known_context(group, old)
        i1, j1 = group[0][1], group[0][3]
        i2, j2 = group[-1][2], group[-1][4]
        body: list[str] = []
        for tag, a1, a2, b1, b2 in group:
            for k in range(a1, a2):
                if not isinstance(old[k], str):
                    raise CannotDerive(f"{path}: the edit changes line {k + 1}, which the run never saw")
                if tag != "insert":
                    body.append((" " if tag == "equal" else "-") + old[k])
            if tag in ("replace", "insert"):
                body += ["+" + str(x) for x in new[b1:b2]]
        out.append(f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@\n" + "\n".join(body) + "\n")
    if not out:
        return ""
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n" + "".join(out)


def _known_context(group: list[tuple], old: list[Any]) -> list[tuple]:
    """Leading/trailing context trimmed to the lines whose base text is known."""
    group = list(group)
    tag, a1, a2, b1, b2 = group[0]
    if tag == "equal":
        while a1 < a2 and not isinstance(old[a1], str):
            a1, b1 = a1 + 1, b1 + 1
        group[0] = (tag, a1, a2, b1, b2)
    tag, a1, a2, b1, b2 = group[-1]
    if tag == "equal":
        while a2 > a1 and not isinstance(old[a2 - 1], str):
            a2, b2 = a2 - 1, b2 - 1
        group[-1] = (tag, a1, a2, b1, b2)
    return [g for g in group if g[0] != "equal" or g[2] > g[1]] or group[:1]


def _range(start: int, length: int) -> str:
    return f"{start + 1 if length else start},{length}"
