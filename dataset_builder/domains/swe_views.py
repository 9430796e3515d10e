"""Replay of a SWE trajectory: which files the agent viewed (and the text it saw), listed, created or changed.

Views (text at known line numbers):
- shell: `cat F`, `cat -n F`, `nl -ba F`, `head [-n] N F`, `sed -n 'A,Bp' F`, and `cat F | head/sed -n`,
  `cat -n F | sed -n ...`, `nl -ba F | sed -n ...` (plus leading `cd DIR &&`); the command must be the only one
  printing anything, and a non-zero return code, an error message or a truncated observation disqualifies it;
- SWE-agent windows `[File: /repo/path (N lines total)]` + `N:line` (open/goto/scroll/create; for a failed edit
  only the "original code" window); OpenHands `N|line` windows;
- str_replace_editor / OpenHands `read` views (`cat -n` style `     N\\tline`).

Changes: SWE-agent edit/insert/append (unless the observation says it was not applied), str_replace_editor
create/str_replace/insert/undo_edit, shell redirections, `sed -i`, `perl -i`, cp/mv/rm/touch/tee, git commands
that rewrite the tree (checkout, stash, apply, reset, ...: every file), `patch` (every file), and opaque commands
(python scripts, `python -c`, unknown tools): those count as changing every file whose path appears in the command
or in the agent-written script it runs. A view is base-commit text only if it was taken before the first change of
its file; views at the same step as a change are not used.

Paths are made repository-relative by stripping the workdir; paths that leave the repository are refused (recorded,
never read). Each step starts in the workdir (a `cd` inside a command applies to the rest of that command).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from dataset_builder.domains.shell import Command, command_output, options_and_args, parse_command
from dataset_builder.schema import Step

SHELL_TOOLS = {"bash", "run", "execute_bash", "shell", "terminal", "cmd", "execute_command", "run_command", "exec"}
EDITOR_TOOLS = {
    "str_replace_editor",
    "str_replace_based_edit_tool",
    "edit_file",
    "file_editor",
    "text_editor",
    "read",
    "edit",
}
EDITOR_VERBS = {"view", "create", "str_replace", "insert", "undo_edit", "write", "edit"}
WINDOW_VERBS = {"open", "goto", "scroll_up", "scroll_down", "scroll", "create", "set_cursors", "run_ipython", "ipython"}
SWE_EDIT_VERBS = {"edit", "insert", "append", "replace", "edit_file", "str_replace"}
LISTING_COMMANDS = {"ls", "find", "tree", "find_file", "search_dir", "grep", "egrep", "rg", "ag", "git"}
READ_ONLY = {
    "ls", "find", "grep", "egrep", "fgrep", "rg", "ag", "ack", "wc", "cat", "head", "tail", "sed", "nl", "echo", "printf",
    "pwd", "cd", "which", "type", "file", "stat", "tree", "sort", "uniq", "cut", "tr", "diff", "cmp", "du", "df", "env",
    "export", "true", "false", "sleep", "date", "whoami", "id", "uname", "less", "more", "od", "hexdump", "xxd", "jq",
    "column", "basename", "dirname", "realpath", "readlink", "test", "[", "awk", "pip", "pip3", "conda", "submit",
    "find_file", "search_dir", "search_file", "filemap", "mkdir", "source", ".", "set", "unset", "history", "clear",
}  # fmt: skip
READ_GIT = {"diff", "show", "log", "status", "grep", "blame", "ls-files", "ls-tree", "rev-parse", "branch", "add",
            "commit", "config", "remote", "describe", "shortlog", "cat-file", "--no-pager"}  # fmt: skip
PY_READ_MODULES = {"pytest", "unittest", "pip", "pylint", "flake8", "mypy", "pydoc", "json.tool", "site", "doctest",
                   "timeit", "cProfile", "trace", "pdb", "platform", "compileall", "venv"}  # fmt: skip
NOT_APPLIED = re.compile(
    r"Your proposed edit has introduced new syntax error|Your changes have NOT been applied|No replacement was performed|"
    r"did not appear verbatim|Cannot overwrite files using command|^ERROR:|^Error:|^Invalid `|does not exist\. Please provide",
    re.MULTILINE,
)
WINDOW_HEADER = re.compile(r"^\[File: (.+?) \((\d+) lines total\)\]\s*$", re.MULTILINE)
NUMBERED_TAB = re.compile(r"^ *(\d+)\t(.*)$")
SED_RANGE = re.compile(r"^(\d+)(?:,(\d+|\$))?p$")


@dataclass
class View:
    step: int
    path: str
    start: int
    lines: list[str]
    total: int | None = None  # the file's length, when the view shows it (window header, complete cat)


@dataclass
class Replay:
    views: list[View] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)  # path -> first step that (may have) changed it
    changed_all: int | None = None  # first step that may have changed any file
    created: list[str] = field(default_factory=list)  # files the agent created (not seen before it wrote them)
    listed: dict[str, None] = field(default_factory=dict)  # repo paths found in listings (ls, find, grep -l), in order
    refused: list[str] = field(default_factory=list)  # paths outside the repository (never read)
    opaque: list[tuple[int, str]] = field(default_factory=list)  # (step, text) of commands that may write anything
    written_text: dict[str, str] = field(default_factory=dict)  # text the agent wrote into files (its scripts)

    def base_views(self, path: str) -> list[View]:
        """Views of path taken before any change to it: base-commit text."""
        limit = min(self.changed.get(path, 1 << 30), self.changed_all if self.changed_all is not None else 1 << 30)
        return [v for v in self.views if v.path == path and v.step < limit]

    def viewed(self) -> list[str]:
        return list(dict.fromkeys(v.path for v in self.views))


class Paths:
    """Repo-relative path resolution with confinement: None (and a note) for anything outside the repository."""

    def __init__(self, workdir: str, replay: Replay):
        self.workdir = posixpath.normpath(workdir) if workdir else ""
        self.replay = replay

    def resolve(self, path: str, cwd: str | None = "", note: bool = True) -> str | None:
        path = path.strip().strip("'\"")
        if not path or "\x00" in path or path.startswith("~") or "$" in path or "*" in path:
            return None
        if path.startswith("/"):
            norm = posixpath.normpath(path)
            if self.workdir and norm == self.workdir:
                return ""
            if self.workdir and norm.startswith(self.workdir + "/"):
                return norm[len(self.workdir) + 1 :]
            if note and norm != self.workdir:
                self._refuse(path)
            return None
        if cwd is None:
            return None
        norm = posixpath.normpath(posixpath.join(cwd, path))
        if norm == ".." or norm.startswith("../"):
            if note:
                self._refuse(path)
            return None
        return "" if norm == "." else norm

    def _refuse(self, path: str) -> None:
        if path not in self.replay.refused:
            self.replay.refused.append(path)


def replay_steps(steps: list[Step], workdir: str) -> Replay:
    replay = Replay()
    paths = Paths(workdir, replay)
    current_open: str | None = None
    for i, step in enumerate(steps):
        obs = (step.observation or "").replace("\r\n", "\n")
        tool = step.tool.strip().lower()
        command = step.args.get("command") if isinstance(step.args.get("command"), str) else ""
        if (
            tool in EDITOR_TOOLS
            and (step.args.get("path") or tool == "read")
            and (command in EDITOR_VERBS or not command)
        ):
            _editor_step(i, tool, step, obs, paths, replay)
            continue
        verb = command.split(maxsplit=1)[0] if command.strip() else tool
        if tool not in SHELL_TOOLS and tool not in ("", verb) and tool in WINDOW_VERBS | SWE_EDIT_VERBS:
            verb = tool
        if verb in WINDOW_VERBS or verb in SWE_EDIT_VERBS:
            current_open = _swe_agent_step(i, verb, step, obs, paths, replay, current_open)
        elif verb in ("find_file", "search_dir"):
            _add_listed(obs, "", paths, replay)
        elif command:
            _shell_step(i, command, obs, paths, replay)
    _apply_opaque(replay)
    return replay


# ---------------------------------------------------------------- tools


def _editor_step(i: int, tool: str, step: Step, obs: str, paths: Paths, replay: Replay) -> None:
    raw = step.args.get("path") or ""
    path = paths.resolve(str(raw))
    if path is None:
        return
    sub = step.args.get("command") or ("view" if tool == "read" else "edit")
    if sub == "view":
        if obs.startswith("Here's the files and directories"):
            _add_listed(obs, path, paths, replay)
        elif view := _numbered_view(i, path, obs):
            if view.start == 1 and not step.args.get("view_range") and "<response clipped>" not in obs:
                view.total = len(view.lines)  # a whole-file view
            replay.views.append(view)
        return
    if NOT_APPLIED.search(obs[:2000]):
        return
    _mark_changed(i, path, replay, create=sub == "create")
    text = step.args.get("file_text") or step.args.get("content") or step.args.get("new_str") or ""
    replay.written_text[path] = replay.written_text.get(path, "") + str(text)


def _swe_agent_step(i: int, verb: str, step: Step, obs: str, paths: Paths, replay: Replay, open_file: str | None):
    """SWE-agent windowed-editor commands; returns the file open after the step."""
    would_be = obs.find("This is how your edit would have looked if applied")
    original = obs.find("This is the original code before your edit")
    if would_be >= 0:
        obs = obs[:would_be] + (obs[original:] if original > would_be else "")
    windows = list(parse_windows(i, obs, paths))
    raw = step.args.get("path")
    target = windows[0].path if windows else (paths.resolve(str(raw), note=False) if raw else None) or open_file
    if verb in SWE_EDIT_VERBS:
        if NOT_APPLIED.search(obs):
            replay.views += windows  # only the "original code" window is left: base text
        elif target is not None:
            _mark_changed(i, target, replay)
            replay.written_text[target] = replay.written_text.get(target, "") + str(step.args.get("command", ""))
    elif verb == "create" and "already exists" not in obs:
        if target is not None:
            _mark_changed(i, target, replay, create=True)
    else:
        replay.views += windows
    return windows[-1].path if windows else target if verb in ("open", "create") else open_file


def parse_windows(step: int, obs: str, paths: Paths):
    """SWE-agent / OpenHands file windows: `[File: path (N lines total)]` then `N:line` (or `N|line`) lines."""
    for m in WINDOW_HEADER.finditer(obs):
        path = paths.resolve(m.group(1))
        if path is None:
            continue
        lines: list[str] = []
        start = expected = 0
        for line in obs[m.end() + 1 :].split("\n"):
            if re.fullmatch(r"\(\d+ more lines above\)|<<<<< (START|END) CURSOR >>>>>", line.strip()):
                continue
            num = re.match(r"(\d+)[:|](.*)$", line)
            if not num or (expected and int(num.group(1)) != expected):
                break
            if not expected:
                start = int(num.group(1))
            lines.append(num.group(2))
            expected = int(num.group(1)) + 1
        if lines:
            yield View(step, path, start, lines, total=int(m.group(2)))


def _numbered_view(step: int, path: str, obs: str) -> View | None:
    """`cat -n` style output (`     12\\tline`), after an optional "Here's the result of running" line.

    The view ends before a line that the editor cut with `<response clipped><NOTE>...` (the rest of that line is
    not the file's)."""
    lines: list[str] = []
    start = expected = 0
    for line in obs.split("\n"):
        m = NUMBERED_TAB.match(line)
        if not m:
            if expected:
                break
            continue
        n = int(m.group(1))
        if (expected and n != expected) or "<response clipped>" in m.group(2):
            break
        if not expected:
            start = n
        lines.append(m.group(2))
        expected = n + 1
    return View(step, path, start, lines) if lines else None


# ---------------------------------------------------------------- shell


def _shell_step(i: int, command: str, obs: str, paths: Paths, replay: Replay) -> None:
    pipelines = parse_command(command)
    if pipelines is None:
        replay.opaque.append((i, command))
        return
    cwd: str | None = ""
    view_specs = []
    printing = 0
    for pipeline in pipelines:
        first = pipeline[0]
        if first.name == "cd":
            target = first.argv[1] if len(first.argv) > 1 else "/"
            cwd = paths.resolve(target, cwd, note=False) if cwd is not None or target.startswith("/") else None
            continue
        for cmd in pipeline:
            _command_effects(i, cmd, cwd, paths, replay)
        if not pipeline[-1].writes:
            printing += 1
            spec = _view_spec(pipeline, cwd, paths)
            if spec is not None:
                view_specs.append(spec)
            elif first.name in LISTING_COMMANDS and cwd is not None:
                dirs = options_and_args(first.argv)[1] if first.name == "ls" else []
                bases = [cwd] + [d for a in dirs if (d := paths.resolve(a, cwd, note=False)) is not None]
                for base in dict.fromkeys(bases):
                    _add_listed(obs, base, paths, replay)
    if len(view_specs) == 1 and printing == 1:
        output = command_output(obs)
        if output is not None:
            view = _view_from_output(i, view_specs[0], output)
            if view is not None:
                replay.views.append(view)


def _view_spec(pipeline: list[Command], cwd: str | None, paths: Paths) -> tuple | None:
    """(path, numbered, start, end) when the pipeline prints (part of) one file, else None."""
    if cwd is None or len(pipeline) > 2 or any(c.stdin_text for c in pipeline):
        return None
    first = pipeline[0]
    opts, args = options_and_args(first.argv, {"-n"} if first.name == "head" else set())
    numbered, start, end = False, 1, None
    if first.name == "cat" and len(args) == 1 and set(opts) <= {"-n"}:
        numbered = bool(opts)
    elif first.name == "nl" and len(args) == 1 and opts in (["-ba"], ["-b", "a"]):
        numbered = True
    elif first.name == "head" and len(args) == 1 and len(pipeline) == 1:
        end = _head_count(opts)
        if end is None:
            return None
    elif first.name == "sed" and len(pipeline) == 1 and opts == ["-n"] and len(args) == 2 and SED_RANGE.match(args[0]):
        start, end = _sed_range(args[0])
        args = args[1:]
    else:
        return None
    if end is None and len(pipeline) == 2:
        second = pipeline[1]
        s_opts, s_args = options_and_args(second.argv, {"-n"} if second.name == "head" else set())
        if second.name == "head" and not s_args:
            end = _head_count(s_opts)
        elif second.name == "sed" and s_opts == ["-n"] and len(s_args) == 1 and SED_RANGE.match(s_args[0]):
            start, end = _sed_range(s_args[0])
        else:
            return None
        if end is None and not numbered and start == 1:
            return None
    if end is not None and end <= 0:
        return None
    path = paths.resolve(args[0], cwd)
    return None if path is None else (path, numbered, start, end)


def _head_count(opts: list[str]) -> int | None:
    for k, opt in enumerate(opts):
        if opt == "-n" and k + 1 < len(opts) and opts[k + 1].isdigit():
            return int(opts[k + 1])
        for pattern in (r"-(\d+)", r"-n(\d+)", r"--lines=(\d+)"):
            if m := re.fullmatch(pattern, opt):
                return int(m.group(1))
    return 10 if not opts else None


def _sed_range(script: str) -> tuple[int, int | None]:
    m = SED_RANGE.match(script)
    start = int(m.group(1))
    end = m.group(2)
    return start, (start if end is None else None if end == "$" else int(end))


def _view_from_output(step: int, spec: tuple, output: str) -> View | None:
    path, numbered, start, end = spec
    if re.match(r"(cat|head|sed|nl): ", output) or "No such file or directory" in output[:300]:
        return None
    if numbered:
        return _numbered_view(step, path, output)
    lines = output.split("\n")
    if len(output) > 5000 and "..." in lines:
        return None  # probably a harness-truncated output (head + "..." + tail), not the file
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    total = None
    if end is None or (end - start + 1) > len(lines):
        total = start + len(lines) - 1  # the file ended before the requested range did
    return View(step, path, start, lines, total=total)


def _command_effects(i: int, cmd: Command, cwd: str | None, paths: Paths, replay: Replay) -> None:
    """Record what one simple command may have changed."""
    for target in cmd.writes:
        path = paths.resolve(target, cwd, note=False)
        if path is not None:
            _mark_changed(i, path, replay, create=cmd.name in ("cat", "echo", "printf") or bool(cmd.stdin_text))
            if cmd.stdin_text or cmd.name in ("echo", "printf"):
                text = cmd.stdin_text or " ".join(cmd.argv[1:])
                replay.written_text[path] = replay.written_text.get(path, "") + text
    name, argv = cmd.name, cmd.argv
    if not name:
        return
    opts, args = options_and_args(argv)
    operands = [p for a in args if (p := paths.resolve(a, cwd, note=False)) is not None]
    if name == "sed" and any(o.startswith(("-i", "--in-place")) for o in opts):
        files = operands if any(o in ("-e", "-f") or o.startswith("--expression") for o in opts) else operands[1:]
        for path in files:
            _mark_changed(i, path, replay)
    elif name in ("perl", "ruby") and any(o.startswith(("-i", "-pi")) for o in opts):
        for path in operands:
            _mark_changed(i, path, replay)
    elif name in ("cp", "ln", "install") and operands:
        _mark_changed(i, operands[-1], replay, create=True)
    elif name in ("mv", "rm", "touch", "tee", "truncate", "shred"):
        for path in operands:
            _mark_changed(i, path, replay, create=name in ("touch", "tee"))
    elif name == "git":
        if _git_subcommand(argv) not in READ_GIT:
            _change_all(i, replay)
    elif name in ("patch", "xargs") or (
        name == "find" and any(o in ("-exec", "-execdir", "-delete", "-ok") for o in opts)
    ):
        if name == "patch" or _writes_via(argv):
            _change_all(i, replay)
    elif name in ("python", "python3", "python2") or re.fullmatch(r"python3\.\d+", name):
        if len(argv) > 2 and argv[1] == "-m" and argv[2].split(".")[0] in PY_READ_MODULES:
            return
        text = " ".join(argv)
        script = paths.resolve(args[0], cwd, note=False) if args and "-c" not in opts else None
        replay.opaque.append((i, text + "\n" + replay.written_text.get(script or "", "")))
    elif name not in READ_ONLY:
        text = " ".join(argv)
        script = paths.resolve(argv[0], cwd, note=False) if argv[0].startswith(("./", "/")) else None
        replay.opaque.append((i, text + "\n" + (replay.written_text.get(script or "", "") if script else "")))


def _git_subcommand(argv: list[str]) -> str:
    k = 1
    while k < len(argv) and argv[k].startswith("-"):
        k += 2 if argv[k] in ("-C", "-c") else 1  # options before the subcommand; -C/-c take a value
    return argv[k] if k < len(argv) else ""


def _writes_via(argv: list[str]) -> bool:
    """find -exec / xargs running a command that writes files (their targets come from elsewhere: all files)."""
    words = set(argv)
    if "-delete" in words and any("pyc" in w or "__pycache__" in w for w in argv):
        return False  # clearing bytecode caches changes no source file
    return bool(words & {"-delete", "rm", "mv", "cp", "tee", "truncate", "patch"}) or (
        "sed" in words and any(w.startswith("-i") for w in argv)
    )


# ---------------------------------------------------------------- bookkeeping


def _mark_changed(i: int, path: str, replay: Replay, create: bool = False) -> None:
    if path not in replay.changed:
        replay.changed[path] = i
        seen_before = any(v.path == path for v in replay.views) or path in replay.listed
        if create and not seen_before and path not in replay.created:
            replay.created.append(path)


def _change_all(i: int, replay: Replay) -> None:
    if replay.changed_all is None:
        replay.changed_all = i


def _apply_opaque(replay: Replay) -> None:
    """An opaque command may have changed every file it (or the script it runs) mentions."""
    known = set(replay.viewed()) | set(replay.changed)
    for step, text in replay.opaque:
        for path in known:
            if step < replay.changed.get(path, 1 << 30) and mentions(text, path):
                replay.changed[path] = step


def mentions(text: str, path: str) -> bool:
    pattern = r"(?<![\w.-])" + re.escape(path) + r"(?![\w-]|\.\w)"
    return re.search(pattern, text) is not None


def _add_listed(obs: str, base: str, paths: Paths, replay: Replay) -> None:
    """Candidate repo paths from a listing (validated later against a checkout; noise is harmless).

    `ls a b` prints `a:` / `b:` headers: names under a header are relative to that directory."""
    output = command_output(obs) or ""
    section = base
    for line in output.split("\n")[:5000]:
        line = line.strip()
        if not line or len(line) > 500:
            continue
        if line.endswith(":") and " " not in line:
            section = paths.resolve(line[:-1], base, note=False) or base
            continue
        words = line.split()
        candidates = {line.split(":", 1)[0], *[w.rstrip("/*@=|") for w in words[:12]], words[-1].rstrip("/*@=|")}
        for cand in sorted(candidates):
            for where in dict.fromkeys((section, base)):
                path = paths.resolve(cand, where, note=False)
                if path:
                    replay.listed.setdefault(path)
