"""The filler reservoir is the same set however the corpus is split between tasks (bottom-k by a seeded hash)."""

from __future__ import annotations

import random

import pytest

from dataset_builder.pipeline.read_step import Reservoir, ReservoirEntry, reservoir_rank


def entries(n: int, seed: int = 0) -> list[ReservoirEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = f"page {i % (n // 2)} " + "word " * rng.randrange(1, 60)  # some texts recur under other questions
        out.append(ReservoirEntry(reservoir_rank(7, text), "page", f"t{i}", text, f"q{i % 13}", ""))
    return out


def kept(parts: list[list[ReservoirEntry]], pieces: int, chars: int) -> list[ReservoirEntry]:
    locals_ = []
    for part in parts:  # each read task keeps its own bottom-k ...
        r = Reservoir(pieces, chars)
        for e in part:
            r.add(e)
        locals_.append(r.entries())
    merged = Reservoir(pieces, chars)  # ... and the pool stage merges them
    for part in reversed(locals_):
        for e in part:
            merged.add(e)
    return merged.entries()


@pytest.mark.parametrize("pieces,chars", [(50, 10**9), (10**6, 3000), (40, 2500)])
def test_same_reservoir_for_any_split(pieces, chars):
    items = entries(400)
    whole = kept([items], pieces, chars)
    assert whole and len(whole) <= pieces and sum(len(e.text) for e in whole) <= chars
    for n_tasks in (2, 3, 7):
        parts = [items[i::n_tasks] for i in range(n_tasks)]
        assert kept(parts, pieces, chars) == whole
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert kept([shuffled], pieces, chars) == whole
    texts = [e.text for e in whole]
    assert len(set(texts)) == len(texts)  # one entry per distinct text
    # the kept set is a prefix of all distinct texts by rank: nothing ranked below a kept one was left out
    ranks = sorted({e.rank for e in items})
    assert [e.rank for e in whole] == ranks[: len(whole)]
