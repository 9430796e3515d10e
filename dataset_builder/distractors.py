"""Which filler a record gets, and how it is packed: topical ranking (BM25) and whole-document packing.

Modes (`--distractors`, default `mix`):

- `close`: filler candidates in order of BM25 similarity to the question and the gold pages (the hard case: pages
  on the same topic that do not hold the answer);
- `random`: a seeded random order (the easy case; what contexts were before);
- `mix` (default): each draw is close or random by a seeded coin flip, so a record holds both kinds.

Similarity (`TopicIndex`): BM25 (Lucene's variant, as `bm25s` scores it; bm25s's words: English stopwords, no
stemming) over the first `INDEX_CHARS` characters of each candidate (a page's title and lead say what it is about,
and the index stays small).
A record's score for a candidate = its BM25 score for the question's words, plus half its score for the
`GOLD_TERMS` most frequent words of the gold pages, each normalised by its maximum over the pool.

Packing (`pack`): whole documents only, never a cut one. Candidates are taken in stream order while they fit; when
the room left is about two documents, the rest is packed best-fit from the next `PACK_WINDOW` usable candidates of the
stream: the pair (or single document) that leaves the least room, then the largest that still fits, repeatedly.
Everything is deterministic: ties are broken by pool index, and randomness comes from the record's own `rng`.
"""

from __future__ import annotations

import bisect
import random
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

MODES = ("close", "random", "mix")
DEFAULT_MODE = "mix"
INDEX_CHARS = 2000
GOLD_TERMS = 32
GOLD_WEIGHT = 0.5
CLOSE_TOP = 4096  # candidates ranked per record; past them the stream goes on in random order
PACK_WINDOW = 256


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"--distractors {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def _bm25s():
    """bm25s, imported lazily; it sets its logger to DEBUG on import, which would print each index build."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _tokenize(texts: list[str]) -> list[list[str]]:
    bm25s = _bm25s()

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


WORDS_CACHE_TEXTS = 8192  # LRU: the filler reservoir (4096 pieces, indexed in every bucket) stays, bucket texts pass
_WORDS: OrderedDict[str, list[str]] = OrderedDict()  # text head -> its BM25 words (interned: shared across texts)


def _words(texts: Sequence[str]) -> list[list[str]]:
    """BM25 words of each text's first INDEX_CHARS characters; the most recently used texts' words are kept."""
    heads = [t[:INDEX_CHARS] for t in texts]
    new = list(dict.fromkeys(h for h in heads if h not in _WORDS))
    for head, words in zip(new, _tokenize(new) if new else []):
        _WORDS[head] = [sys.intern(w) for w in words]
    out = []
    for head in heads:
        _WORDS.move_to_end(head)
        out.append(_WORDS[head])
    while len(_WORDS) > max(WORDS_CACHE_TEXTS, len(heads)):
        _WORDS.popitem(last=False)
    return out


K1, B = 1.5, 0.75  # BM25 parameters (Lucene's, as bm25s uses by default)


@dataclass
class Postings:
    """BM25 words of some texts as an inverted index: word -> (document numbers, counts), and the documents' lengths.
    The filler reservoir's postings are built once per task (`TopicIndex(background=...)`), a bucket's per bucket."""

    lengths: np.ndarray
    words: dict[str, tuple[np.ndarray, np.ndarray]]

    @classmethod
    def of(cls, texts: Sequence[str]) -> Postings:
        words = _words(texts)
        vocab: dict[str, int] = {}
        ids = np.fromiter((vocab.setdefault(w, len(vocab)) for ws in words for w in ws), dtype=np.int64)
        lengths = np.array([len(ws) for ws in words], dtype=np.int64)
        doc = np.repeat(np.arange(len(words), dtype=np.int64), lengths)
        pairs, counts = np.unique(ids * max(1, len(words)) + doc, return_counts=True)  # by word, then document
        word_of, doc_of = np.divmod(pairs, max(1, len(words)))
        starts = np.flatnonzero(np.r_[True, word_of[1:] != word_of[:-1]]) if len(pairs) else np.array([], np.int64)
        ends = np.r_[starts[1:], len(pairs)]
        names = list(vocab)
        index = {
            names[word_of[a]]: (doc_of[a:b], counts[a:b].astype(np.float64)) for a, b in zip(starts.tolist(), ends)
        }
        return cls(lengths.astype(np.float64), index)


class TopicIndex:
    """BM25 (Lucene's variant, k1 = 1.5, b = 0.75, as bm25s computes it) over a filler pool's texts (their first
    INDEX_CHARS characters).

    `background`: postings already built for some of the texts (the domain's reservoir, shared by every bucket of a
    task), with their positions in `texts`; only the other texts are indexed here. Scores are the same either way:
    document frequencies, the document count and the mean length are those of all `texts`."""

    def __init__(self, texts: Sequence[str], background: tuple[Postings, Sequence[int]] | None = None):
        self.size = len(texts)
        parts: list[tuple[Postings, np.ndarray]] = []
        known: set[int] = set()
        if background is not None and len(background[1]):
            postings, positions = background
            parts.append((postings, np.asarray(positions, dtype=np.int64)))
            known = set(parts[0][1].tolist())
        rest = [j for j in range(self.size) if j not in known]
        if rest:
            parts.append((Postings.of([texts[j] for j in rest]), np.array(rest, dtype=np.int64)))
        self.parts = parts
        total_length = sum(float(p.lengths.sum()) for p, _ in parts)
        self.mean_length = total_length / self.size if self.size else 0.0
        self.empty = total_length == 0  # no words at all (or no texts): every score is 0
        self._terms: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def scores(self, words: list[str]) -> np.ndarray:
        total = np.zeros(self.size, dtype=np.float64)
        if self.empty or not words:
            return total.astype(np.float32)
        for word in words:
            if word not in self._terms:
                self._terms[word] = self._term(word)
            where, contribution = self._terms[word]
            total[where] += contribution  # a document once per word
        return total.astype(np.float32)

    def _term(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """Where `word` occurs (pool positions) and its BM25 score there; computed once per word and pool."""
        hits = [(p.words[word], p.lengths, positions) for p, positions in self.parts if word in p.words]
        df = sum(len(docs) for (docs, _), _, _ in hits)
        if not df:
            return np.array([], dtype=np.int64), np.array([], dtype=np.float64)
        idf = np.log(1 + (self.size - df + 0.5) / (df + 0.5))
        where, contribution = [], []
        for (docs, tf), lengths, positions in hits:
            norm = K1 * (1 - B + B * lengths[docs] / self.mean_length)
            where.append(positions[docs])
            contribution.append(idf * tf / (tf + norm))  # Lucene drops the constant (k1 + 1) factor
        return np.concatenate(where), np.concatenate(contribution)

    def relevance(self, question: str, gold_texts: Sequence[str]) -> np.ndarray:
        """Per candidate: similarity to the question plus GOLD_WEIGHT x similarity to the gold pages' top words."""
        (q_words,) = _tokenize([question]) or [[]]
        gold_words = [w for words in _words(gold_texts) for w in words] if gold_texts else []
        top = [w for w, _ in sorted(Counter(gold_words).items(), key=lambda kv: (-kv[1], kv[0]))[:GOLD_TERMS]]
        total = np.zeros(self.size, dtype=np.float32)
        for words, weight in ((q_words, 1.0), (top, GOLD_WEIGHT)):
            s = self.scores(words)
            if s.size and s.max() > 0:
                total += weight * s / s.max()
        return total


def ranked(scores: np.ndarray, top: int = CLOSE_TOP) -> list[int]:
    """Indices of the `top` highest scores, best first; ties by index (deterministic)."""
    n = len(scores)
    if n == 0:
        return []
    k = min(top, n)
    idx = np.arange(n)
    part = idx if k == n else np.argpartition(-scores, k - 1)[:k]
    best = part[np.lexsort((part, -scores[part]))]
    return best[scores[best] > 0].tolist()


def random_stream(n: int, rng: random.Random) -> Iterator[int]:
    """A seeded random permutation of range(n), produced lazily (O(1) per element: a sparse Fisher-Yates)."""
    swapped: dict[int, int] = {}
    for i in range(n):
        j = rng.randrange(i, n)
        yield swapped.get(j, j)
        swapped[j] = swapped.get(i, i)


def filler_stream(
    indices: Sequence[int], mode: str, rng: random.Random, ranking: list[int] | None = None
) -> Iterator[int]:
    """Pool indices (from `indices`) in the order a record considers them, each once. `ranking`: the pool's indices
    by similarity to the record (`ranked`), for modes close and mix."""
    if mode == "random" or ranking is None:
        for k in random_stream(len(indices), rng):
            yield indices[k]
        return
    if isinstance(indices, range) and indices == range(len(indices)):  # the whole pool: every ranked index
        close = iter(ranking)
    else:
        allowed = indices if isinstance(indices, range) else set(indices)  # O(1) membership either way
        close = (j for j in ranking if j in allowed)  # lazily: a record reads the head of the ranking
    rand = (indices[k] for k in random_stream(len(indices), rng))
    seen: set[int] = set()
    streams = [close, rand]
    while streams:
        pick = streams[0] if mode == "close" or len(streams) == 1 else streams[rng.random() < 0.5]
        j = next(pick, None)
        if j is None:
            streams.remove(pick)
            continue
        if j not in seen:
            seen.add(j)
            yield j


def pack(
    stream: Iterable[int],
    size: Callable[[int], int],
    room: int,
    usable: Callable[[int], bool],
    take: Callable[[int], None],
    *,
    sep: int = 0,
    min_tokens: int = 32,
    window: int = PACK_WINDOW,
    max_misses: int = PACK_WINDOW,
) -> int:
    """Take whole documents from `stream` into `room` tokens (each costs `sep + size(j)`); returns the room left.

    In stream order while the room is larger than about two of the documents seen; then best fit (see module doc)."""
    it = iter(stream)
    largest = 0
    misses = 0
    spare: list[int] = []  # usable candidates skipped because they did not fit
    for j in it:
        if room < min_tokens or misses >= max_misses:
            break
        if not usable(j):
            misses += 1
            continue
        cost = sep + size(j)
        largest = max(largest, cost)
        if room - cost >= 2 * largest:
            take(j)
            room -= cost
            misses = 0
        elif cost <= room:
            spare.append(j)
            break  # the tail: best fit below
        else:
            spare.append(j)
            misses += 1
    # tail: best fit among the next `window` usable candidates (and the ones that were skipped); when the room left
    # is smaller than the documents, `max_misses` in a row end the search (not a walk through the whole pool)
    misses = 0
    for j in it:
        if len(spare) >= window or misses >= max_misses:
            break
        if usable(j):
            spare.append(j)
        else:
            misses += 1
    spare = [j for j in dict.fromkeys(spare) if sep + size(j) <= room]
    while spare and room >= min_tokens:
        costs = sorted((sep + size(j), k) for k, j in enumerate(spare))
        values = [c for c, _ in costs]
        best, pair = -1, ()
        for a, (ca, ka) in enumerate(costs):  # one document, or the pair that leaves the least room
            if ca > room:
                break
            if ca > best:
                best, pair = ca, (ka,)
            b = bisect.bisect_right(values, room - ca) - 1
            if b == a:
                b -= 1
            if b >= 0 and b != a and ca + values[b] > best:
                best, pair = ca + values[b], (ka, costs[b][1])
        if not pair:
            break
        chosen = [spare[k] for k in pair]
        for j in chosen:
            if usable(j):
                take(j)
                room -= sep + size(j)
        spare = [j for j in spare if j not in chosen and usable(j) and sep + size(j) <= room]
    return room
