"""Token budgets: how long each compiled context may be, so that the whole training row fits the model's window.

The length contract (one number from compile to training). A training row is the chat-templated prompt (question,
context, answer-format instruction) plus the completion (`<think>` reasoning `</think>` + answer). `acc compile
--max-length L` (default `MAX_LENGTH` = 131072, the `max_length` the recipes pack to) budgets every record so that

    frame + context + reasoning_reserve <= L        frame = chat-template allowance + question and instructions
                                                            + the answer (+ its think tags)

i.e. a record's context budget is at most `L - reasoning_reserve - frame` (its `RowLimit.max_context`). The
reasoning reserve (`--reasoning-reserve R`, default `default_reasoning_reserve(L)` = min(16384, L // 2)) keeps room
for the verified trace `acc traces` adds later: thinking teachers write 5k-20k tokens and `acc traces` asks for at most
16384 (`--max-tokens`), so any completion it can get fits; a short window keeps at least half of itself for the
prompt (at L = 4096 a 1,500-word trace is ~2,100 tokens of the bundled tokenizer: half the row). A trace longer than the
reserve is handled by `acc traces`, which drops distractors (never gold) until the row fits L.

Within that limit every record gets its own budget, drawn log-uniformly between a low and a high bound (log-uniform
gives each octave, 8k-16k, 16k-32k, ..., the same share of records, which is what a length curriculum over 2k-128k
needs); the range is clipped to the record's `max_context`. The defaults follow each domain's natural size:

- search 8k-64k: a search agent opens a handful of pages of 2k-10k tokens each and sees many more result lists;
  below 8k there is no room for distractor pages, above 64k most of the context would be filler from other questions.
- swe 16k-128k: the evidence is whole source files at the base commit (the files the patch touches plus the files the
  agent read), often 5k-30k tokens each, and a repository offers plenty of real neighbouring files as distractors.
- sql 4k-32k: the evidence is the schema and rows of the tables a query touched; benchmark databases have tens of
  tables, so contexts are smaller, and a whole small database fits in 32k.

Override per domain with `--budget swe=32768` (fixed), `--budget sql=4096:16384` (range; `k` suffixes work:
`sql=4k:16k`) or `--budget budgets.yaml` (a mapping `{domain: 32768 | "4k:16k" | [4096, 16384]}`).

A record whose gold evidence alone is larger than its drawn budget is never cut: it moves up to the smallest
power-of-two budget that fits, up to its `max_context`; beyond that it is rejected with the numbers (gold, frame,
reserve, L). Token counts are those of the compile tokenizer: train with the same tokenizer for the contract to hold.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_LENGTH = 131072  # tokens per training row: `acc compile --max-length`, ACCConfig.max_length, recipes/qwen3_moe.yaml
MAX_REASONING_RESERVE = 16384  # acc traces' default --max-tokens: the longest completion it asks a teacher for
TEMPLATE_ALLOWANCE = 64  # chat-template tokens around one user and one assistant turn (ChatML/Qwen3 ~10, Llama 3 ~40)
FRAME_SLACK = 8  # tokens for merges across the boundaries of separately counted parts (question, context, answer)
MIN_BUDGET = 2048
ROUND_TO = 256  # drawn budgets are multiples of this (easier to read, and to bucket)


def default_reasoning_reserve(max_length: int = MAX_LENGTH) -> int:
    """min(16384, L // 2): room for a thinking teacher's whole completion, at most half of a short window."""
    return min(MAX_REASONING_RESERVE, max_length // 2)


class BudgetError(ValueError):
    """The gold evidence does not fit the row limit; the record is rejected (never cut)."""


@dataclass(frozen=True)
class RowLimit:
    """What one record's context may use so that its training row fits `max_length`.

    `frame`: the row's tokens besides the context (template allowance, question, instructions, answer); `reserve`:
    the room kept for the reasoning trace."""

    max_length: int = MAX_LENGTH
    reserve: int = 0
    frame: int = 0

    @property
    def max_context(self) -> int:
        return self.max_length - self.reserve - self.frame

    def rejection(self, gold_tokens: int) -> str:
        return (
            f"gold evidence alone is {gold_tokens} tokens, over the {self.max_context} maximum for this record's "
            f"context (--max-length {self.max_length} - reasoning reserve {self.reserve} - {self.frame} for question, "
            "answer and chat template); the evidence is never cut: raise --max-length (a model with a longer window) "
            "or lower --reasoning-reserve"
        )


def check_length(max_length: int, reasoning_reserve: int) -> None:
    """ValueError unless the contract leaves room for a context of MIN_BUDGET tokens."""
    if reasoning_reserve < 0:
        raise ValueError(f"--reasoning-reserve must be >= 0, got {reasoning_reserve}")
    if max_length - reasoning_reserve < MIN_BUDGET:
        raise ValueError(
            f"--max-length {max_length} minus --reasoning-reserve {reasoning_reserve} leaves less than {MIN_BUDGET} "
            "tokens for the prompt (question, context, chat template) and the answer"
        )


def frame_tokens(counter, prompt_without_context: str, completion: str) -> int:
    """A row's tokens besides its context: the user text with an empty context, the completion text, the chat
    template allowance and the boundary slack. frame + context tokens is an upper bound of the tokenized row."""
    return frames_tokens(counter, [(prompt_without_context, completion)])[0]


def frames_tokens(counter, frames: list[tuple[str, str]]) -> list[int]:
    """`frame_tokens` of many (prompt without context, completion) pairs, counted in one batch."""
    counts = counter.count_batch([text for pair in frames for text in pair])
    return [prompt + done + TEMPLATE_ALLOWANCE + FRAME_SLACK for prompt, done in zip(counts[::2], counts[1::2])]


@dataclass(frozen=True)
class BudgetRange:
    low: int
    high: int

    def describe(self) -> str:
        return f"{self.low}" if self.low == self.high else f"log-uniform {self.low}-{self.high}"


DEFAULT_BUDGETS = {
    "search": BudgetRange(8192, 65536),
    "swe": BudgetRange(16384, MAX_LENGTH),  # up to the whole window; clipped per record to what the row leaves
    "sql": BudgetRange(4096, 32768),
}


def parse_size(text: str | int) -> int:
    """'32768', '32k' or '32K' -> 32768."""
    if isinstance(text, int):
        return text
    s = str(text).strip().lower()
    try:
        return int(float(s[:-1]) * 1024) if s.endswith("k") else int(s)
    except ValueError:
        raise ValueError(f"not a token count: {text!r} (use e.g. 32768 or 32k)") from None


def parse_range(value, max_length: int = MAX_LENGTH) -> BudgetRange:
    """A fixed size (32768, '32k') or a range ('4096:16384', '4k:16k', [4096, 16384]) -> BudgetRange, validated."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"a budget range has two bounds, got {value!r}")
        low, high = parse_size(value[0]), parse_size(value[1])
    elif isinstance(value, str) and ":" in value:
        lo, _, hi = value.partition(":")
        low, high = parse_size(lo), parse_size(hi)
    else:
        low = high = parse_size(value)
    if not MIN_BUDGET <= low <= high <= max_length:
        raise ValueError(f"budget {low}:{high} must satisfy {MIN_BUDGET} <= low <= high <= {max_length} (--max-length)")
    return BudgetRange(low, high)


def parse_budgets(specs: list[str] | dict | None, max_length: int = MAX_LENGTH) -> dict[str, BudgetRange]:
    """The per-domain budgets: the defaults updated by `--budget` values ('domain=SPEC' or a YAML file) or a dict."""
    from dataset_builder.schema import DOMAINS

    budgets = dict(DEFAULT_BUDGETS)
    if not specs:
        return budgets
    items: list[tuple[str, object]] = []
    if isinstance(specs, dict):
        items = list(specs.items())
    else:
        for spec in specs:
            if "=" in spec:
                domain, _, value = spec.partition("=")
                items.append((domain.strip(), value.strip()))
            elif spec.endswith((".yaml", ".yml")) or Path(spec).is_file():
                items.extend(_load_yaml(Path(spec)).items())
            else:
                raise ValueError(f"--budget {spec!r}: expected DOMAIN=SIZE, DOMAIN=LOW:HIGH or a YAML file")
    for domain, value in items:
        if domain not in DOMAINS:
            raise ValueError(f"budget for unknown domain {domain!r} (domains: {', '.join(DOMAINS)})")
        budgets[domain] = value if isinstance(value, BudgetRange) else parse_range(value, max_length)
    return budgets


def _load_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read budget file {path}: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"budget file {path} must map domains to sizes, e.g. `swe: 32k` or `sql: [4096, 16384]`")
    return data


def next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def fit_budget(budget: int, gold_tokens: int, limit: RowLimit = RowLimit()) -> int:
    """`budget` if the gold fits, else the smallest power of two >= gold_tokens, capped at `limit.max_context`.

    Raises BudgetError (naming the numbers) when the gold alone is over `limit.max_context`."""
    if gold_tokens <= budget:
        return budget
    if gold_tokens > limit.max_context or limit.max_context <= 0:
        raise BudgetError(limit.rejection(gold_tokens))
    return min(limit.max_context, max(budget, next_power_of_two(gold_tokens)))


def clip(spec: BudgetRange, max_context: int) -> BudgetRange:
    """The range with both bounds clipped to `max_context` (a range above it collapses to `max_context`)."""
    return BudgetRange(min(spec.low, max_context), min(spec.high, max_context))


def draw_budget(
    domain: str,
    gold_tokens: int,
    rng: random.Random,
    budgets: dict[str, BudgetRange] | None = None,
    limit: RowLimit = RowLimit(),
) -> tuple[int, int]:
    """(drawn budget, final budget) for one record; final != drawn when the gold needed a larger one.

    The draw is log-uniform over the domain's range clipped to `limit.max_context`."""
    spec = clip((budgets or DEFAULT_BUDGETS)[domain], max(0, limit.max_context))
    if spec.low == spec.high:
        drawn = spec.low
    else:
        x = math.exp(rng.uniform(math.log(spec.low), math.log(spec.high)))
        drawn = min(spec.high, max(spec.low, round(x / ROUND_TO) * ROUND_TO))
    return drawn, fit_budget(drawn, gold_tokens, limit)


def length_stats(max_length: int | None, reasoning_reserve: int | None, row_tokens: list[int]) -> dict[str, Any]:
    """stats.json `length`: the contract the dataset was compiled to and its longest row (meta `row_tokens`)."""
    return {
        "max_length": max_length,
        "reasoning_reserve": reasoning_reserve,
        "template_allowance": TEMPLATE_ALLOWANCE,
        "longest_row": max(row_tokens, default=0),
        "rows_over_max_length": sum(t > max_length for t in row_tokens) if max_length else 0,
    }
