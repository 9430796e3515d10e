"""What the contexts hold, measured side by side in one run: distractor similarity (close vs random vs mix) on the
search fixtures, and budget fill on a seeded synthetic search corpus.

    python bench/contexts.py [--fill-runs 1000] [--skip-similarity]

Similarity: the search fixtures are compiled once per `--distractors` mode; one BM25 index (distractors.TopicIndex)
over the distractor pages of all three runs scores each distractor for its record's question; the line printed is
the mean over records of their distractors' mean score (higher = more on-topic), per mode.

Fill: `synthetic_search_items(n)` makes n runs, each with 3 visited pages of 1,200-1,800 words (words drawn from
the bundled sample pages, 30% from the run's topic) and 5 one-line result titles (no filler: titles without text);
they are assembled with the default budgets; fill = context tokens / budget, printed as mean and 10th percentile.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "fixtures" / "real"
CORPUS = ROOT / "dataset_builder" / "samples" / "corpus"
MODES = ("close", "random", "mix")


def distractor_similarity(inputs: list[Path]) -> dict:
    from dataset_builder.compile import compile_trajectories
    from dataset_builder.distractors import TopicIndex, _tokenize

    runs = {m: compile_trajectories(inputs, None, domain="search", distractors=m, progress=False) for m in MODES}
    texts = sorted({p.text for res in runs.values() for r in res.records for p in r.pieces if p.is_distractor})
    position = {t: k for k, t in enumerate(texts)}
    index = TopicIndex(texts)
    row: dict = {"part": "distractor_similarity", "records": len(runs["mix"].records), "distractor_texts": len(texts)}
    for mode, res in runs.items():
        per_record = []
        for r in res.records:
            distractors = [position[p.text] for p in r.pieces if p.is_distractor]
            if distractors:
                (words,) = _tokenize([r.question])
                scores = index.scores(words)
                per_record.append(statistics.mean(float(scores[k]) for k in distractors))
        row[f"{mode}_mean_bm25"] = round(statistics.mean(per_record), 3) if per_record else None
    if row["random_mean_bm25"]:
        row["close_over_random"] = round(row["close_mean_bm25"] / row["random_mean_bm25"], 2)
    return row


def synthetic_search_items(n: int, seed: int = 0, n_topics: int = 40) -> list:
    from dataset_builder.assemble import Compiled
    from dataset_builder.domains import Evidence
    from dataset_builder.schema import Piece, Trajectory

    words = sorted({w.lower() for f in sorted(CORPUS.glob("*.md")) for w in re.findall(r"[A-Za-z]{3,}", f.read_text())})
    rng = random.Random(seed)
    topics = [rng.sample(words, 30) for _ in range(n_topics)]

    def page(r: random.Random, topic: list[str], n_words: int) -> str:
        out = [r.choice(topic) if r.random() < 0.3 else r.choice(words) for _ in range(n_words)]
        return "\n".join(" ".join(out[k : k + 14]) for k in range(0, len(out), 14))

    items = []
    for i in range(n):
        r = random.Random(f"{seed}|{i}")
        topic = topics[r.randrange(n_topics)]
        question = f"Which {' '.join(r.sample(topic, 4))} was first recorded in run {i}?"
        gold = [
            Piece("page", f"https://example.org/{i}/{k}", page(r, topic, r.randrange(1200, 1800))) for k in range(3)
        ]
        titles = [f"result {i}.{k}: {' '.join(r.sample(topic, 3))}" for k in range(5)]
        own = [Piece("snippet", t, t, is_distractor=True) for t in titles]
        traj = Trajectory(id=f"syn-{i}", source="synthetic", domain="search", question=question, origin=f"syn:{i}")
        items.append(Compiled(traj, Evidence(gold=gold, distractors=own, answer="x", gold_answer="x"), f"syn:{i}"))
    return items


def synthetic_fill(n: int) -> dict:
    from dataset_builder.assemble import Assembler
    from dataset_builder.schema import ACCRecord
    from dataset_builder.tokens import token_counter

    counter = token_counter()
    row: dict = {"part": "fill", "runs": n}
    for mode in MODES:
        out = Assembler(counter=counter, distractors=mode).assemble(synthetic_search_items(n))
        fills = sorted(r.n_tokens / r.budget for r in out if isinstance(r, ACCRecord))
        row[f"{mode}_mean_fill"] = round(statistics.mean(fills), 4)
        row[f"{mode}_p10_fill"] = round(fills[len(fills) // 10], 4)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fill-runs", type=int, default=1000, help="synthetic runs for the fill part (0: skip)")
    parser.add_argument("--skip-similarity", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.skip_similarity and (REAL / "search").is_dir():
        print(json.dumps(distractor_similarity([REAL / "search"])), flush=True)
    if args.fill_runs:
        print(json.dumps(synthetic_fill(args.fill_runs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
