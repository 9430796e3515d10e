"""Keeping a verified trace inside the dataset's length contract (`budget.py`): the training row must fit max_length.

`acc compile --max-length L` left `--reasoning-reserve` tokens of each row for the trace. A teacher that thinks longer
than that would make the row (prompt + `<think>` trace `</think>` + answer) longer than L, and the trainer would drop
it. `fit` re-fits such a record instead: it drops distractors (never gold evidence), in a seeded random order, until

    frame(question, instructions, completion, chat template) + context tokens <= L

and re-renders the context from the record's `pieces`. Kept documents keep their original `index`, so a trace that
cites "document 7" still points at the same document (the numbering may then have gaps; `meta.refit.indices` lists
it). When the gold evidence alone cannot fit beside the trace, `fit` raises `DoesNotFit` naming the numbers, and the
candidate is not kept (another, shorter candidate may be).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from dataset_builder.assemble import SEPARATOR, render_piece
from dataset_builder.budget import frame_tokens


class DoesNotFit(ValueError):
    """Even with every distractor dropped, the row with this trace is longer than max_length."""


@dataclass(frozen=True)
class LengthContract:
    max_length: int
    counter: Any  # dataset_builder.tokens.TokenCounter: the tokenizer the dataset was compiled with


def load_contract(settings: dict[str, Any], tokenizer: str | None = None) -> LengthContract | None:
    """The contract recorded in stats.json's settings, or None for a dataset compiled without one.

    Raises ValueError when the tokenizer that counts the rows cannot be loaded (the contract cannot be checked)."""
    from dataset_builder.assemble import _tokenizer_path
    from dataset_builder.tokens import token_counter

    max_length = settings.get("max_length")
    if not max_length:
        return None
    name = tokenizer or _tokenizer_path(settings.get("tokenizer"))
    try:
        counter = token_counter(name)
    except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exceptions for Hub ids it cannot fetch
        raise ValueError(
            f"the dataset's rows must fit max_length {max_length} under the tokenizer {name!r} it was compiled with, "
            f"which cannot be loaded ({type(err).__name__}: {err}); pass --tokenizer NAME_OR_DIR"
        ) from err
    return LengthContract(int(max_length), counter)


def prompt_without_context(row: dict[str, Any]) -> str:
    """The text of the prompt turns with the context taken out: question, intro and answer format."""
    text = "\n".join(m["content"] for m in row["prompt"])
    return text.replace(row["context"], "", 1) if row["context"] else text


def row_tokens(row: dict[str, Any], completion: str, contract: LengthContract) -> tuple[int, int]:
    """(frame, row tokens) of the record with this completion text: an upper bound of the tokenized training row."""
    frame = frame_tokens(contract.counter, prompt_without_context(row), completion)
    return frame, frame + int(row["n_tokens"])


def fit(row: dict[str, Any], completion: str, contract: LengthContract) -> dict[str, Any]:
    """The fields to update so that the row with `completion` fits max_length: {} when it already fits, else a
    re-fitted context (pieces, context, prompt, n_tokens, budget) and a `refit` note for meta. Raises DoesNotFit."""
    frame, total = row_tokens(row, completion, contract)
    if total <= contract.max_length:
        return {"row_tokens": total}
    room = contract.max_length - frame  # context tokens the row can take beside this completion
    pieces = list(enumerate(row["pieces"], start=1))  # (original document index, piece dict)
    counter = contract.counter

    def render(kept: list[tuple[int, dict]]) -> str:
        return SEPARATOR.join(render_piece(i, _piece(p)) for i, p in kept)

    gold = [(i, p) for i, p in pieces if not p["is_distractor"]]
    gold_tokens = counter.count(render(gold)) if gold else 0
    if gold_tokens > room:
        raise DoesNotFit(
            f"the row would be {total} tokens, over max_length {contract.max_length}, and the gold evidence alone "
            f"({gold_tokens} tokens) does not fit beside this completion ({frame} tokens with the question and chat "
            f"template; {room} left for the context)"
        )
    rng = random.Random(f"refit|{row['id']}")
    order = [k for k, (_, p) in enumerate(pieces) if p["is_distractor"]]
    rng.shuffle(order)
    dropped: set[int] = set()
    estimate = int(row["n_tokens"])
    for k in order:  # drop by the stored per-piece counts first, then check the whole context exactly
        if estimate <= room:
            break
        dropped.add(k)
        estimate -= int(pieces[k][1].get("n_tokens") or 0) + 1
    while True:
        kept = [ip for k, ip in enumerate(pieces) if k not in dropped]
        context = render(kept)
        n_tokens = counter.count(context)
        left = [k for k in order if k not in dropped]
        if n_tokens <= room or not left:
            break
        dropped.add(left[0])
    prompt = [dict(m, content=m["content"].replace(row["context"], context, 1)) for m in row["prompt"]]
    return {
        "pieces": [p for _, p in kept],
        "context": context,
        "prompt": prompt,
        "n_tokens": n_tokens,
        "budget": room,
        "row_tokens": frame + n_tokens,
        "refit": {
            "max_length": contract.max_length,
            "row_tokens_before": total,
            "dropped_distractors": len(dropped),
            "n_tokens_before": int(row["n_tokens"]),
            "budget_before": int(row["budget"]),
            "indices": [i for i, _ in kept],
        },
    }


def apply(row: dict[str, Any], meta: dict[str, Any], update: dict[str, Any]) -> None:
    """Write a `fit` result into the row and its meta."""
    if "row_tokens" in update:  # absent without a length contract
        meta["row_tokens"] = update["row_tokens"]
    if "refit" not in update:
        return
    for key in ("pieces", "context", "prompt", "n_tokens", "budget"):
        row[key] = update[key]
    meta["refit"] = update["refit"]
    meta["n_tokens"] = update["n_tokens"]
    gold = sum(int(p.get("n_tokens") or 0) for p in row["pieces"] if not p["is_distractor"])
    meta["gold_fraction"] = round(gold / max(1, update["n_tokens"]), 4)


def _piece(p: dict[str, Any]):
    from dataset_builder.schema import Piece

    return Piece(p["kind"], p["title"], p["text"], bool(p["is_distractor"]), int(p.get("n_tokens") or 0))
