"""Running the four stages on a datatrove executor: `local` (processes on this machine), `slurm` (one job array per
stage, chained with dependencies) or `ray` (a running Ray cluster, or a local one started here).

Resuming: each stage keeps datatrove's completion markers under OUT/.acc-work/logs/<stage>/completions. Running the
same command again skips every finished task and redoes the rest; the result is byte-identical to an uninterrupted
run. A change of settings, inputs or `tasks` (which changes how files are split between read tasks) starts over.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dataset_builder.pipeline.assemble_step import AssembleBuckets
from dataset_builder.pipeline.finalize_step import Finalize
from dataset_builder.pipeline.layout import WorkLayout, write_json
from dataset_builder.pipeline.pool_step import MergePool
from dataset_builder.pipeline.read_step import ReadExtract
from dataset_builder.pipeline.settings import CompileSettings

log = logging.getLogger("acc")
EXECUTORS = ("local", "slurm", "ray")


@dataclass
class ExecutorOptions:
    kind: str = "local"
    tasks: int | None = None  # read and assemble tasks (pool and finalize run as one); None: chosen for the machine
    workers: int | None = None  # tasks at once (local, ray; slurm: array parallelism, -1 = no limit); None: auto
    progress: bool = True
    keep_work: bool = False
    license: str = "other"
    plots: bool = True  # length plots in OUT/plots (off for a compile kept in memory)
    # slurm
    partition: str = ""
    time: str = "04:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 4
    env_command: str = ""  # e.g. "source .venv/bin/activate" (default: the venv this runs in)
    sbatch_args: dict | None = None


TASK_BYTES = 64 * 2**20  # below this much input a task costs more (its logs, stats, markers) than it saves


def default_tasks_and_workers(n_files: int, total_bytes: int = 0) -> tuple[int, int]:
    """Local defaults: one worker per two cores (a tokenizer already uses 2 threads), about 4 tasks per worker, but
    not more tasks than one per TASK_BYTES of input once every worker has one (the output is the same either way)."""
    workers = max(1, min((os.cpu_count() or 1) // 2, n_files))
    by_size = max(workers, -(-total_bytes // TASK_BYTES))
    return max(1, min(n_files, 4 * workers, by_size)), workers


def prepare_work(out: Path, settings: CompileSettings, files: list[tuple[str, str]], tasks: int) -> WorkLayout:
    """The work folder for this run: kept when it belongs to the same settings, inputs and tasks, else started over."""
    layout = WorkLayout(out)
    stamps = []
    for path, _ in files:
        if path.startswith("hf://"):  # revision-pinned URLs identify their content
            stamps.append((path, 0, 0))
        else:
            st = os.stat(path)
            stamps.append((path, st.st_size, st.st_mtime_ns))
    fingerprint = {"settings": settings.fingerprint(stamps), "tasks": tasks}
    marker = layout.work / "fingerprint.json"
    if marker.is_file() and json.loads(marker.read_text()) != fingerprint:
        log.info("settings, inputs or tasks changed since the last run in %s: starting over", out)
        shutil.rmtree(layout.work)
    if not marker.is_file():
        write_json(marker, fingerprint)
    return layout


def build_executors(settings: CompileSettings, files, out: Path, opts: ExecutorOptions) -> list:
    """The four stages as executors of `opts.kind`, each depending on the one before; run the last to run all."""
    layout = WorkLayout(out)
    steps = [
        ("read", ReadExtract(settings, files, str(out), opts.progress), opts.tasks),
        ("pool", MergePool(settings, str(out)), 1),
        ("assemble", AssembleBuckets(settings, str(out), opts.progress), opts.tasks),
        ("finalize", Finalize(settings, str(out), opts.keep_work, opts.license, opts.plots), 1),
    ]
    executors: list = []
    for stage, step, tasks in steps:
        depends = executors[-1] if executors else None
        logs = str(layout.logs(stage))
        if opts.kind == "local":
            from datatrove.executor import LocalPipelineExecutor

            workers = 1 if tasks == 1 else max(1, min(opts.workers, tasks))
            ex = LocalPipelineExecutor(
                [step], tasks=tasks, workers=workers, logging_dir=logs, depends=depends, start_method="spawn"
            )
        elif opts.kind == "ray":
            from datatrove.executor.ray import RayPipelineExecutor

            ex = RayPipelineExecutor(
                [step],
                tasks=tasks,
                workers=opts.workers if tasks > 1 else 1,
                logging_dir=logs,
                depends=depends,
                cpus_per_task=opts.cpus_per_task,
                mem_per_cpu_gb=opts.mem_per_cpu_gb,
            )
        elif opts.kind == "slurm":
            from datatrove.executor.slurm import SlurmPipelineExecutor

            if not opts.partition:
                raise ValueError("--executor slurm needs --partition")
            ex = SlurmPipelineExecutor(
                [step],
                tasks=tasks,
                workers=opts.workers if tasks > 1 else -1,
                time=opts.time,
                partition=opts.partition,
                cpus_per_task=opts.cpus_per_task,
                mem_per_cpu_gb=opts.mem_per_cpu_gb,
                job_name=f"acc-{stage}",
                logging_dir=logs,
                slurm_logs_folder=str(layout.work / "slurm_logs" / stage),
                depends=depends,
                env_command=opts.env_command or _venv_command(),
                sbatch_args=opts.sbatch_args,
            )
        else:
            raise ValueError(f"unknown executor {opts.kind!r} (executors: {', '.join(EXECUTORS)})")
        executors.append(ex)
    return executors


def run_pipeline(settings: CompileSettings, files: list[tuple[str, str]], out: Path, opts: ExecutorOptions) -> bool:
    """Run (or resume) the compile. True when the dataset is written (local, ray); False after a Slurm submission."""
    out.mkdir(parents=True, exist_ok=True)
    _console_logs()
    prepare_work(out, settings, files, opts.tasks)
    executors = build_executors(settings, files, out, opts)
    if opts.kind == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    executors[-1].run()
    if opts.kind == "slurm":
        return False
    incomplete = executors[-1].get_incomplete_ranks(skip_completed=True)
    if incomplete:
        raise RuntimeError(f"the compile did not finish: see the task logs in {WorkLayout(out).work / 'logs'}")
    return True


def _console_logs() -> None:
    """datatrove logs through loguru to the stderr of the moment it set up: bind it to the current one."""
    import sys

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("ACC_LOG_LEVEL", "WARNING"))


def _venv_command() -> str:
    venv = os.environ.get("VIRTUAL_ENV")
    return f"source {venv}/bin/activate" if venv else ""
