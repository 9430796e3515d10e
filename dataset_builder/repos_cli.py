"""acc repos: clone every repository a task table names, once, for SWE evidence at any scale.

  acc repos hf://datasets/nebius/SWE-rebench --out repos/
  acc compile hf://datasets/nebius/SWE-agent-trajectories --task-table hf://datasets/nebius/SWE-rebench --repos repos/

Each repository `owner/name` (the task table's `repo` column, else the owner__name-N instance id) becomes a bare,
blob-filtered clone `DIR/owner__name` (`git clone --bare --filter=blob:none`): commits and trees only, file contents
fetched on demand when `acc compile --repos DIR` reads `git show BASE:path`. Resumable: a clone is made in
`DIR/owner__name.partial` and renamed when complete; a rerun skips finished clones (or fetches new commits with
--update) and restarts unfinished ones. After cloning, the task table's base commits are checked in each clone and
counted (a missing base commit means the records of that instance fall back to the observations' text).
The exit code is 1 when a repository could not be cloned (the others are kept).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

DEFAULT_REMOTE = "https://github.com/{owner}/{name}.git"
GIT_TIMEOUT_S = 3600
REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "tasks", metavar="TASKS", help="task table: parquet / jsonl / directory / hf://datasets/ORG/NAME"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory of the bare clones")
    parser.add_argument(
        "--remote",
        default=DEFAULT_REMOTE,
        metavar="TEMPLATE",
        help=f"clone URL template with {{owner}} and {{name}} (default {DEFAULT_REMOTE}; a mirror or file:// path works)",
    )
    parser.add_argument("--update", action="store_true", help="fetch new commits into clones that already exist")


def task_repos(tasks_source: str) -> dict[str, set[str]]:
    """owner/name -> the base commits the task table pairs with it."""
    from dataset_builder.adapters.row_fields import repo_of
    from dataset_builder.readers.tasks import load_tasks

    repos: dict[str, set[str]] = defaultdict(set)
    for task in load_tasks(tasks_source).tasks.values():
        repo = task.repo or repo_of(task.instance_id)
        if REPO_NAME.fullmatch(repo) and ".." not in repo:
            commits = repos[repo]
            if task.base_commit:
                commits.add(task.base_commit)
    return dict(sorted(repos.items()))


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, env=env)
    except (subprocess.TimeoutExpired, OSError) as err:
        return subprocess.CompletedProcess(["git", *args], 1, "", str(err))


def is_bare_clone(path: Path) -> bool:
    out = _git("rev-parse", "--is-bare-repository", cwd=path) if path.is_dir() else None
    return out is not None and out.returncode == 0 and out.stdout.strip() == "true"


def clone(repo: str, out_dir: Path, remote: str, update: bool = False) -> tuple[str, str]:
    """("cloned" | "present" | "updated" | "failed", detail) for one repository."""
    owner, name = repo.split("/", 1)
    target = out_dir / f"{owner}__{name}"
    if is_bare_clone(target):
        if not update:
            return "present", ""
        done = _git("fetch", "--quiet", "--filter=blob:none", "origin", "+refs/heads/*:refs/heads/*", cwd=target)
        return ("updated", "") if done.returncode == 0 else ("failed", done.stderr.strip()[-300:])
    if target.exists():
        return "failed", f"{target} exists and is not a bare git repository (remove it to clone again)"
    partial = out_dir / f"{owner}__{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # an unfinished clone of an earlier run
    url = remote.format(owner=owner, name=name)
    done = _git("clone", "--quiet", "--bare", "--filter=blob:none", "--", url, str(partial))
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        return "failed", done.stderr.strip()[-300:] or f"git clone exited {done.returncode}"
    partial.rename(target)
    return "cloned", ""


def missing_commits(target: Path, commits: set[str]) -> list[str]:
    if not commits:
        return []
    out = subprocess.run(
        ["git", "cat-file", "--batch-check"],
        cwd=target,
        input="".join(f"{c}^{{commit}}\n" for c in sorted(commits)),
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_NO_LAZY_FETCH": "1"},
    )
    lines = out.stdout.splitlines()
    return [c for c, line in zip(sorted(commits), lines) if line.endswith(" missing")]


def run(args: argparse.Namespace) -> int:
    try:
        repos = task_repos(args.tasks)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not repos:
        print(
            f"error: the task table {args.tasks} names no repository (repo column or owner__name-N ids)",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = defaultdict(int)
    failed: list[str] = []
    n_missing = 0
    for repo, commits in repos.items():
        status, detail = clone(repo, args.out, args.remote, args.update)
        counts[status] += 1
        if status == "failed":
            failed.append(f"{repo}: {detail}")
            continue
        missing = missing_commits(args.out / repo.replace("/", "__", 1), commits)
        n_missing += len(missing)
        if missing:
            print(f"{repo}: {len(missing)} of {len(commits)} base commits not in the clone (e.g. {missing[0][:12]})")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"{len(repos)} repositories in {args.out}: {summary}; base commits missing: {n_missing}")
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0
