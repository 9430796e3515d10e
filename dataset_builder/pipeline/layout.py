"""Where a compile writes: the published dataset folder and, inside it, the hidden work folder of the pipeline.

    OUT/README.md, stats.json, rejects.jsonl, secrets.jsonl (local only), data/<domain>/<split>-*.parquet, plots/
    OUT/.acc-work/
      fingerprint               settings + input files this work belongs to (a change starts over)
      logs/<stage>/             datatrove: completions/<rank> markers, per-task logs and stats
      evidence/<domain>/<bucket>/<rank>-<part>.parquet   stage read: compiled trajectories by filler bucket
      candidates/<domain>/<rank>.parquet                 stage read: reservoir candidates (bottom-k by hash)
      pool/<domain>.parquet                              stage pool: the filler reservoir
      rejects/<stage>-<key>.jsonl, counts/<stage>-<key>.json
      records/<domain>/<split>/<bucket>.parquet          stage assemble
Every intermediate file is written under a temporary name and renamed, so a killed task leaves no half file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORK_DIR = ".acc-work"
STAGES = ("read", "pool", "assemble", "finalize")


@dataclass(frozen=True)
class WorkLayout:
    out: Path

    @property
    def work(self) -> Path:
        return self.out / WORK_DIR

    def logs(self, stage: str) -> Path:
        return self.work / "logs" / stage

    def evidence(self, domain: str, bucket: int) -> Path:
        return self.work / "evidence" / domain / f"{bucket:05d}"

    def candidates(self, domain: str) -> Path:
        return self.work / "candidates" / domain

    def pool(self, domain: str) -> Path:
        return self.work / "pool" / f"{domain}.parquet"

    def records(self, domain: str, split: str) -> Path:
        return self.work / "records" / domain / split

    def rejects(self, stage: str, key: str) -> Path:
        return self.work / "rejects" / f"{stage}-{key}.jsonl"

    def counts(self, stage: str, key: str) -> Path:
        return self.work / "counts" / f"{stage}-{key}.json"

    def buckets(self) -> list[tuple[str, int]]:
        """(domain, bucket) of every bucket with evidence, sorted: the unit of work of the assemble stage."""
        root = self.work / "evidence"
        if not root.is_dir():
            return []
        return sorted((d.name, int(b.name)) for d in root.iterdir() if d.is_dir() for b in d.iterdir() if b.is_dir())


def write_atomic(path: Path, write) -> None:
    """`write(tmp_path)` then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"))


def write_lines(path: Path, lines: list[str]) -> None:
    write_atomic(path, lambda p: p.write_text("".join(line + "\n" for line in lines), encoding="utf-8"))


def read_stats(out: str | Path) -> dict[str, Any]:
    """OUT/stats.json: counts, token statistics, reject reasons and the compile `settings` (see settings.py)."""
    return json.loads((Path(out) / "stats.json").read_text(encoding="utf-8"))
