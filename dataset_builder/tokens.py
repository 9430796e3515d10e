"""Token counting with any Hugging Face tokenizer, through the `tokenizers` library alone (no torch, no transformers).

`--tokenizer` takes a local directory or file with a `tokenizer.json`, or a Hub model id (e.g. "Qwen/Qwen3-30B-A3B").
Without it, the small tokenizer bundled in `dataset_builder/tokenizer/` is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_TOKENIZER = str(Path(__file__).parent / "tokenizer")
BATCH_CHARS = 2**20


@dataclass
class TokenCounter:
    name: str
    _tok: object

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count_batch(self, texts: list[str]) -> list[int]:
        """Counts of many texts, encoded in parallel in chunks of about BATCH_CHARS characters: an `Encoding` holds
        its ids, offsets and token strings (~100 bytes a token), so one call over a whole corpus would need GBs."""
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)  # fast: no offsets (tokenizers>=0.21)
        counts: list[int] = []
        start = 0
        while start < len(texts):
            end, size = start, 0
            while end < len(texts) and (end == start or size + len(texts[end]) <= BATCH_CHARS):
                size += len(texts[end])
                end += 1
            counts += [len(e.ids) for e in encode(texts[start:end], add_special_tokens=False)]
            start = end
        return counts


@lru_cache(maxsize=8)
def token_counter(name_or_path: str | None = None) -> TokenCounter:
    from tokenizers import Tokenizer

    name = name_or_path or DEFAULT_TOKENIZER
    path = Path(name)
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.is_file():
        tok = Tokenizer.from_file(str(path))
    elif path.exists() or name.startswith((".", "/")):
        raise FileNotFoundError(f"tokenizer not found: {name} (expected a directory with tokenizer.json)")
    else:
        tok = Tokenizer.from_pretrained(name)  # Hub id; needs network or a warm HF cache
    tok.no_truncation()
    tok.no_padding()
    return TokenCounter(name=name if name != DEFAULT_TOKENIZER else "acc-hf/default-bpe-8k", _tok=tok)
