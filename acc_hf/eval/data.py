"""Evaluation rows: from the Hub, local parquet, or the offline generators; filtered and binned by prompt tokens.

Sources (`--data`):
- `hub`: `openai/mrcr` / `openai/graphwalks` through `datasets.load_dataset` (only the parquet files the filters
  need: the requested needle counts; for GraphWalks the <=128k file when --max-context allows no more).
  `HF_HUB_OFFLINE=1` is respected: only a warm local cache is used. Failure is an error naming the way out.
- `auto` (default): the Hub when reachable, else the generators, with a message saying so (and the report says
  which data every number comes from).
- `generated`: `generate_mrcr` / `generate_graphwalks`, sized to token targets.
- a path: a parquet file or a directory of them, with the published columns; each file is assigned to MRCR or
  GraphWalks by its columns.

Every row either becomes an `EvalItem`, is left out by a filter (`filtered`), or is listed in `skipped` with its
reason (bad prompt JSON, unknown problem type, longer than --max-context, ...): whatever a malformed row makes the
parser or the tokenizer raise (any exception type, recursion on deep nesting included) is that row's skip, with the
type in the reason, and `rows = items + skipped + filtered` (`EvalSet.balanced`).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from acc_hf.eval import as_counter, bin_label, graphwalks, mrcr

HUB_REPOS = {"mrcr": "openai/mrcr", "graphwalks": "openai/graphwalks"}
BENCHMARKS = tuple(HUB_REPOS)
COLUMNS = {"mrcr": mrcr.COLUMNS, "graphwalks": graphwalks.COLUMNS}
# A prompt cannot have fewer tokens than chars / CHARS_PER_TOKEN_MAX under any practical tokenizer, so longer rows
# are dropped before tokenizing (the 1M-token MRCR rows are ~4 MB of text each).
CHARS_PER_TOKEN_MAX = 12


class DataUnavailable(RuntimeError):
    """The requested data source cannot be read (Hub unreachable, offline without a cache, bad path)."""


@dataclass
class EvalItem:
    benchmark: str  # "mrcr" | "graphwalks"
    id: str
    messages: list[dict]
    n_tokens: int
    group: str  # MRCR: needle count ("2", "4", "8"); GraphWalks: problem type ("bfs", "parents")
    reference: dict  # what grading needs: answer + random_string_to_prepend, or answer_nodes

    @property
    def bin(self) -> str:
        return bin_label(self.n_tokens)


@dataclass
class EvalSet:
    benchmark: str
    source: str  # where the rows come from, printed in every report
    kind: str = "generated"  # "hub", "local" or "generated"
    dataset: str = ""  # Hub id, local path or acc-hf/generated-<benchmark>: the model-index dataset
    items: list[EvalItem] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"id", "reason"}: bad or too long rows
    filtered: int = 0  # rows left out by --needles / --problem-types / --n
    n_rows: int = 0  # rows read: items + skipped + filtered

    @property
    def balanced(self) -> bool:
        return self.n_rows == len(self.items) + len(self.skipped) + self.filtered


def grade_item(item: EvalItem, response: str) -> float:
    if item.benchmark == "mrcr":
        return mrcr.grade(response, item.reference["answer"], item.reference["random_string_to_prepend"])
    return graphwalks.score(response, item.reference["answer_nodes"])


# ---------------------------------------------------------------------------------------------------------------
# Sources.


def hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in {"1", "ON", "YES", "TRUE"}


def load_hub(
    benchmark: str, needles=None, max_context: int | None = None, revision: str | None = None
) -> tuple[list[dict], str]:
    """Rows of the official dataset and a description naming the repo and revision."""
    import datasets

    repo = HUB_REPOS[benchmark]
    data_files = None
    if not hub_offline():
        data_files = _hub_files(repo, benchmark, needles, max_context, revision)
    elif not _in_local_cache(repo):  # fail now rather than let a library retry a network it must not use
        raise DataUnavailable(f"{repo}: HF_HUB_OFFLINE is set and no cached copy was found")
    try:
        ds = datasets.load_dataset(repo, data_files=data_files, revision=revision, split="train")
    except Exception as e:  # noqa: BLE001 - any failure here means "not available", reported with its cause
        how = "HF_HUB_OFFLINE is set and no cached copy was found" if hub_offline() else "loading failed"
        raise DataUnavailable(f"{repo}: {how} ({type(e).__name__}: {e})") from e
    described = f"{repo}" + (f"@{revision}" if revision else "") + (f" files={data_files}" if data_files else "")
    chars_column = "n_chars" if benchmark == "mrcr" else "prompt_chars"
    if max_context and chars_column in ds.column_names:  # filter on Arrow before materializing 1M-token rows
        n_all = len(ds)
        ds = ds.filter(lambda chars: chars <= max_context * CHARS_PER_TOKEN_MAX, input_columns=[chars_column])
        described += f"; {n_all - len(ds)} rows with {chars_column} > {CHARS_PER_TOKEN_MAX} x --max-context not loaded"
    return [dict(row) for row in ds], described


def _in_local_cache(repo: str) -> bool:
    from datasets import config
    from huggingface_hub import constants

    in_hub_cache = (Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}").exists()
    return in_hub_cache or any(Path(config.HF_DATASETS_CACHE).glob(f"{repo.replace('/', '___')}*"))


def _hub_files(repo, benchmark, needles, max_context, revision) -> list[str] | None:
    import httpx
    from huggingface_hub import constants, list_repo_files

    try:  # one quick probe, so an unreachable Hub fails in seconds rather than after minutes of retries
        httpx.head(f"{constants.ENDPOINT}/api/datasets/{repo}", timeout=5.0, follow_redirects=True)
    except httpx.HTTPError as e:
        raise DataUnavailable(f"{repo}: the Hub is not reachable ({type(e).__name__}: {e})") from e
    try:
        files = [f for f in list_repo_files(repo, repo_type="dataset", revision=revision) if f.endswith(".parquet")]
    except Exception as e:  # noqa: BLE001 - auth, missing revision, rate limit: all mean "not available"
        raise DataUnavailable(f"{repo}: listing its files failed ({type(e).__name__}: {e})") from e
    if benchmark == "mrcr" and needles:
        files = [f for f in files if any(f"{n}needle" in Path(f).name for n in needles)]
    if benchmark == "graphwalks" and max_context and max_context <= 131072:
        files = [f for f in files if "128k_and_shorter" in f] or files
    return sorted(files) or None


def load_local(path: str | Path) -> dict[str, tuple[list[dict], str]]:
    """Rows per benchmark from a parquet file or a directory of parquet files (assigned by their columns)."""
    import datasets
    import pyarrow.parquet as pq

    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise DataUnavailable(f"{path}: no parquet files found")
    by_benchmark: dict[str, list[str]] = {}
    for f in files:
        names = set(pq.read_schema(f).names)
        kind = next((b for b, cols in COLUMNS.items() if set(cols) <= names), None)
        if kind is None:
            wanted = "; ".join(f"{b}: {', '.join(cols)}" for b, cols in COLUMNS.items())
            raise DataUnavailable(f"{f}: columns {sorted(names)} match neither benchmark (need {wanted})")
        by_benchmark.setdefault(kind, []).append(str(f))
    out = {}
    for kind, kind_files in by_benchmark.items():
        ds = datasets.load_dataset("parquet", data_files=kind_files, split="train")
        out[kind] = ([dict(row) for row in ds], f"local parquet {', '.join(kind_files)}")
    return out


def default_lengths(max_context: int) -> list[int]:
    """Token targets for generated sets: the upper edge of every bin from 4k up to max_context (or max_context)."""
    lengths = [4096 * 2**i for i in range(9) if 4096 * 2**i <= max_context]
    return lengths or [max_context]


def generate(
    benchmark: str,
    n: int,
    lengths: list[int],
    needles=(2, 4, 8),
    problem_types=graphwalks.PROBLEM_TYPES,
    seed: int = 0,
    tokenizer=None,
) -> tuple[list[dict], str]:
    """n rows per (needle count or problem type, length); a length L targets the bin whose upper edge is L."""
    rows = []
    for length in lengths:
        target = max(1, int(length * 0.97))  # prompts come out at most this long and close to it
        for group in needles if benchmark == "mrcr" else problem_types:
            try:
                if benchmark == "mrcr":
                    rows += mrcr.generate_mrcr(n, int(group), target, seed=seed, tokenizer=tokenizer)
                else:
                    rows += graphwalks.generate_graphwalks(n, group, target, seed=seed, tokenizer=tokenizer)
            except ValueError as e:  # a length too short for this group: the others still run
                print(f"[acc eval] no generated {benchmark} rows for {group} at {length} tokens: {e}")
    groups = needles if benchmark == "mrcr" else problem_types
    return rows, f"generated (acc-hf offline generator, seed={seed}, lengths={lengths}, groups={list(groups)})"


# ---------------------------------------------------------------------------------------------------------------
# Rows -> items.


def make_set(
    benchmark: str,
    rows: list[dict],
    source: str,
    tokenizer=None,
    *,
    max_context: int | None = None,
    needles=None,
    problem_types=None,
    n: int | None = None,
    seed: int = 0,
) -> EvalSet:
    """Validate, filter and token-count rows; keep at most n per (group, bin) cell (a seeded sample)."""
    counter = as_counter(tokenizer)
    out = EvalSet(benchmark, source, n_rows=len(rows))
    candidates = []
    for index, row in enumerate(rows):
        item_id = f"{benchmark}/{index}"
        try:
            messages, group, reference = _parse_row(benchmark, row)
        except Exception as e:  # noqa: BLE001 - any way a row is malformed is that row's skip, never the run's end
            out.skipped.append({"id": item_id, "reason": f"bad row: {type(e).__name__}: {str(e)[:300]}"})
            continue
        unwanted_needles = needles is not None and benchmark == "mrcr" and int(group) not in set(needles)
        unwanted_type = problem_types is not None and benchmark == "graphwalks" and group not in set(problem_types)
        if unwanted_needles or unwanted_type:
            out.filtered += 1
            continue
        chars = sum(len(m["content"]) for m in messages)
        if max_context and chars > max_context * CHARS_PER_TOKEN_MAX:
            out.skipped.append({"id": item_id, "reason": f"longer than --max-context {max_context} ({chars} chars)"})
            continue
        candidates.append((item_id, messages, group, reference))
    counts = _count_tokens(counter, [c[1] for c in candidates])
    cells: dict[tuple[str, str], list[EvalItem]] = {}
    for (item_id, messages, group, reference), n_tok in zip(candidates, counts):
        if isinstance(n_tok, Exception):
            out.skipped.append({"id": item_id, "reason": f"token count failed: {type(n_tok).__name__}: {n_tok}"})
            continue
        if max_context and n_tok > max_context:
            out.skipped.append({"id": item_id, "reason": f"{n_tok} prompt tokens > --max-context {max_context}"})
            continue
        item = EvalItem(benchmark, item_id, messages, n_tok, group, reference)
        cells.setdefault((group, item.bin), []).append(item)
    rng = random.Random(f"sample/{seed}")
    for key in sorted(cells):
        items = cells[key]
        if n is not None and len(items) > n:
            out.filtered += len(items) - n
            items = sorted(rng.sample(items, n), key=lambda it: int(it.id.rsplit("/", 1)[1]))
        out.items += items
    out.items.sort(key=lambda it: int(it.id.rsplit("/", 1)[1]))
    return out


def _parse_row(benchmark: str, row: dict) -> tuple[list[dict], str, dict]:
    if not isinstance(row, dict):
        raise TypeError(f"a row is a mapping of columns, not {type(row).__name__}")
    if benchmark == "mrcr":
        messages = json.loads(row["prompt"])
        if not (isinstance(messages, list) and messages and all(_is_message(m) for m in messages)):
            raise ValueError("prompt is not a JSON list of {role, content} chat messages")
        answer, prefix = row["answer"], row["random_string_to_prepend"]
        if not (isinstance(answer, str) and isinstance(prefix, str) and prefix):
            raise ValueError("answer and random_string_to_prepend must be strings (the prefix non-empty)")
        needles = int(row["n_needles"])
        if needles < 1:
            raise ValueError(f"n_needles must be >= 1, got {needles}")
        return messages, str(needles), {"answer": answer, "random_string_to_prepend": prefix}
    prompt, nodes, problem_type = row["prompt"], row["answer_nodes"], row["problem_type"]
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must be a non-empty string")
    if problem_type not in graphwalks.PROBLEM_TYPES:
        raise ValueError(f"problem_type {problem_type!r} is not one of {graphwalks.PROBLEM_TYPES}")
    if not isinstance(nodes, list) or not all(isinstance(x, str) for x in nodes):
        raise ValueError("answer_nodes must be a list of strings")
    return [{"role": "user", "content": prompt}], problem_type, {"answer_nodes": nodes}


def _is_message(m) -> bool:
    return (
        isinstance(m, dict) and m.get("role") in {"system", "user", "assistant"} and isinstance(m.get("content"), str)
    )


def _count_tokens(counter, conversations: list[list[dict]]) -> list[int | Exception]:
    """MRCR's count: the sum of the message contents' tokens (no chat template). A conversation the tokenizer fails
    on gets the exception instead of a count (the batch is then counted one conversation at a time)."""
    flat = [m["content"] for conv in conversations for m in conv]
    try:
        counts = counter.count_batch(flat) if flat else []
    except Exception:  # noqa: BLE001 - find the conversation(s) that broke the batch
        return [_count_one(counter, conv) for conv in conversations]
    out, i = [], 0
    for conv in conversations:
        out.append(sum(counts[i : i + len(conv)]))
        i += len(conv)
    return out


def _count_one(counter, conversation: list[dict]) -> int | Exception:
    try:
        return sum(counter.count_batch([m["content"] for m in conversation]))
    except Exception as e:  # noqa: BLE001
        return e


def counter_for(models: list[str], tokenizer: str | None = None):
    """The token counter for bins and --max-context: --tokenizer, else the first model's, else the bundled one."""
    if tokenizer:
        return as_counter(tokenizer)
    first = models[0] if models else None
    if first and (Path(first) / "tokenizer.json").is_file():
        return as_counter(first)
    if first and not Path(first).exists() and not hub_offline() and "/" in first:
        try:
            return as_counter(first)
        except Exception as e:  # noqa: BLE001 - fall back, but say so
            print(f"[acc eval] could not load the tokenizer of {first} ({e}); counting with the bundled tokenizer")
    elif first:
        print(f"[acc eval] no tokenizer.json for {first}; counting tokens with the bundled tokenizer (use --tokenizer)")
    return as_counter(None)
