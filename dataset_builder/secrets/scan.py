"""Scanning one text: the spans to redact, with their types; and the placeholders that replace them.

    scanner = Scanner(allowlist=load_allowlist("public_values.txt"))
    spans = scanner.scan(text)                 # [Span(start, end, type), ...], sorted, never overlapping
    redactor = Redactor()                      # one per record: the same value gets the same placeholder
    clean = redactor.redact(text, spans)       # "key <SECRET:aws_access_key> mailed to <EMAIL>"

Results are cached per distinct text (a page used as filler in many records is scanned once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dataset_builder.secrets.detectors import PII_PLACEHOLDERS, Detector, detectors

MAX_EXTEND = 4096  # characters a token-like match is extended over at most
CACHE_MAX_CHARS = 64 * 2**20  # the cache keeps its texts alive: bounded by their total size ...
CACHE_MAX_TEXTS = 2**18  # ... and their number (short texts recur most: titles, kinds, meta values)
PLACEHOLDER_RE = re.compile(r"<(?:SECRET:([a-z0-9_]+?)|(EMAIL|IP|USER))(?:_(\d+))?>")
STRIP = " \t\r\n\"'=:"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str

    @property
    def is_pii(self) -> bool:
        return self.type in PII_PLACEHOLDERS


def load_allowlist(path: str | Path | None) -> frozenset[str]:
    """Known-public values, one per line (blank lines and `#` comments skipped). Matches equal to one are kept."""
    if path is None:
        return frozenset()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#"))


@dataclass
class Scanner:
    allowlist: frozenset[str] = frozenset()
    _cache: dict[str, tuple[Span, ...]] = field(default_factory=dict, repr=False)
    _cache_chars: int = field(default=0, repr=False)
    _extend: dict[str, re.Pattern] = field(default_factory=dict, repr=False)

    def scan(self, text: str) -> tuple[Span, ...]:
        if not text:
            return ()
        hit = self._cache.get(text)
        if hit is None:
            if self._cache_chars + len(text) > CACHE_MAX_CHARS or len(self._cache) >= CACHE_MAX_TEXTS:
                self._cache.clear()
                self._cache_chars = 0
            hit = self._cache[text] = self._scan(text)
            self._cache_chars += len(text)
        return hit

    def _scan(self, text: str) -> tuple[Span, ...]:
        low = text.lower()
        present = triggers_in(text, low)
        found: list[tuple[int, int, int, str]] = []
        for d in detectors():
            if not present.isdisjoint(d.triggers):
                found.extend(self._matches(d, text, low))
        return merge(found)

    def _matches(self, d: Detector, text: str, low: str) -> Iterable[tuple[int, int, int, str]]:
        for m in _finditer(d, text, low):
            start, end = m.span(d.group)
            if start < 0:
                continue
            if d.group == 0:  # plugin patterns that include their delimiters (artifactory: `(?:\s|=|:|"|^)AKC...`)
                while start < end and text[start] in STRIP:
                    start += 1
                while end > start and text[end - 1] in STRIP:
                    end -= 1
            if end <= start:
                continue
            if d.priority == 0 and start and text[start - 1].isalnum() and text[start].isalnum():
                continue  # inside a longer token: base64 data, a hash
            if d.extend:
                ext = self._extend.get(d.extend)
                if ext is None:
                    ext = self._extend[d.extend] = re.compile(f"{d.extend}{{0,{MAX_EXTEND}}}")
                end = ext.match(text, end).end()
            if text[start:end] in self.allowlist or (d.check is not None and not d.check(text, start, end)):
                continue
            yield start, end, d.priority, d.type


@lru_cache(maxsize=1)
def _trigger_automata():
    """Two Aho-Corasick automata over every detector's triggers: the lowercase ones (matched in the lowercased text)
    and the others (matched as written). One pass over a text finds them all; testing each trigger with `in` would
    read the text once per trigger (~140 times)."""
    import ahocorasick

    automata = {True: ahocorasick.Automaton(), False: ahocorasick.Automaton()}
    singles: dict[bool, list[str]] = {True: [], False: []}
    for trigger in sorted({t for d in detectors() for t in d.triggers}):
        if len(trigger) == 1:  # '.', ':', '@' occur everywhere: `in` stops at the first, the automaton reports all
            singles[trigger == trigger.lower()].append(trigger)
        else:
            automata[trigger == trigger.lower()].add_word(trigger, trigger)
    for automaton in automata.values():
        automaton.make_automaton()
    return (automata[True], singles[True]), (automata[False], singles[False])


def triggers_in(text: str, low: str) -> set[str]:
    """The detectors' triggers that occur in `text` (lowercase triggers anywhere in `low`)."""
    found: set[str] = set()
    for (automaton, singles), where in zip(_trigger_automata(), (low, text)):
        found.update(t for t in singles if t in where)
        if len(automaton):
            found.update(t for _, t in automaton.iter(where))
    return found


def _finditer(d: Detector, text: str, low: str) -> Iterable[re.Match]:
    """All matches of the detector; with anchors, only in the windows around their occurrences in `low`."""
    if not d.anchors:
        yield from d.pattern.finditer(text)
        return
    before, after = d.window
    hits = sorted(i for a in d.anchors for i in _positions(low, a))
    k, done = 0, 0
    while k < len(hits):
        start, end = max(hits[k] - before, done), hits[k] + after
        k += 1
        while k < len(hits) and hits[k] < end - after // 2:  # anchors close together share one window
            end = hits[k] + after
            k += 1
        done = min(end, len(text))
        yield from d.pattern.finditer(text, start, done)


def _positions(low: str, anchor: str) -> Iterable[int]:
    pos = low.find(anchor)
    while pos >= 0:
        yield pos
        pos = low.find(anchor, pos + 1)


def merge(found: list[tuple[int, int, int, str]]) -> tuple[Span, ...]:
    """Overlapping spans become one (nothing of any match is left); it takes the most specific type."""
    out: list[tuple[int, int, int, str]] = []
    for start, end, prio, type_ in sorted(found):
        if out and start < out[-1][1]:
            s, e, p, t = out[-1]
            keep = (prio, type_) if (prio, -(end - start)) < (p, -(e - s)) else (p, t)
            out[-1] = (s, max(e, end), *keep)
        else:
            out.append((start, end, prio, type_))
    return tuple(Span(s, e, t) for s, e, _, t in out)


def placeholder(type_: str, n: int) -> str:
    suffix = f"_{n}" if n > 1 else ""
    if type_ in PII_PLACEHOLDERS:
        return f"<{PII_PLACEHOLDERS[type_]}{suffix}>"
    return f"<SECRET:{type_}{suffix}>"


@dataclass
class Redactor:
    """Placeholders of one record: the same value always gets the same one; distinct values of a type are numbered."""

    by_value: dict[str, str] = field(default_factory=dict)
    per_type: dict[str, int] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)

    @classmethod
    def continuing(cls, texts: Iterable[str]) -> Redactor:
        """A redactor that never reuses a placeholder already present in `texts` (for values added later)."""
        red = cls()
        for text in texts:
            if "<" in (text or ""):
                red.taken.update(m.group(0) for m in PLACEHOLDER_RE.finditer(text))
        return red

    def placeholder_for(self, value: str, type_: str) -> str:
        if value not in self.by_value:
            n = self.per_type.get(type_, 0)
            while True:
                n += 1
                candidate = placeholder(type_, n)
                if candidate not in self.taken:
                    break
            self.per_type[type_] = n
            self.taken.add(candidate)
            self.by_value[value] = candidate
        return self.by_value[value]

    def redact(self, text: str, spans: Iterable[Span]) -> str:
        parts, pos = [], 0
        for span in spans:
            parts.append(text[pos : span.start])
            parts.append(self.placeholder_for(text[span.start : span.end], span.type))
            pos = span.end
        parts.append(text[pos:])
        return "".join(parts)
