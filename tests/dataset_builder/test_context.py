"""Composed context counts (context.py) equal whole-context counts, for several tokenizer families; a tokenizer whose
counts do not compose is detected and counted whole."""

from __future__ import annotations

import random

import pytest
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

from dataset_builder.context import ContextCounter, render_context
from dataset_builder.schema import Piece
from dataset_builder.tokens import TokenCounter, token_counter

# Qwen2/Qwen3's pre-tokenizer regex (digits one by one, punctuation keeps its trailing newlines)
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CORPUS = [
    "def parse(self, text):\n    return json.loads(text)  # 42\n",
    '<document index="12" kind="page" title="https://en.wikipedia.org/wiki/Paris">\nParis is the capital.\n</document>',
    "| id | name |\n|---:|---|\n| 1 | Ada |\n",
    "Ünïcödé text, 中文, emoji 🙂 and numbers 1234567890.\n\n\n",
] * 50


def trained(pre_tokenizer, normalizer=None, vocab: int = 600) -> TokenCounter:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizer
    if normalizer is not None:
        tok.normalizer = normalizer
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=alphabet, show_progress=False)
    )
    return TokenCounter(name=f"test-{id(tok)}", _tok=tok)


def byte_level_qwen() -> TokenCounter:
    split = pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated")
    return trained(pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                   normalizers.NFC())  # fmt: skip


def awkward_pieces(rng: random.Random, n: int) -> list[Piece]:
    edges = ["", "\n", "\n\n", ">", "  ", "\t", "7", "é\u0301", "</document>", "\r\n", "=" * 20, "🙂", '"', " "]
    words = ["alpha", "beta", "1234", "x=1;", "Über", "中文", "<tag>", "\n", "    ", "--", "'s", "def f():"]
    pieces = []
    for i in range(n):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(0, 40)))
        text = rng.choice(edges) + body + rng.choice(edges)
        title = rng.choice(["a.py", 'quote"d', "line\nbreak", "https://x.org/p?q=1", ""])
        pieces.append(Piece(rng.choice(["page", "file", "table"]), f"{title}{i}", text))
    return pieces


@pytest.mark.parametrize(
    "make",
    [
        lambda: token_counter(),  # the bundled byte-level BPE (GPT-2 regex)
        byte_level_qwen,
        lambda: trained(pre_tokenizers.Whitespace()),
        lambda: trained(pre_tokenizers.Metaspace()),
    ],
    ids=["bundled", "qwen-regex-nfc", "whitespace", "metaspace"],
)
def test_composed_counts_equal_whole_counts(make):
    counter = make()
    contexts = ContextCounter(counter)
    rng = random.Random(0)
    pool = awkward_pieces(rng, 300)
    cases = [rng.sample(pool, rng.randint(1, 60)) for _ in range(40)] + [pool]  # the last: indices up to 300
    whole = counter.count_batch([render_context(c) for c in cases])
    composed = [contexts.context(c) for c in cases]
    if contexts.composes:
        assert composed == whole
        # and each document's count at its index is what the context sums
        for case, total in zip(cases, whole):
            docs = [contexts.document(p, k) for k, p in enumerate(case, start=1)]
            assert sum(docs) + contexts.join * (len(case) - 1) == total
    else:  # counted whole: the same numbers
        assert composed == whole


def test_the_real_tokenizer_families_compose():
    # byte-level BPE with the GPT-2 and the Qwen regex: the tokenizers acc-hf is used with compose (fast path)
    assert ContextCounter(token_counter()).composes
    assert ContextCounter(byte_level_qwen()).composes


class LengthCounter:
    """A counter whose counts do not compose: one token per 7 characters of the whole text."""

    name = "length-over-7"

    def count(self, text: str) -> int:
        return len(text) // 7

    def count_batch(self, texts: list[str]) -> list[int]:
        return [self.count(t) for t in texts]


def test_a_counter_that_does_not_compose_is_counted_whole():
    contexts = ContextCounter(LengthCounter())
    assert not contexts.composes
    pieces = awkward_pieces(random.Random(1), 30)
    assert contexts.context(pieces) == len(render_context(pieces)) // 7
