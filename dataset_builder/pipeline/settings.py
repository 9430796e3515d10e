"""`CompileSettings`: every knob of a compile, parsed once, typed, passed to every stage (and pickled to workers)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.budget import MAX_LENGTH, BudgetRange
from dataset_builder.domains import DomainOptions
from dataset_builder.schema import DOMAINS

POOL_PIECES = 4096  # filler reservoir per domain: at most this many pieces ...
POOL_CHARS = 64 * 2**20  # ... and this many characters (bounds every assemble task's memory)
BUCKET_INPUT_BYTES = 16 * 2**20  # "auto" buckets: about one bucket per this many input bytes per domain
MIN_BUCKETS = 8
MAX_BUCKETS = 4096


@dataclass
class CompileSettings:
    budgets: dict[str, BudgetRange]
    reasoning_reserve: int
    tokenizer: str | None = None  # what `token_counter` loads (None: the bundled tokenizer)
    tokenizer_name: str = ""  # its display name, as records and stats name it
    domains: tuple[str, ...] = DOMAINS
    fmt: str | None = None
    seed: int = 0
    max_length: int = MAX_LENGTH
    test_size: float = 0.0
    options: DomainOptions = field(default_factory=DomainOptions)
    buckets: int = 1  # filler buckets per domain (fixed before the run: never derived from tasks)
    pool_pieces: int = POOL_PIECES
    pool_chars: int = POOL_CHARS
    command: str = ""
    inputs: list[str] = field(default_factory=list)  # as given (resolved to absolute paths)
    secrets: str = "redact"  # credentials / personal data in records: "redact" | "drop" | "off" (see secrets/)
    secrets_allowlist: str | None = None  # file of known-public values the scan leaves alone
    distractors: str = "mix"  # filler order: close | random | mix (dataset_builder/distractors.py)

    def to_stats(self) -> dict[str, Any]:
        """The `settings` block of stats.json (traces and push read db_dir / repos_dir / inputs from it)."""
        opts = self.options
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "tokenizer": self.tokenizer_name,
            "budgets": {d: [b.low, b.high] for d, b in self.budgets.items()},
            "max_length": self.max_length,
            "reasoning_reserve": self.reasoning_reserve,
            "domains": list(self.domains),
            "format": self.fmt or "auto",
            "command": self.command,
            "buckets": self.buckets,
            "distractors": self.distractors,
            "pool": {"pieces": self.pool_pieces, "chars": self.pool_chars},
            # local paths: `acc traces` finds the databases through db_dir; `acc push` rewrites them all (push.py)
            "inputs": list(self.inputs),
            "db_dir": str(Path(opts.db_dir).resolve()) if opts.db_dir else None,
            "repos_dir": str(Path(opts.repos_dir).resolve()) if opts.repos_dir else None,
            "page_cache_dir": str(Path(opts.page_cache_dir).resolve()) if opts.page_cache_dir else None,
            "secrets": self.secrets,
            "secrets_allowlist": self.secrets_allowlist,  # a local path too (push rewrites it)
        }

    def fingerprint(self, files: list[tuple[str, int, float]]) -> str:
        """What a run's intermediate files depend on: settings (not the command line) and the input files."""
        stats = {k: v for k, v in self.to_stats().items() if k != "command"}
        key = json.dumps([stats, repr(self.options), files], sort_keys=True, default=str)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def auto_buckets(total_input_bytes: int) -> int:
    """Buckets per domain from the corpus size: a bucket is assembled in memory, so it should stay small; and at
    least MIN_BUCKETS, so that assembly has work for several workers (decided by the inputs alone, never the tasks)."""
    return max(MIN_BUCKETS, min(MAX_BUCKETS, total_input_bytes // BUCKET_INPUT_BYTES))
