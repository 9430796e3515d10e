"""SWE evidence: the files a fix needs, as they were at the base commit.

Gold evidence (kind `file`, title = repo-relative path):
1. every file the gold patch or the final submitted patch touches (both apply to the base commit; the union, so that
   the answer can be applied to the context) — new files have no base text and are skipped, binary ones too;
2. the files the agent inspected while debugging (see swe_views.py), except files it created itself.

File text, in order:
1. `opts.repos_dir` holds a git checkout of the repository (`<repos_dir>/<owner>__<name>`, `<name>` or
   `<owner>/<name>`) that has the base commit: `git cat-file` of the blob that `git ls-tree BASE` lists for the
   path (git runs with argument lists, never a shell; symlinks and submodules are refused, never followed);
2. otherwise the text the agent saw before changing the file: merged windows/views by line number plus the old side
   of the patch hunks (authoritative; a view that disagrees with them was taken after a change and is dropped).
   Unseen ranges are marked in the text (`... [lines 101-230 not seen] ...`) and meta records coverage.
   When --repos-dir is given but has no usable checkout, this fallback is used and meta says why.

A checkout may also be a git bundle `<repos_dir>/<name>.bundle`: it is cloned (bare) into a temporary directory once
per process.

Distractors (checkout only): other files of the same repository at the same commit, the ones near the gold files
first (same directory, imports, tests, files the agent listed; see swe_tree.py); meta["filler"] = "repository" tells
assembly to add no other run's files. Without a checkout there are none, and assembly fills from other runs' files
(meta["filler"] = "other runs").

Paths are confined to the repository: a patch touching a path that leaves it is rejected; a view of one is noted
and never read. A submission that is not a unified diff (CTF flag, empty) is rejected.
"""

from __future__ import annotations

import atexit
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.domains import CompileError, DomainOptions, Evidence
from dataset_builder.domains.swe_tree import infer_base, repository_filler
from dataset_builder.domains.swe_views import Replay, View, replay_steps
from dataset_builder.schema import Piece, Trajectory

MAX_FILE_CHARS = 2_000_000  # a gold file over this cannot fit any budget
GIT_TIMEOUT_S = 60


@dataclass
class FilePatch:
    old_path: str | None = None  # None for a new file
    new_path: str | None = None  # None for a deleted file
    binary: bool = False
    old_lines: dict[int, str] = field(default_factory=dict)  # base text the hunks show (context and removed lines)

    @property
    def path(self) -> str:
        return self.old_path or self.new_path or ""


def extract(traj: Trajectory, opts: DomainOptions) -> Evidence:
    if str(traj.meta.get("task_kind", "")).lower() == "ctf":
        raise CompileError("CTF task: the submission is a flag, not a patch (swe records need a unified diff)")
    answer = clean_diff(traj.final_answer)
    if traj.meta.get("answer_from") == "gold patch" and is_diff(traj.gold or ""):
        answer = clean_diff(traj.gold)  # a task table's gold patch answers for a run not known to be resolved
    if not answer.strip():
        raise CompileError("empty submission: the run produced no patch")
    if not is_diff(answer):
        raise CompileError(f"submission is not a unified diff (it starts {answer.strip()[:60]!r})")
    patches = parse_patch(answer)
    gold_patch = clean_diff(traj.gold) if is_diff(traj.gold or "") else ""
    if gold_patch:
        patches = parse_patch(gold_patch) + patches
    touched: dict[str, FilePatch] = {}
    for fp in patches:
        merged = touched.setdefault(fp.path, FilePatch(fp.old_path, fp.new_path, fp.binary))
        merged.old_lines = {**fp.old_lines, **merged.old_lines}
        merged.binary |= fp.binary
    if not touched:
        raise CompileError("the patch touches no file")

    workdir = str(traj.meta.get("workdir") or "") or infer_workdir(traj, list(touched))
    replay = replay_steps(traj.steps, workdir)
    notes: list[str] = []
    git = open_checkout(traj, opts, notes, answer + gold_patch)
    gold: list[Piece] = []
    files: dict[str, dict] = {}
    for path, fp in touched.items():
        if fp.old_path is None:
            notes.append(f"{fp.new_path}: new file (no base text)")
            continue
        if fp.binary:
            notes.append(f"{path}: binary file skipped")
            continue
        text, info = _file_text(path, git, replay, fp.old_lines, notes)
        if text is None:
            continue
        if len(text) > MAX_FILE_CHARS:
            raise CompileError(f"{path} is {len(text):,} characters: larger than any context budget")
        gold.append(Piece(kind="file", title=path, text=text))
        files[path] = info
    inspected = [p for p in replay.viewed() if p not in touched and p not in replay.created and p]
    for path in inspected:
        text, info = _file_text(path, git, replay, {}, notes)
        if text is not None and len(text) > MAX_FILE_CHARS:
            notes.append(f"{path}: inspected file of {len(text):,} characters left out (larger than any budget)")
        elif text is not None:
            gold.append(Piece(kind="file", title=path, text=text))
            files[path] = info
    if not gold:
        raise CompileError("no base text for any file the patch touches (new or binary files only)")
    if git is None and all(info["source"] == "patch" for info in files.values()):
        raise CompileError(
            "no base text: the agent never viewed the files its patch changes and no checkout (--repos-dir) was given"
        )

    exclude = set(files) | set(touched) | set(replay.created)
    gold_texts = {p.title: p.text for p in gold}
    distractors = repository_filler(git, gold_texts, list(replay.listed), exclude) if git else []
    meta: dict[str, Any] = {
        key: traj.meta[key] for key in ("repo", "base_commit", "instance_id") if traj.meta.get(key) not in (None, "")
    }
    meta.update(
        workdir=workdir,
        text_source="git" if git else "observations",
        # where distractors come from: this tree only (assembly adds no other run's files), or other runs' files
        filler="repository" if git else "other runs",
        touched=list(touched),
        inspected=[p for p in inspected if p in files],
        files=files,
        created=replay.created,
    )
    if replay.refused:
        meta["refused_paths"] = replay.refused
    if notes:
        meta["notes"] = notes
    return Evidence(gold=gold, distractors=distractors, answer=answer, gold_answer=gold_patch or traj.gold, meta=meta)


# ---------------------------------------------------------------- diffs


def clean_diff(text: str) -> str:
    """Leading blank lines dropped; CRLF line ends turned into LF when every newline is one (a terminal's)."""
    text = text or ""
    if text.count("\r\n") and text.count("\r\n") == text.count("\n"):
        text = text.replace("\r\n", "\n")
    text = re.sub(r"\A(?:[ \t]*\n)+", "", text)
    return text if not text or text.endswith("\n") else text + "\n"


def is_diff(text: str) -> bool:
    return bool(re.search(r"^diff --git ", text, re.M) or re.search(r"^--- .*\n\+\+\+ .*\n(@@ |Binary )", text, re.M))


def _diff_path(raw: str) -> str | None:
    raw = raw.split("\t", 1)[0].strip()
    if raw.startswith('"') and raw.endswith('"'):  # git C-quotes unusual names: "a/caf\303\251.py"
        try:
            raw = (
                raw[1:-1]
                .encode("latin-1", "backslashreplace")
                .decode("unicode_escape")
                .encode("latin-1")
                .decode("utf-8", "replace")
            )
        except (UnicodeError, ValueError):
            raw = raw[1:-1]
    if raw == "/dev/null":
        return None
    if raw[:2] in ("a/", "b/"):
        raw = raw[2:]
    return confine(raw)


def confine(path: str) -> str:
    """A patch path made repo-relative; CompileError when it leaves the repository."""
    norm = posixpath.normpath(path)
    if not path or "\x00" in path or path.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise CompileError(f"patch touches a path outside the repository: {path!r}")
    return norm


def parse_patch(text: str) -> list[FilePatch]:
    """Files of a unified / git diff with the base-side lines of every hunk, by line number."""
    lines = text.replace("\r\n", "\n").split("\n")
    files: list[FilePatch] = []
    current: FilePatch | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("diff --git "):
            current = FilePatch()
            files.append(current)
            m = re.match(r'diff --git ("?a/.+?"?) ("?b/.+"?)$', line)
            if m:
                current.old_path, current.new_path = _diff_path(m.group(1)), _diff_path(m.group(2))
        elif line.startswith("--- ") and i < len(lines) and lines[i].startswith("+++ "):
            if current is None or current.old_lines:
                current = FilePatch()
                files.append(current)
            current.old_path, current.new_path = _diff_path(line[4:]), _diff_path(lines[i][4:])
            i += 1
        elif current is not None and line.startswith("new file mode"):
            current.old_path = None
        elif current is not None and line.startswith("deleted file mode"):
            current.new_path = None
        elif current is not None and line.startswith("rename from "):
            current.old_path = confine(line[len("rename from ") :])
        elif current is not None and (line.startswith("Binary files ") or line.startswith("GIT binary patch")):
            current.binary = True
        elif current is not None and (m := re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@", line)):
            old_no, old_left = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
            new_left = int(m.group(3) if m.group(3) is not None else 1)
            if old_left == 0:
                old_no += 1  # `@@ -0,0` / `@@ -5,0`: the hunk inserts after line N
            while i < len(lines) and (old_left > 0 or new_left > 0):
                body = lines[i]
                if body.startswith("\\"):
                    i += 1
                    continue
                kind, content = (body[:1], body[1:]) if body else (" ", "")  # a blank line is a stripped context line
                if kind not in " -+":
                    break
                i += 1
                if kind in " -":
                    current.old_lines[old_no] = content
                    old_no += 1
                    old_left -= 1
                if kind in " +":
                    new_left -= 1
    return [f for f in files if f.path]


def infer_workdir(traj: Trajectory, touched: list[str]) -> str:
    """The repository root inside the agent's environment, from absolute paths that end with a touched path."""
    text = "\n".join(s.observation[:20000] + "\n" + str(s.args.get("command", ""))[:2000] for s in traj.steps)
    counts: Counter[str] = Counter()
    for path in touched:
        for m in re.finditer(r"(/[\w.@+-]+(?:/[\w.@+-]+)*?)/" + re.escape(path) + r"(?![\w/.-])", text):
            counts[m.group(1)] += 1
    return counts.most_common(1)[0][0] if counts else ""


# ---------------------------------------------------------------- file text


def _file_text(path: str, git: GitTree | None, replay: Replay, patch_lines: dict[int, str], notes: list[str]):
    if git is not None:
        text, why = git.read(path)
        if text is None:
            notes.append(f"{path}: {why}")
            return None, {}
        base_lines = text.split("\n")
        mismatched = [
            n for n, line in patch_lines.items() if n > len(base_lines) or base_lines[n - 1].rstrip() != line.rstrip()
        ]
        if mismatched:
            notes.append(f"{path}: the patch does not match the base text at line {mismatched[0]} (wrong base commit?)")
        return text, {"source": "git", "complete": True, "lines_total": text.count("\n") + (not text.endswith("\n"))}
    known = dict(patch_lines)
    total: int | None = None
    used = dropped = 0
    for view in replay.base_views(path):
        if _conflicts(view, known):
            dropped += 1
            continue
        used += 1
        for k, line in enumerate(view.lines):
            known.setdefault(view.start + k, line)
        total = total or view.total
    if not known:
        return None, {}
    if dropped:
        notes.append(f"{path}: {dropped} view(s) disagreeing with earlier text dropped (taken after a change)")
    text, seen = render_partial(known, total)
    complete = total is not None and seen == total
    info = {
        "source": "observations" if used else "patch",
        "complete": complete,
        "lines_seen": seen,
        "lines_total": total,
    }
    return text, info


def _conflicts(view: View, known: dict[int, str]) -> bool:
    return any(
        (n := view.start + k) in known and known[n].rstrip() != line.rstrip() for k, line in enumerate(view.lines)
    ) or (view.total is not None and known and max(known) > view.total)


def render_partial(known: dict[int, str], total: int | None) -> tuple[str, int]:
    """File text from known lines; unseen ranges become `... [lines A-B not seen] ...` lines."""
    last = total if total is not None else max(known)
    out: list[str] = []
    n = 1
    seen = 0
    while n <= last:
        if n in known:
            out.append(known[n])
            seen += 1
            n += 1
            continue
        m = n
        while m <= last and m not in known:
            m += 1
        out.append(f"... [line {n} not seen] ..." if m - 1 == n else f"... [lines {n}-{m - 1} not seen] ...")
        n = m
    if total is None:
        out.append(f"... [lines after {last} not seen] ...")
    return "\n".join(out) + "\n", seen


# ---------------------------------------------------------------- git checkout


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    """git with an argument list (never a shell); a timeout or a missing git is a failed run, not an exception."""
    cmd = ["git", "--literal-pathspecs", "-C", str(root), *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(cmd, capture_output=True, timeout=GIT_TIMEOUT_S, env=env)
    except (subprocess.TimeoutExpired, OSError) as err:
        return subprocess.CompletedProcess(cmd, 1, b"", str(err).encode())


class GitTree:
    """The base commit's tree of a local checkout; files are read from git objects, never from the work tree."""

    def __init__(self, root: Path, commit: str):
        self.root = root
        if not re.fullmatch(r"[0-9A-Za-z][\w./-]*", commit):
            raise LookupError(f"base commit {commit!r} is not a commit name")
        out = _git(root, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
        if out.returncode != 0:
            raise LookupError(f"base commit {commit} not in the checkout {root}")
        self.commit = out.stdout.decode().strip()
        listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", self.commit)
        if listing.returncode != 0:
            raise LookupError(f"git ls-tree failed in {root}: {listing.stderr.decode(errors='replace').strip()}")
        self.entries: dict[str, tuple[str, str, str]] = {}
        for record in listing.stdout.decode("utf-8", "surrogateescape").split("\0"):
            if "\t" in record:
                meta, path = record.split("\t", 1)
                mode, kind, sha = meta.split()
                self.entries[path] = (mode, kind, sha)

    def read(self, path: str, limit: int | None = None) -> tuple[str | None, str]:
        entry = self.entries.get(path)
        if entry is None:
            return None, f"not in the base commit {self.commit[:12]}"
        mode, kind, sha = entry
        if mode == "120000":
            return None, "symbolic link: refused (not followed)"
        if kind != "blob":
            return None, f"{kind} (not a file)"
        if limit is not None:
            size = _git(self.root, "cat-file", "-s", sha)
            if size.returncode != 0 or not size.stdout.strip().isdigit() or int(size.stdout) > limit:
                return None, "too large"
        blob = _git(self.root, "cat-file", "blob", sha)
        if blob.returncode != 0:
            return None, f"git cat-file failed: {blob.stderr.decode(errors='replace').strip()}"
        if b"\x00" in blob.stdout[:8192]:
            return None, "binary file"
        return blob.stdout.decode("utf-8", errors="replace"), ""


def checkout_candidates(traj: Trajectory) -> list[str]:
    repo = str(traj.meta.get("repo") or "").strip()
    names: list[str] = []
    if "/" in repo:
        owner, name = repo.split("/", 1)
        names += [f"{owner}__{name}", name, f"{owner}/{name}"]
    elif repo:
        names += [repo, repo.split("__", 1)[-1]]
    instance = str(traj.meta.get("instance_id") or "")
    if m := re.match(r"(.+?__.+?)-\d+$", instance):  # SWE-bench ids: <owner>__<name>-<number>
        names += [m.group(1), m.group(1).split("__", 1)[1]]
    elif m := re.match(r"(.+)-\d+$", instance):
        names.append(m.group(1))
    return list(dict.fromkeys(names))


def open_checkout(traj: Trajectory, opts: DomainOptions, notes: list[str], patch: str = "") -> GitTree | None:
    """The base commit's tree of the repository's checkout in --repos; without a base_commit in the trajectory,
    the checkout's HEAD when it holds the patch's pre-image blobs (`swe_tree.infer_base`)."""
    if opts.repos_dir is None:
        return None
    base = str(traj.meta.get("base_commit") or "").strip()
    repos_dir = Path(opts.repos_dir).resolve()
    names = checkout_candidates(traj)
    if not names:
        notes.append("--repos-dir given but the trajectory has no repo: text from observations")
        return None
    for name in names:
        if any(p in ("", ".", "..") for p in name.split("/")):
            continue
        root = _repository(repos_dir, name)
        if root is None:
            continue
        if not base:
            base, why = infer_base(root, patch)
            notes.append(why + ("" if base else ": text from observations"))
            if not base:
                return None
        try:
            return GitTree(root, base)
        except LookupError as err:
            notes.append(f"{err}: text from observations")
            return None
    looked = ", ".join(f"{n} or {n}.bundle" for n in names)
    notes.append(f"no git checkout in {opts.repos_dir} (looked for {looked}): text from observations")
    return None


def _repository(repos_dir: Path, name: str) -> Path | None:
    """A repository directory (work tree root or bare) or a git bundle under repos_dir, else None."""
    root = (repos_dir / name).resolve()
    if root.is_relative_to(repos_dir) and root.is_dir():
        probe = _git(root, "rev-parse", "--is-bare-repository", "--show-prefix")
        bare, prefix = (probe.stdout.decode().split("\n") + ["", ""])[:2]
        is_bare_root = bare == "true" and (root / "HEAD").is_file()
        if probe.returncode == 0 and (is_bare_root or (bare == "false" and prefix == "")):
            return root  # (a directory inside some other repository is not this repository)
    bundle = (repos_dir / f"{name}.bundle").resolve()
    if bundle.is_relative_to(repos_dir) and bundle.is_file():
        return _unbundled(bundle)
    return None


_UNBUNDLED: dict[Path, Path] = {}


def _unbundled(bundle: Path) -> Path | None:
    """A bare clone of a git bundle in a temporary directory (once per process, removed at exit)."""
    if bundle in _UNBUNDLED:
        return _UNBUNDLED[bundle]
    with open(bundle, "rb") as f:
        if f.read(16) not in (b"# v2 git bundle\n", b"# v3 git bundle\n"):
            return None
    target = Path(tempfile.mkdtemp(prefix="acc-bundle-")) / bundle.stem
    done = _git(target.parent, "clone", "--bare", "--quiet", "--", str(bundle), str(target))
    if done.returncode != 0:
        shutil.rmtree(target.parent, ignore_errors=True)
        return None
    atexit.register(shutil.rmtree, target.parent, True)
    _UNBUNDLED[bundle] = target
    return target
