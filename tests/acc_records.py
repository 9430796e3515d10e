"""ACC records for tests, rendered exactly as the assembly engine renders them: one builder for every test that needs
records without compiling trajectories (trainer, analysis, traces)."""

from __future__ import annotations

import json

from dataset_builder.assemble import completion_messages, prompt_messages, render_context
from dataset_builder.schema import ACCRecord, Piece


def acc_record(
    rid: str,
    domain: str,
    question: str,
    pieces: list[Piece],
    answer: str = "",
    *,
    gold: str | None = None,
    reasoning: str = "",
    verified: bool = False,
    n_tokens: int | None = None,
    budget: int = 8192,
    meta: dict | None = None,
) -> ACCRecord:
    """A record of `pieces` in the given order; `gold` defaults to the answer, `n_tokens` to a chars/4 estimate."""
    context = render_context(pieces)
    return ACCRecord(
        id=rid,
        domain=domain,
        source="test",
        question=question,
        pieces=pieces,
        context=context,
        reasoning=reasoning,
        answer=answer,
        gold=answer if gold is None else gold,
        verified=verified,
        prompt=prompt_messages(domain, question, context),
        completion=completion_messages(reasoning, answer),
        n_tokens=len(context) // 4 if n_tokens is None else n_tokens,
        budget=budget,
        meta=json.dumps(meta or {}),
    )
