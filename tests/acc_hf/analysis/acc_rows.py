"""ACC rows for the analysis tests, rendered with the assembly engine's own context / prompt / completion renderers."""

from __future__ import annotations

import random

from acc_records import acc_record as build_record

from dataset_builder.schema import ACCRecord, Piece

WORDS = (
    "ferry harbour timetable departs island crossing vessel captain cargo season tide route north south pier "
    "ticket weekday holiday passengers cabin deck weather storm delay schedule port terminal bridge"
).split()

DOMAIN_PIECES = {
    "search": [
        ("page", "https://example.org/ferries/north", False),
        ("snippet", "https://example.org/blog/storms", True),
        ("page", "https://example.org/ferries/south", True),
    ],
    "swe": [
        ("file", "src/ferry/schedule.py", False),
        ("file", "src/ferry/tickets.py", True),
        ("file", "tests/test_schedule.py", False),
    ],
    "sql": [
        ("table", "departures", False),
        ("table", "vessels", True),
        ("schema", "crew", True),
    ],
}
ANSWERS = {
    "search": "The North Star, at 07:15",
    "swe": "--- a/src/ferry/schedule.py\n+++ b/src/ferry/schedule.py",
    "sql": "| id |\n|---|\n| 3 |",
}


def sentence_block(rng: random.Random, n_words: int) -> str:
    lines = []
    while n_words > 0:
        k = min(n_words, rng.randint(6, 14))
        lines.append(" ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ".")
        n_words -= k
    return "\n".join(lines)


def acc_record(domain: str, seed: int = 0, n_words: int = 60, reasoning: str = "") -> ACCRecord:
    """A record whose context is rendered exactly as the assembly engine renders it."""
    rng = random.Random(f"{domain}|{seed}")
    pieces = [
        Piece(kind=kind, title=title, text=f"{title} {seed}\n" + sentence_block(rng, n_words), is_distractor=d)
        for kind, title, d in DOMAIN_PIECES[domain]
    ]
    rng.shuffle(pieces)
    question = f"Which ferry leaves first on weekday {seed} from the north pier?"
    answer = ANSWERS[domain]
    reasoning = reasoning or sentence_block(rng, 12)
    return build_record(
        f"{domain}-{seed}",
        domain,
        question,
        pieces,
        answer,
        reasoning=reasoning,
        verified=True,
        n_tokens=0,
        budget=4096,
    )
