"""Task tables (`--task-table SOURCE`): what each task instance is, joined onto the runs by instance id.

A task table is a parquet / arrow / jsonl / JSON file, a directory of them, or an hf:// dataset (SWE-bench,
nebius/SWE-bench-extra, SWE-rebench, SWE-smith task sets, BIRD / Spider task files). Columns, by alias:

    id            instance_id | question_id | task_id | id
    repo          repo                               base_commit   base_commit
    question      problem_statement | question | instruction
    gold patch    patch | gold_patch                 (swe)
    gold SQL      SQL | sql | gold_sql | query       (sql; with db_id)
    gold answer   answer | gold_answer | golden_answers (first) | true_answer   (search)

`prepare(traj, opts)` runs before a trajectory's evidence is extracted (domains.extract):
- `--only-resolved`: a run the source does not mark resolved is rejected ("not resolved");
- `--task-table`: the run's task is found by its instance id, or by its id without a run suffix (`..._17`); repo,
  base commit, db_id and the gold are set from it. A SWE run not marked resolved then answers with the gold patch
  (evidence: the gold patch's files at the base commit + the files the agent inspected), so unresolved runs still
  make records; a resolved run keeps its own patch (the gold patch's files are evidence too). A run whose task is not
  in the table is compiled as it is, with meta["task"] = "not in the task table";
- (`--max-per-instance N` is applied by the compile pipeline's assemble stage, over all runs of an instance in
  origin order, by meta["instance_id"], which the join sets to the task's id);
- a SWE run whose row had no usable patch (row_build.py's meta["patch_problem"]) and gets no gold patch is rejected
  with that reason.
Rows are streamed once per process and kept as a dict of the few fields above.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dataset_builder.readers import is_dataset_file, iter_rows, list_inputs

ID_KEYS = ("instance_id", "question_id", "task_id", "id")
QUESTION_KEYS = ("problem_statement", "question", "instruction")
PATCH_KEYS = ("patch", "gold_patch")
SQL_KEYS = ("SQL", "sql", "gold_sql", "query")
ANSWER_KEYS = ("answer", "gold_answer", "golden_answers", "true_answer")


@dataclass(frozen=True)
class Task:
    instance_id: str
    repo: str = ""
    base_commit: str = ""
    question: str = ""
    gold: str = ""
    gold_kind: str = ""  # "patch" | "sql" | "answer"
    db_id: str = ""


class TaskTable:
    def __init__(self, tasks: dict[str, Task], source: str, n_bad: int = 0):
        self.tasks = tasks
        self.source = source
        self.n_bad = n_bad  # rows without an id

    def __len__(self) -> int:
        return len(self.tasks)

    def find(self, run_id: str) -> Task | None:
        if run_id in self.tasks:
            return self.tasks[run_id]
        base, sep, suffix = run_id.rpartition("_")
        if sep and suffix.isdigit():
            return self.tasks.get(base)
        return None


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = row.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return ""


def task_of(row: dict[str, Any]) -> Task | None:
    instance = _first(row, ID_KEYS)
    if not instance:
        return None
    gold, kind = _first(row, PATCH_KEYS), "patch"
    if not gold:
        gold, kind = _first(row, SQL_KEYS), "sql"
    if not gold:
        gold, kind = _first(row, ANSWER_KEYS), "answer"
    return Task(
        instance_id=instance,
        repo=_first(row, ("repo",)),
        base_commit=_first(row, ("base_commit",)),
        question=_first(row, QUESTION_KEYS),
        gold=gold,
        gold_kind=kind if gold else "",
        db_id=_first(row, ("db_id",)),
    )


@lru_cache(maxsize=4)
def load_tasks(source: str) -> TaskTable:
    """The task table of a source (file, directory or hf:// dataset), read once per process."""
    tasks: dict[str, Task] = {}
    n_bad = 0
    for path in list_inputs([source]):
        if not is_dataset_file(path):
            continue
        for item in iter_rows(path):
            task = task_of(item.row) if item.row is not None else None
            if task is None:
                n_bad += 1
            else:
                tasks.setdefault(task.instance_id, task)
    if not tasks:
        raise ValueError(f"--tasks {source}: no task rows with an instance id ({', '.join(ID_KEYS)})")
    return TaskTable(tasks, source, n_bad)


def prepare(traj, opts) -> None:
    """Apply --only-resolved, --tasks and --max-per-instance to a trajectory (in place); CompileError to reject it."""
    from dataset_builder.domains import CompileError

    resolved = traj.meta.get("resolved")
    if getattr(opts, "only_resolved", False) and resolved is not True:
        state = "marked unresolved" if resolved is False else "no resolved verdict in the source"
        raise CompileError(f"not resolved ({state}); --only-resolved keeps resolved runs only")
    instance = str(traj.meta.get("instance_id") or traj.id)
    use_gold = False
    if getattr(opts, "tasks", None):
        table = load_tasks(str(opts.tasks))
        task = table.find(instance) or table.find(traj.id)
        if task is None:
            traj.meta["task"] = "not in the task table"
        else:
            instance = task.instance_id
            traj.meta["instance_id"] = instance
            for key, value in (("repo", task.repo), ("base_commit", task.base_commit), ("db_id", task.db_id)):
                if value:
                    traj.meta[key] = value
            if task.gold:
                traj.gold, traj.meta["gold_kind"] = task.gold, task.gold_kind
                traj.meta["gold_from"] = "tasks"
            if traj.domain == "swe" and task.gold_kind == "patch" and resolved is not True:
                traj.meta["answer_from"] = "gold patch"
                use_gold = True
            if not traj.question.strip() and task.question:
                traj.question = task.question
    traj.meta.setdefault("instance_id", instance)  # --max-per-instance is applied per bucket, in origin order
    # (pipeline/assemble_step.py): a count kept here would depend on how files are split between tasks
    if traj.domain == "swe" and not use_gold and not traj.final_answer.strip() and traj.meta.get("patch_problem"):
        raise CompileError(str(traj.meta["patch_problem"]))
