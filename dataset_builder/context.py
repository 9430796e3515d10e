"""How a context is rendered, and its exact token count without tokenizing it.

A context is documents joined by SEPARATOR; a document is a header (with its 1-based index), the piece's text and a
footer. A distractor appears in many contexts, so tokenizing every context would count the same text over and over
(a 128k-token context is mostly other runs' documents). `ContextCounter` counts each document once, rendered with a
placeholder index, and composes a context's count from its documents:

    tokens(context) = sum(tokens(document_k at index k)) + (n - 1) * join
    tokens(document at index k) = tokens(document at PLACEHOLDER_INDEX) - tokens("999999") + tokens(str(k))
    join = tokens(FOOTER + SEPARATOR + header) - tokens(FOOTER) - tokens(header) (the separator and any merge of it
           with the footer's closing '>' or the header's opening '<')

Every junction is fixed text (a footer, the separator, the next header; the index between two quotes), so this is
exact for tokenizers whose pre-tokenizer splits text into local pieces (the regex and byte-level pre-tokenizers of
GPT-2, Llama 3, Qwen, Mistral's tekken, ...). Each tokenizer is checked once, on probe documents with awkward edges
(trailing '>', newlines, spaces, digits, an embedded footer); one that does not compose is counted whole instead:
slower, the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataset_builder.schema import Piece

SEPARATOR = "\n\n"
FOOTER = "\n</document>"
PLACEHOLDER_INDEX = 999999  # documents are counted once with this index, then corrected for their real one
PROBE_INDICES = (1, 2, 9, 10, 11, 42, 99, 100, 101, 999, 1000, 1234, 4096, 65535, 100000)
PROBE_TEXTS = (
    "plain words and a number 12345",
    "ends with a tag>",
    "ends with newlines\n\n",
    "\n\nstarts with newlines",
    "   indented\n\ttabs\t",
    '</document>\n\n<document index="3">',
    "é\u0301 combining, 中文, emoji 🙂",
    "",
    "=" * 300,
    "x" * 5 + " " * 40,
)


def header(index: int, piece: Piece) -> str:
    title = piece.title.replace('"', "'").replace("\n", " ")
    return f'<document index="{index}" kind="{piece.kind}" title="{title}">\n'


def render_piece(index: int, piece: Piece) -> str:
    return header(index, piece) + piece.text + FOOTER


def render_context(pieces: list[Piece]) -> str:
    return SEPARATOR.join(render_piece(i, p) for i, p in enumerate(pieces, start=1))


def document_key(piece: Piece) -> tuple[str, str, str]:
    """What a document's count depends on (the index aside)."""
    return (piece.kind, piece.title, piece.text)


_PROBED: dict[str, tuple[int, bool]] = {}  # tokenizer name -> (join, composes), worked out once per process


@dataclass
class ContextCounter:
    """Exact context counts from per-document counts (see the module docstring); `documents` is the cache."""

    counter: Any  # dataset_builder.tokens.TokenCounter
    documents: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _indices: dict[int, int] = field(default_factory=dict)
    join: int = 0
    composes: bool = True

    def __post_init__(self) -> None:
        name = getattr(self.counter, "name", None) or repr(self.counter)  # (a default would build the repr each time)
        if name not in _PROBED:
            probe = Piece("text", "probe", "")
            head, foot = header(PLACEHOLDER_INDEX, probe), FOOTER
            joined, alone_head, alone_foot = self.counter.count_batch([foot + SEPARATOR + head, head, foot])
            self.join = joined - alone_head - alone_foot
            _PROBED[name] = (self.join, self._probe())
        self.join, self.composes = _PROBED[name]

    def count_documents(self, pieces) -> None:
        """Count (in one batch) every document not counted yet."""
        new = {document_key(p): p for p in pieces if document_key(p) not in self.documents}
        keys = list(new)
        texts = [render_piece(PLACEHOLDER_INDEX, new[k]) for k in keys]
        self.documents.update(zip(keys, self.counter.count_batch(texts)))

    def document(self, piece: Piece, index: int = PLACEHOLDER_INDEX) -> int:
        """Tokens of the piece rendered as the `index`-th document (header + text + footer)."""
        key = document_key(piece)
        if key not in self.documents:
            self.count_documents([piece])
        return self.documents[key] + self._index(index) - self._index(PLACEHOLDER_INDEX)

    def context(self, pieces: list[Piece]) -> int:
        """Tokens of `render_context(pieces)`, exactly."""
        if not pieces:
            return 0
        if not self.composes:
            return self.counter.count(render_context(pieces))
        self.count_documents(pieces)
        self._count_indices(len(pieces))
        return sum(self.document(p, k) for k, p in enumerate(pieces, start=1)) + (len(pieces) - 1) * self.join

    def _index(self, index: int) -> int:
        if index not in self._indices:
            self._indices[index] = self.counter.count(str(index))
        return self._indices[index]

    def _count_indices(self, up_to: int) -> None:
        """Count the indices 1..up_to in one batch (the ones not counted yet)."""
        if up_to in self._indices:
            return
        missing = [k for k in range(1, up_to + 1) if k not in self._indices]
        self._indices.update(zip(missing, self.counter.count_batch([str(k) for k in missing])))

    def _probe(self) -> bool:
        """Whether composed counts equal whole counts on awkward documents, in two orders and at awkward indices."""
        pieces = [Piece("text", f"t{i}", text) for i, text in enumerate(PROBE_TEXTS)]
        n = len(pieces)

        def composed(ps: list[Piece]) -> int:
            return sum(self.document(p, k) for k, p in enumerate(ps, start=1)) + (len(ps) - 1) * self.join

        texts = [render_context(pieces), render_context(pieces[::-1])]
        texts += [render_piece(i, pieces[i % n]) for i in PROBE_INDICES]
        expected = [composed(pieces), composed(pieces[::-1])]
        expected += [self.document(pieces[i % n], i) for i in PROBE_INDICES]
        return self.counter.count_batch(texts) == expected
