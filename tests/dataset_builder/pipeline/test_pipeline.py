"""The compile pipeline on datatrove: the same bytes for any tasks, workers and executor (local processes, a real
local Ray instance, Slurm job arrays run the way Slurm runs them), and a killed run resumes without redoing work."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions
from dataset_builder.pipeline.run import ExecutorOptions

SAMPLES = Path(__file__).resolve().parents[3] / "dataset_builder" / "samples"
INPUTS = [SAMPLES / "search", SAMPLES / "sql", SAMPLES / "swe"]
OPTS = DomainOptions(db_dir=SAMPLES / "sql", repos_dir=SAMPLES / "swe", page_cache_dir=SAMPLES / "corpus")
PUBLISHED = ("data/*/*.parquet", "rejects.jsonl", "stats.json", "README.md")


def digest(out: Path) -> dict[str, str]:
    """sha256 of every published file (the card's usage example names the local folder: that path is blanked)."""
    files = sorted(f for pattern in PUBLISHED for f in out.glob(pattern))
    assert any(f.suffix == ".parquet" for f in files)
    assert out.name == "acc"
    blank = {"README.md": lambda b: b.replace(str(out).encode(), b"OUT")}
    return {
        f.relative_to(out).as_posix(): hashlib.sha256(blank.get(f.name, lambda b: b)(f.read_bytes())).hexdigest()
        for f in files
    }


def compile_to(out: Path, **kwargs):
    return compile_trajectories(INPUTS, out, domain_options=OPTS, seed=5, progress=False, buckets=4, **kwargs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("reference") / "acc"
    result = compile_to(out, tasks=1, workers=1)
    assert result.balanced and len(result.records) > 10
    return digest(out)


def test_same_bytes_for_any_tasks_and_workers(reference, tmp_path):
    compile_to(tmp_path / "t4w2" / "acc", tasks=4, workers=2)
    compile_to(tmp_path / "t7w1" / "acc", tasks=7, workers=1)
    assert digest(tmp_path / "t4w2" / "acc") == reference
    assert digest(tmp_path / "t7w1" / "acc") == reference
    assert not (tmp_path / "t4w2" / "acc" / ".acc-work" / "evidence").exists()  # intermediate data removed


def test_ray_executor_gives_the_same_bytes(reference, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = ExecutorOptions(kind="ray", mem_per_cpu_gb=1)
        compile_to(tmp_path / "ray" / "acc", tasks=3, workers=2, executor=executor)
    finally:
        ray.shutdown()
    assert digest(tmp_path / "ray" / "acc") == reference
    logs = tmp_path / "ray" / "acc" / ".acc-work" / "logs"
    completions = sorted(p.name for p in (logs / "read" / "completions").iterdir())
    assert completions == ["00000", "00001", "00002"]


RUN_SCRIPT = """
import sys
from pathlib import Path
from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions
S = Path(sys.argv[2])
if __name__ == "__main__":
    compile_trajectories([S / "search", S / "sql", S / "swe"], sys.argv[1], seed=5, progress=False, buckets=4,
        tasks=8, workers=1, domain_options=DomainOptions(db_dir=S / "sql", repos_dir=S / "swe",
        page_cache_dir=S / "corpus"))
"""


def test_killed_run_resumes_without_redoing_finished_tasks(reference, tmp_path):
    out = tmp_path / "acc"
    script = tmp_path / "run.py"
    script.write_text(RUN_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(SAMPLES)], start_new_session=True)
    done = out / ".acc-work" / "logs" / "read" / "completions"
    deadline = time.monotonic() + 300
    while not (done.is_dir() and len(list(done.iterdir())) >= 2) and proc.poll() is None:
        assert time.monotonic() < deadline, "the read stage never completed a task"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in done.iterdir()}
    logs = out / ".acc-work" / "logs" / "read" / "logs"
    finished_logs = {n: (logs / f"task_{n}.log").stat().st_mtime_ns for n in finished}
    assert 2 <= len(finished) < 8, finished  # killed part-way
    assert not (out / "stats.json").exists()

    result = compile_to(out, tasks=8, workers=1)  # the same command again
    assert result.balanced
    assert digest(out) == reference
    for name, mtime in finished.items():  # the tasks finished before the kill were not run again
        assert (done / name).stat().st_mtime_ns == mtime
        assert (logs / f"task_{name}.log").stat().st_mtime_ns == finished_logs[name]
    assert len(list(done.iterdir())) == 8


def test_changed_settings_start_over(reference, tmp_path):
    out = tmp_path / "acc"
    compile_to(out, tasks=2, workers=1)
    stats = json.loads((out / "stats.json").read_text())
    again = compile_trajectories(INPUTS, out, domain_options=OPTS, seed=6, progress=False, buckets=4, tasks=2)
    assert json.loads((out / "stats.json").read_text())["settings"]["seed"] == 6 != stats["settings"]["seed"]
    assert {r.id for r in again.records}.isdisjoint({r.id for r in compile_to(tmp_path / "b" / "acc", tasks=1).records})


def test_slurm_job_arrays_run_as_slurm_runs_them(reference, tmp_path, monkeypatch):
    """`--executor slurm` writes one sbatch script per stage, chained by dependencies; the test then runs each
    array the way Slurm would (SLURM_ARRAY_TASK_ID per element, `launch_pickled_pipeline`), in dependency order."""
    import datatrove.executor.slurm as slurm

    submitted: list[tuple[str, list[str]]] = []

    def fake_sbatch(contents: str, job_id_retriever, *args) -> str:  # the cluster edge: sbatch itself
        submitted.append((contents, list(args)))
        return str(1000 + len(submitted))

    monkeypatch.setattr(slurm, "launch_slurm_job", fake_sbatch)
    out = tmp_path / "acc"
    executor = ExecutorOptions(kind="slurm", partition="cpu", time="01:00:00", env_command="true")
    result = compile_to(out, tasks=3, executor=executor)
    assert result.counts == {} and not (out / "stats.json").exists()  # submitted, nothing run yet

    stages = [(c, a) for c, a in submitted if "launch_pickled_pipeline" in c]  # (the others merge stats)
    assert [c.split("--job-name=")[1].split("\n")[0] for c, _ in stages] == [
        "acc-read", "acc-pool", "acc-assemble", "acc-finalize",
    ]  # fmt: skip
    arrays = [c.split("--array=")[1].split("\n")[0] for c, _ in stages]
    assert arrays == ["0-2", "0-0", "0-2", "0-0"]
    assert all("#SBATCH --partition=cpu" in c and "#SBATCH --time=01:00:00" in c for c, _ in stages)
    job_ids = [str(1000 + submitted.index(s) + 1) for s in stages]
    for (_, args), previous in zip(stages[1:], job_ids):
        assert f"--dependency=afterok:{previous}" in args

    bin_dir = tmp_path / "bin"  # the cluster's own tools, as a node has them: only `scontrol show hostnames`
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho localhost\n")
    (bin_dir / "scontrol").chmod(0o755)
    for contents, _ in stages:  # run each array element as Slurm would
        pik = contents.split("launch_pickled_pipeline ")[1].split()[0]
        n = int(contents.split("--array=0-")[1].split("\n")[0]) + 1
        for index in range(n):
            env = {
                **os.environ,
                "PATH": f"{bin_dir}:{os.environ['PATH']}",
                "SLURM_ARRAY_TASK_ID": str(index),
                "SLURM_NODELIST": "localhost",
            }
            launcher = shutil.which("launch_pickled_pipeline", path=str(Path(sys.executable).parent))
            done = subprocess.run([launcher, pik], env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
    assert digest(out) == reference
