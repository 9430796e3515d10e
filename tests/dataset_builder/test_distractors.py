"""Filler order (BM25 close / random / mix) and whole-document packing."""

import random

import pytest

from dataset_builder.distractors import TopicIndex, check_mode, filler_stream, pack, random_stream, ranked

TEXTS = [
    "Lesbury is a village in Northumberland; its population at the 2011 census was 1,043.",
    "Pizza Inn is a restaurant chain founded in Dallas in 1958.",
    "Alnmouth, a village near Lesbury in Northumberland, had a population of 445 in 2011.",
    "Babylonian numbers were written in base sixty on clay tablets.",
    "Northumberland census 2011: parish populations of Lesbury, Alnmouth and Hipsburn.",
]


def test_bm25_ranks_topical_candidates_first():
    index = TopicIndex(TEXTS)
    scores = index.relevance("What was the 2011 population of Lesbury?", ["Lesbury Northumberland census village"])
    order = ranked(scores)
    assert set(order[:3]) == {0, 2, 4} and 1 not in order[:3] and 3 not in order[:3]
    assert index.relevance("zzz qqq", []).max() == 0


def test_streams_are_deterministic_and_each_index_once():
    ranking = ranked(TopicIndex(TEXTS).relevance("Lesbury population", []))
    for mode in ("close", "random", "mix"):
        a = list(filler_stream(range(5), mode, random.Random(7), ranking))
        b = list(filler_stream(range(5), mode, random.Random(7), ranking))
        assert a == b and sorted(a) == [0, 1, 2, 3, 4]
        assert list(filler_stream([4, 2, 0], mode, random.Random(7), ranking)) != [] and all(
            j in (0, 2, 4) for j in filler_stream([4, 2, 0], mode, random.Random(7), ranking)
        )
    assert list(filler_stream(range(5), "close", random.Random(1), ranking))[0] in (0, 4)
    assert sorted(random_stream(1000, random.Random(3))) == list(range(1000))
    with pytest.raises(ValueError, match="close, random, mix"):
        check_mode("nearest")


def test_pack_takes_whole_documents_and_fills_the_tail_best_fit():
    rng = random.Random(0)
    sizes = [rng.randrange(1500, 2500) for _ in range(400)]
    for room in (5000, 9000, 30000, 61111):
        taken: list[int] = []
        left = pack(range(400), sizes.__getitem__, room, lambda j, taken=taken: j not in taken, taken.append, sep=2)
        used = sum(sizes[j] + 2 for j in taken)
        assert used + left == room and left >= 0 and len(set(taken)) == len(taken)
        assert left < 200, (room, left)  # the tail is packed: what is left is far below a document


def test_pack_never_takes_unusable_documents():
    sizes = [100] * 10
    taken: list[int] = []
    pack(range(10), sizes.__getitem__, 10_000, lambda j: j % 2 == 0 and j not in taken, taken.append)
    assert sorted(taken) == [0, 2, 4, 6, 8]


def test_bm25_with_a_prebuilt_background_scores_as_one_index():
    """The reservoir's postings are built once per task; scores equal one index over the whole pool, and bm25s's."""
    import bm25s
    import numpy as np

    from dataset_builder.distractors import Postings, _tokenize

    texts = TEXTS * 3 + ["Hipsburn lies on the Aln, north of Lesbury.", "Clay tablets from Babylon, base sixty."]
    background = [0, 3, 5, 9, 14, 16]
    whole = TopicIndex(texts)
    split = TopicIndex(texts, (Postings.of([texts[j] for j in background]), background))
    reference = bm25s.BM25()
    reference.index(_tokenize(texts), show_progress=False)
    for question in ("2011 population of Lesbury", "babylonian clay tablets base sixty", "zzz"):
        (words,) = _tokenize([question]) or [[]]
        np.testing.assert_allclose(whole.scores(words), split.scores(words), rtol=1e-6)
        if words and any(w in reference.vocab_dict for w in words):
            np.testing.assert_allclose(whole.scores(words), reference.get_scores(words), rtol=1e-5)
        np.testing.assert_allclose(
            whole.relevance(question, [texts[1]]), split.relevance(question, [texts[1]]), rtol=1e-6
        )
