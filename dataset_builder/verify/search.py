"""Search answers: SQuAD-style normalized exact match, or token F1 above a threshold, against every gold alias.

Normalization: Unicode NFKD with accents dropped, lower case, thousands separators removed ("1,842" -> "1842"),
numbers canonical ("1842.0" -> "1842", "3.50" -> "3.5"), punctuation treated as a separator, articles (a, an, the)
dropped. Gold aliases: the gold may list alternatives separated by " | ", or be a JSON list of strings; the record's
meta may add more under `gold_aliases`. An empty gold cannot verify anything.

The F1 threshold (`acc traces --search-f1`, default 0.8) trades recall for precision: on the 147 distinct answers of
Reflexion's ReAct HotpotQA logs, 1.0 (exact match) agrees with the benchmark's verdict on all of them, and 0.8 also
accepts 5 that HotpotQA's exact match rejects ("Stone Brewing Co." for "Stone Brewing", but also "Albany, New York"
for "New York").
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from typing import Any

from dataset_builder.verify import Verdict, meta_value, record_meta, record_value

F1_THRESHOLD = 0.8
_ARTICLES = {"a", "an", "the"}
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W_]+")
_FINAL = re.compile(r"^\W*(?:final\s+answer|answer)\s*\**\s*[:：]\s*(.+?)\s*$", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def _canonical_number(token: str) -> str:
    whole, _, frac = token.partition(".")
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def tokens(text: str) -> list[str]:
    """Normalized tokens of an answer (see the module docstring)."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _THOUSANDS.sub("", text)
    out = []
    for tok in _TOKEN.findall(text):
        if tok[0].isdigit():
            tok = _canonical_number(tok)
        if tok not in _ARTICLES:
            out.append(tok)
    return out


def normalize(text: str) -> str:
    return " ".join(tokens(text))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = tokens(prediction), tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def gold_aliases(gold: str, extra: Any = None) -> list[str]:
    """All acceptable answers: a JSON list, or alternatives separated by " | ", plus `extra` (a list or a string)."""
    gold = (gold or "").strip()
    aliases: list[str] = []
    if gold.startswith("["):
        try:
            parsed = json.loads(gold)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            aliases = [str(a) for a in parsed if str(a).strip()]
    if not aliases and gold:
        aliases = [a for a in (part.strip() for part in gold.split(" | ")) if a]
    if isinstance(extra, str):
        extra = [extra]
    for alias in extra or []:
        if str(alias).strip() and str(alias) not in aliases:
            aliases.append(str(alias))
    return aliases


def extract_answer(text: str) -> str:
    """The short answer in a model's final text: a `Final answer:` line, a \\boxed{}, or the text itself."""
    text = (text or "").strip()
    for line in reversed(text.splitlines()):
        match = _FINAL.match(line)
        if match:
            text = match.group(1)
            break
    else:
        boxed = _BOXED.findall(text)
        if boxed:
            text = boxed[-1]
    return text.strip().strip("*`\"' ").rstrip(".").strip()


def verify_search(record: Any, answer: str, *, f1_threshold: float = F1_THRESHOLD, **_: Any) -> Verdict:
    aliases = gold_aliases(record_value(record, "gold"), meta_value(record_meta(record), "gold_aliases"))
    if not aliases:
        return Verdict(False, 0.0, "no gold answer to verify against")
    prediction = extract_answer(answer)
    if not tokens(prediction):
        return Verdict(False, 0.0, f"answer {prediction[:80]!r} is empty after normalization")
    best_f1, best_alias = 0.0, aliases[0]
    for alias in aliases:
        if tokens(prediction) == tokens(alias):
            return Verdict(True, 1.0, f"exact match with {alias[:80]!r} after normalization")
        f1 = token_f1(prediction, alias)
        if f1 > best_f1:
            best_f1, best_alias = f1, alias
    if best_f1 >= f1_threshold:
        return Verdict(True, best_f1, f"token F1 {best_f1:.2f} >= {f1_threshold} with {best_alias[:80]!r}")
    return Verdict(
        False,
        best_f1,
        f"answer {prediction[:80]!r}: token F1 {best_f1:.2f} < {f1_threshold} (best {best_alias[:80]!r})",
    )
