"""Assembly: evidence + distractors -> one ACC record whose context fits its token budget.

For each trajectory (after its domain compiler produced `Evidence`):

0. drop repeats: a trajectory with the same question, gold evidence and answer as an earlier one is a Reject
   naming that one (logs re-print trajectories: the Reflexion ReAct logs carry every solved question into each later
   trial, so one file holds each of them up to five times); repeats are no filler either;
1. count tokens of every piece (once per distinct text, in batches);
2. draw the record's budget (`budget.draw_budget`) within what its training row leaves for the context
   (`--max-length` minus the reasoning reserve, question, answer and chat template), moved up when the gold alone
   does not fit, rejected when the gold cannot fit the row (see `budget.py`, the length contract);
3. add distractors until the budget is full: first the trajectory's own (results it saw but did not open, files of
   the repository it did not need), then filler from a pool of OTHER trajectories' pieces of the same domain in the
   same run (what fills 32k-128k budgets). Filler never repeats a title or a text already in the record, never
   comes from a trajectory with the same question (another attempt at it would hold the answer), and is never a
   one-line snippet (a result title without its text, e.g. ReAct's `Similar: [...]` titles, 64% of the documents
   of the real search runs): those stay distractors of the trajectory that saw them only;
4. shuffle gold + distractors with a seeded random permutation and render the context: one document per piece,
   `<document index="3" kind="file" title="src/app.py">` ... `</document>`;
5. count the rendered context exactly; while it is over the budget drop distractors (last chosen first). Gold is
   never dropped; if the gold alone is still over (token counts are not exactly additive), the budget moves up.

Each record uses its own `random.Random` seeded by (seed, record id), so a record does not depend on the order
or the process in which records are assembled. `rerender` rebuilds a record from its stored pieces, for ablations
(gold only, smaller budgets) without the raw trajectories.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from dataset_builder.budget import (
    DEFAULT_BUDGETS,
    MAX_LENGTH,
    BudgetError,
    BudgetRange,
    RowLimit,
    default_reasoning_reserve,
    draw_budget,
    fit_budget,
    frame_tokens,
    frames_tokens,
)
from dataset_builder.context import (  # noqa: F401 (re-exported: the rendering is part of assembly's interface)
    FOOTER,
    PLACEHOLDER_INDEX,
    SEPARATOR,
    ContextCounter,
    document_key,
    header,
    render_context,
    render_piece,
)
from dataset_builder.distractors import DEFAULT_MODE, Postings, TopicIndex, filler_stream, pack, ranked
from dataset_builder.schema import ACCRecord, Piece, Reject, Trajectory

ASSEMBLY_VERSION = 7  # part of every record id: bump when the rendering or selection rules change
FILL_MIN_TOKENS = 32  # stop filling when fewer tokens than this are left
PLAN_SLACK = 0  # tokens per document added to the plan's estimates (exact, but for the index: see context.py)

CONTEXT_INTRO = {
    "search": "Below are web pages and search results gathered for this question; only some of them are relevant.",
    # true of both kinds of swe context: filler from the same tree (a checkout) or from other runs' repositories;
    # meta["filler"] says which (a rebuilt prompt has only the domain, question and context to go by)
    "swe": "Below are source files, among them files of the repository at the commit to fix; only some of them are "
    "relevant.",
    "sql": "Below are tables of the database (schema and rows); only some of them are relevant.",
}
ANSWER_FORMAT = {
    "search": "Answer with the short answer only (a name, number, date or phrase), without explanation.",
    "swe": "Answer with a unified diff (git diff format) against the files above that resolves the issue.",
    "sql": "Answer with the query result only, as a markdown table with a header row.",
}


def prompt_messages(domain: str, question: str, context: str) -> list[dict[str, str]]:
    """TRL conversational prompt: one user turn = question, context, answer-format instruction."""
    text = f"{question.strip()}\n\n{CONTEXT_INTRO[domain]}\n\n{context}\n\n{ANSWER_FORMAT[domain]}"
    return [{"role": "user", "content": text}]


def completion_messages(reasoning: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": f"<think>\n{reasoning.strip()}\n</think>\n\n{answer.strip()}"}]


def record_id(source: str, trajectory_id: str, origin: str, settings: dict[str, Any], seed: int) -> str:
    key = json.dumps([source, trajectory_id, origin, settings, seed, ASSEMBLY_VERSION], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


@dataclass
class Candidate:
    """A piece with its rendered size (tokens of the document at the placeholder index, + PLAN_SLACK)."""

    piece: Piece
    tokens: int
    owner: int = -1  # index of the trajectory it came from (filler pool); -1 for the reservoir of other buckets
    group: str | None = None  # the owner's repository / database (filler preference)
    question: str = ""  # key of the owner's normalized question: no filler from another attempt at the same task

    @cached_property
    def order(self) -> tuple[str, str]:
        """The pool's canonical order (title, sha1 of the text); kept, as the reservoir is sorted in every bucket."""
        return self.piece.title, hashlib.sha1(self.piece.text.encode()).hexdigest()


@dataclass
class Compiled:
    """What pass 1 produced for one trajectory: the trajectory (steps dropped) and its evidence."""

    traj: Trajectory
    evidence: Any  # dataset_builder.domains.Evidence
    origin_key: str = ""  # origin relative to the input it was found under (stable across machines)
    # counted in the read stage: tokens of each piece's document (`context.document_key` -> count)
    document_tokens: dict[tuple[str, str, str], int] = field(default_factory=dict)


@dataclass
class Assembler:
    """Assembles records of one run; holds the token counter, the settings and the filler pools."""

    counter: Any  # dataset_builder.tokens.TokenCounter
    budgets: dict[str, BudgetRange] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    seed: int = 0
    max_length: int = MAX_LENGTH  # tokens per training row (the length contract, see budget.py)
    reasoning_reserve: int | None = None  # None: default_reasoning_reserve(max_length)
    distractors: str = DEFAULT_MODE  # filler order: close | random | mix (distractors.py)
    contexts: ContextCounter | None = None  # document counts and exact context counts (context.py)
    _topics: dict[str, Any] = field(default_factory=dict)  # per domain: TopicIndex over its pool (search)
    # reservoir postings by id of the reservoir list (which it keeps alive): share this dict between the assemblers
    # of one task's buckets, which all get the same reservoir, to index it once
    backgrounds: dict[int, tuple[list, Postings]] = field(default_factory=dict)
    _pools: dict[str, list[Candidate]] = field(default_factory=dict)
    _groups: list[str | None] = field(default_factory=list)  # per item: its repository / database (filler preference)
    # per domain: pool indices by repository / database, and by file suffix (ascending, built once per pool)
    _by_group: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    _by_suffix: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.contexts is None:
            self.contexts = ContextCounter(self.counter)

    def candidate(self, piece: Piece, owner: int = -1) -> Candidate:
        # counted with a 6-digit index; the real one is never longer
        return Candidate(piece, self.contexts.document(piece) + PLAN_SLACK, owner)

    def prepare(self, items: list[Compiled], reservoir: dict[str, list[Candidate]] | None = None) -> None:
        """Count all pieces (once per distinct text) and build the per-domain filler pools: the items' own pieces
        plus `reservoir`, candidates from the rest of the corpus whose token counts are already known."""
        for c in items:
            self.contexts.documents.update(c.document_tokens)
        self.contexts.count_documents([p for c in items for p in (*c.evidence.gold, *c.evidence.distractors)])
        self._pools = {d: list(cands) for d, cands in (reservoir or {}).items()}
        self._groups = [filler_group(c) for c in items]
        self._by_group, self._by_suffix = {}, {}
        for owner, c in enumerate(items):
            pool = self._pools.setdefault(c.traj.domain, [])
            pieces = (*c.evidence.gold, *c.evidence.distractors)
            group, question = self._groups[owner], question_key(c.traj.question)
            pool.extend(
                Candidate(p, self.contexts.document(p) + PLAN_SLACK, owner, group, question)
                for p in pieces
                if carries_content(p)
            )
        for domain, pool in self._pools.items():  # a canonical order: records do not depend on the input order
            pool.sort(key=lambda c: c.order)
            by_group, by_suffix = self._by_group.setdefault(domain, {}), self._by_suffix.setdefault(domain, {})
            for j, c in enumerate(pool):
                if c.group is not None:
                    by_group.setdefault(c.group, []).append(j)
                by_suffix.setdefault(file_suffix(c.piece.title), []).append(j)
        self._topics = {
            d: TopicIndex([c.piece.text for c in pool], self._background(pool, (reservoir or {}).get(d) or []))
            for d, pool in self._pools.items()
            if d == "search" and self.distractors != "random"
        }

    def _background(self, pool: list[Candidate], reservoir: list[Candidate]) -> tuple[Postings, list[int]] | None:
        """The reservoir's BM25 postings (built once per reservoir list, `backgrounds`) and its places in `pool`."""
        if not reservoir:
            return None
        key = id(reservoir)
        if key not in self.backgrounds:
            self.backgrounds[key] = (reservoir, Postings.of([c.piece.text for c in reservoir]))
        where = {id(c): j for j, c in enumerate(pool)}
        return self.backgrounds[key][1], [where[id(c)] for c in reservoir]

    def settings(self, domain: str) -> dict[str, Any]:
        spec = self.budgets[domain]
        return {
            "tokenizer": self.counter.name,
            "budget": [spec.low, spec.high],
            "max_length": self.max_length,
            "reasoning_reserve": self.reserve,
            "distractors": self.distractors,
        }

    @property
    def reserve(self) -> int:
        return default_reasoning_reserve(self.max_length) if self.reasoning_reserve is None else self.reasoning_reserve

    def row_limit(self, item: Compiled, frame: int | None = None) -> RowLimit:
        """What the record's context may use: max_length minus the reserve and the rest of its training row (its
        `frame`, when already counted)."""
        if frame is None:
            frame = frame_tokens(self.counter, *frame_texts(item))
        return RowLimit(self.max_length, self.reserve, frame)

    def plan(self, index: int, item: Compiled, frame: int | None = None) -> tuple[ACCRecord, dict] | Reject:
        """Choose budget and distractors and the order; the context is rendered but not yet counted exactly."""
        traj, ev = item.traj, item.evidence
        rid = record_id(traj.source, traj.id, item.origin_key, self.settings(traj.domain), self.seed)
        rng = random.Random(f"{self.seed}|{rid}")
        gold = [self.candidate(replace(p, is_distractor=False)) for p in ev.gold]
        sep = self.contexts.join
        gold_tokens = sum(c.tokens for c in gold) + sep * max(0, len(gold) - 1)
        limit = self.row_limit(item, frame)
        try:
            drawn, budget = draw_budget(traj.domain, gold_tokens, rng, self.budgets, limit)
        except BudgetError as err:
            why = (ev.meta or {}).get("needs_every_row")  # sql: which query needs a whole table (sql_slice.py)
            return Reject(traj.origin, f"{why}: {err}" if why else str(err), traj.source, traj.domain, stage="budget")
        used = gold_tokens
        slices, grown = getattr(ev, "slices", None) or {}, {}  # sql: tables cut to the rows the queries read
        if slices:  # half the room for sampled rows of those tables (in-table distractors), the rest below
            gold, used = self._grow_slices(gold, slices, grown, (budget - used) // 2, used)
        chosen: list[Candidate] = []
        titles = {p.title for p in ev.gold}
        texts = {p.text for p in ev.gold}

        def fits(c: Candidate) -> bool:
            return used + sep + c.tokens <= budget and c.piece.title not in titles and c.piece.text not in texts

        for piece in ev.distractors:
            c = self.candidate(replace(piece, is_distractor=True))
            if fits(c):
                chosen.append(c)
                used += sep + c.tokens
                titles.add(c.piece.title)
                texts.add(c.piece.text)
        n_own = len(chosen)
        # a checkout gave the record its own repository's files at its commit: no other run's files (swe_tree.py)
        own_tree = (ev.meta or {}).get("filler") == "repository"
        pool = [] if own_tree else self._pools.get(traj.domain, [])
        taken: set[int] = set()
        # Filler from the same repository / database first (a C file beside a Python repo is no distractor at all),
        # then (swe) files of the gold files' languages from other repositories, then from the whole domain.
        group, question = self._groups[index], question_key(traj.question)
        near = self._by_group.get(traj.domain, {}).get(group, []) if pool and group is not None else []
        suffixes = {file_suffix(p.title) for p in ev.gold} - {""} if traj.domain == "swe" and pool else set()
        by_suffix = self._by_suffix.get(traj.domain, {})
        kin = sorted(j for suffix in suffixes for j in by_suffix.get(suffix, ()))
        topics = self._topics.get(traj.domain)
        scores = topics.relevance(traj.question, [p.text for p in ev.gold]) if topics and pool else None
        ranking = ranked(scores) if scores is not None else None  # once per record, for each pass below

        def usable(j: int) -> bool:
            c = pool[j]
            return j not in taken and c.owner != index and c.question != question and fits(c)

        def take(j: int) -> None:
            nonlocal used
            c = pool[j]
            taken.add(j)
            chosen.append(Candidate(replace(c.piece, is_distractor=True), c.tokens))
            used += sep + c.tokens
            titles.add(c.piece.title)
            texts.add(c.piece.text)

        for indices in (near, kin, range(len(pool))):
            if indices and budget - used >= FILL_MIN_TOKENS:
                stream = filler_stream(indices, self.distractors, rng, ranking)
                pack(stream, lambda j: pool[j].tokens, budget - used, usable, take, sep=sep, min_tokens=FILL_MIN_TOKENS)
        if slices:  # the room left goes to more rows of the sliced tables
            gold, used = self._grow_slices(gold, slices, grown, budget - used, used)
        ordered = gold + chosen
        order = list(range(len(ordered)))
        rng.shuffle(order)
        plan = {
            "order": order,
            "candidates": ordered,
            "n_gold": len(gold),
            "n_own": n_own,
            "drawn": drawn,
            "budget": budget,
            "gold_tokens": gold_tokens,
            "limit": limit,
            "filler": "repository at the base commit" if own_tree else "other runs" if taken else "own",
        }
        return self._record(rid, item, plan), plan

    def _grow_slices(self, gold: list[Candidate], slices, grown: dict, room: int, used: int):
        """Gold candidates with more sampled rows in their table slices, and `used` updated with exact counts."""
        from dataset_builder.domains.sql_slice import grow_slices, slice_pieces

        grown.update(grow_slices(slices, grown, room, self.counter.count_batch))
        pieces = slice_pieces([c.piece for c in gold], slices, grown)
        self.contexts.count_documents(pieces)
        new = [c if c.piece.text == p.text else self.candidate(p) for c, p in zip(gold, pieces)]
        return new, used + sum(c.tokens for c in new) - sum(c.tokens for c in gold)

    def _record(self, rid: str, item: Compiled, plan: dict) -> ACCRecord:
        traj, ev = item.traj, item.evidence
        pieces = [plan["candidates"][i].piece for i in plan["order"]]
        context = render_context(pieces)
        return ACCRecord(
            id=rid,
            domain=traj.domain,
            source=traj.source,
            question=traj.question,
            pieces=pieces,
            context=context,
            reasoning="",
            answer=ev.answer,
            gold=ev.gold_answer,
            verified=False,
            prompt=prompt_messages(traj.domain, traj.question, context),
            completion=completion_messages("", ev.answer),
            n_tokens=0,
            budget=plan["budget"],
            meta="{}",
        )

    def finish(self, record: ACCRecord, plan: dict, item: Compiled, n_tokens: int) -> ACCRecord | Reject:
        """Enforce the budget with the exact count: drop distractors (last chosen first) or move the budget up."""
        while n_tokens > plan["budget"]:
            distractors = [i for i in plan["order"] if i >= plan["n_gold"]]
            if distractors:
                over, dropped = n_tokens - plan["budget"], 0
                for i in sorted(distractors, reverse=True):  # the last chosen are the pool filler
                    plan["order"].remove(i)
                    dropped += plan["candidates"][i].tokens
                    if dropped >= over:
                        break
            else:
                try:
                    plan["budget"] = fit_budget(plan["budget"], n_tokens, plan["limit"])
                except BudgetError as err:
                    return Reject(item.traj.origin, str(err), item.traj.source, item.traj.domain, stage="budget")
            record = self._record(record.id, item, plan)
            n_tokens = self.contexts.context(record.pieces)
        return self._finalize(record, plan, item, n_tokens)

    def with_token_counts(self, pieces: list[Piece]) -> list[Piece]:
        """Pieces with `n_tokens` = tokens of header + text + footer at their index in the context (the context's
        count is their sum plus `contexts.join` per separator: see context.py)."""
        self.contexts.count_documents(pieces)
        return [replace(p, n_tokens=self.contexts.document(p, k)) for k, p in enumerate(pieces, start=1)]

    def _finalize(self, record: ACCRecord, plan: dict, item: Compiled, n_tokens: int) -> ACCRecord:
        record.pieces = self.with_token_counts(record.pieces)
        record.n_tokens = n_tokens
        n_gold = sum(not p.is_distractor for p in record.pieces)
        n_own = sum(1 for i in plan["order"] if plan["n_gold"] <= i < plan["n_gold"] + plan["n_own"])
        record.meta = build_meta(
            item,
            tokenizer=self.counter.name,
            seed=self.seed,
            budget_range=self.budgets[record.domain],
            budget_drawn=plan["drawn"],
            n_gold=n_gold,
            n_own=n_own,
            n_filler=len(record.pieces) - n_gold - n_own,
            filler=plan["filler"],
            gold_tokens=sum(p.n_tokens for p in record.pieces if not p.is_distractor),
            n_tokens=n_tokens,
            row_tokens=plan["limit"].frame + n_tokens,  # upper bound of the training row without reasoning
        )
        return record

    def assemble(
        self, items: list[Compiled], chunk_size: int = 16, progress=None, reservoir: dict | None = None
    ) -> list[ACCRecord | Reject]:
        """Records (or budget / duplicate Rejects) for `items`, in order; see `iter_assemble`."""
        return list(self.iter_assemble(items, chunk_size, progress, reservoir))

    def iter_assemble(
        self, items: list[Compiled], chunk_size: int = 16, progress=None, reservoir: dict | None = None
    ) -> Iterator[ACCRecord | Reject]:
        """Records (or budget / duplicate Rejects) for `items`, in order, one at a time (exact counts are batched per
        chunk). `reservoir`: per-domain filler candidates from outside `items` (the pipeline's other buckets)."""
        first: dict[str, int] = {}
        repeat_of: dict[int, int] = {}
        for i, item in enumerate(items):
            repeat_of[i] = first.setdefault(content_key(item), i)
        firsts = [c for i, c in enumerate(items) if repeat_of[i] == i]
        built = self._assemble(firsts, chunk_size, progress, reservoir)
        for i, item in enumerate(items):
            if repeat_of[i] == i:
                yield next(built)
                continue
            reason = f"duplicate: same question, gold evidence and answer as '{items[repeat_of[i]].traj.origin}'"
            yield Reject(item.traj.origin, reason, item.traj.source, item.traj.domain, stage="compile")
            if progress is not None:
                progress.update(1)

    def _assemble(self, items: list[Compiled], chunk_size: int, progress, reservoir) -> Iterator[ACCRecord | Reject]:
        self.prepare(items, reservoir)
        for start in range(0, len(items), chunk_size):
            chunk = items[start : start + chunk_size]
            frames = frames_tokens(self.counter, [frame_texts(item) for item in chunk])
            plans = [self.plan(i, item, frame) for i, (item, frame) in enumerate(zip(chunk, frames), start=start)]
            for item, p in zip(chunk, plans):
                yield p if isinstance(p, Reject) else self.finish(p[0], p[1], item, self.contexts.context(p[0].pieces))
                if progress is not None:
                    progress.update(1)


def frame_texts(item: Compiled) -> tuple[str, str]:
    """The record's training row without its context: (prompt with an empty context, completion without reasoning)."""
    traj = item.traj
    prompt = prompt_messages(traj.domain, traj.question, "")[0]["content"]
    return prompt, completion_messages("", item.evidence.answer)[0]["content"]


def question_key(question: str) -> str:
    """A short key of the normalized question (case and whitespace folded)."""
    return hashlib.sha1(" ".join(question.lower().split()).encode()).hexdigest()[:16]


def count_pieces(items: list[Compiled], counter) -> None:
    """Count every piece's document once and keep the counts with each item (`Compiled.document_tokens`), so that
    later stages (reservoir, assembly) do not count them again."""
    contexts = ContextCounter(counter)  # this batch's alone: a cache over all of a task's files would grow with them
    contexts.count_documents([p for c in items for p in (*c.evidence.gold, *c.evidence.distractors)])
    for c in items:
        pieces = (*c.evidence.gold, *c.evidence.distractors)
        c.document_tokens = {key: contexts.documents[key] for key in map(document_key, pieces)}


def carries_content(piece: Piece) -> bool:
    """Whether a piece can be filler: a snippet of one line is a result's title without its text."""
    return piece.kind != "snippet" or "\n" in piece.text.strip()


def content_key(item: Compiled) -> str:
    """What makes two trajectories the same training example: question, gold evidence and answers."""
    traj, ev = item.traj, item.evidence
    gold = sorted((p.kind, p.title, p.text) for p in ev.gold)
    question = " ".join(traj.question.lower().split())
    key = [traj.domain, question, gold, ev.answer.strip(), (ev.gold_answer or "").strip()]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()


def file_suffix(title: str) -> str:
    """'src/a/parser.c' -> '.c' (the language of a repository file, for swe filler); '' when there is none."""
    name = title.rsplit("/", 1)[-1]
    return name[name.rfind(".") :].lower() if "." in name.strip(".") else ""


def filler_group(item: Compiled) -> str | None:
    """What makes another trajectory's pieces close distractors: the same repository (swe) or database (sql)."""
    key = {"swe": "repo", "sql": "db_id"}.get(item.traj.domain)
    if key is None:
        return None
    value = (item.evidence.meta or {}).get(key) or item.traj.meta.get(key)
    return f"{key}:{str(value).lower()}" if value else None


def build_meta(item: Compiled, **stats) -> str:
    traj, ev = item.traj, item.evidence
    ev_meta = dict(getattr(ev, "meta", {}) or {})
    meta: dict[str, Any] = {
        "origin": item.origin_key or traj.origin,  # relative to the input: published records name no local paths
        "trajectory_id": traj.id,
        "trajectory_answer": traj.final_answer,
        "trajectory_reasoning": traj.reasoning,
        "trajectory": traj.meta,
        "evidence": ev_meta,
    }
    for key in ("urls", "repo", "base_commit", "instance_id", "db_id", "model"):
        value = ev_meta.get(key, traj.meta.get(key))
        if value not in (None, "", []):
            meta[key] = value
    budget_range = stats.pop("budget_range")
    meta.update(stats, budget_range=[budget_range.low, budget_range.high])
    meta["gold_fraction"] = round(stats["gold_tokens"] / max(1, stats["n_tokens"]), 4)
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)


GOLD_ORDERS = ("gold-first", "gold-last", "gold-middle")


def rerender(
    record: ACCRecord,
    *,
    drop_distractors: bool | float = False,
    budget: int | None = None,
    order: str | None = None,
    spec: str | None = None,
    tokenizer: str | None = None,
) -> ACCRecord:
    """A new record from `record.pieces`: without distractors (True), without a seeded fraction of them (0 < x < 1),
    cut to a smaller `budget` by dropping seeded random distractors (never gold; ValueError naming the numbers if the
    gold alone is over), and/or with its pieces placed in `order` (`GOLD_ORDERS`: every gold piece together at the
    start, the end or the middle of the context; gold and distractors each keep their relative order).

    Otherwise the piece order is kept. The documents are numbered 1..n again, the token counts, prompt, meta counts
    and id are recomputed; `meta["ablation"]` says where the record came from: `from` (the source id), `spec` (or
    the arguments) and `source_indices` (each document's index in the source context, a re-fitted record's gaps
    included). The id is a hash of `from` and `spec`. Reasoning, answer and completion are left as they were."""
    from dataset_builder.tokens import token_counter

    if order is not None and order not in GOLD_ORDERS:
        raise ValueError(f"order {order!r}: expected one of {', '.join(GOLD_ORDERS)}")
    meta = json.loads(record.meta or "{}")
    counter = token_counter(tokenizer or _tokenizer_path(meta.get("tokenizer")))
    settings = {"drop_distractors": drop_distractors, "budget": budget, "order": order}
    rng = random.Random(f"rerender|{record.id}|{spec or json.dumps(settings, sort_keys=True)}")
    refit_indices = (meta.get("refit") or {}).get("indices") or []
    indices = refit_indices if len(refit_indices) == len(record.pieces) else range(1, len(record.pieces) + 1)
    docs = list(zip(indices, record.pieces))  # (index in the source context, piece)
    distractor_idx = [k for k, (_, p) in enumerate(docs) if p.is_distractor]
    if drop_distractors is True:
        drop = set(distractor_idx)
    elif drop_distractors:
        drop = set(rng.sample(distractor_idx, round(len(distractor_idx) * float(drop_distractors))))
    else:
        drop = set()
    docs = [d for k, d in enumerate(docs) if k not in drop]
    if order is not None:
        gold = [d for d in docs if not d[1].is_distractor]
        rest = [d for d in docs if d[1].is_distractor]
        cut = {"gold-first": 0, "gold-last": len(rest), "gold-middle": len(rest) // 2}[order]
        docs = rest[:cut] + gold + rest[cut:]
    target = budget or record.budget
    context = render_context([p for _, p in docs])
    n_tokens = counter.count(context)
    while n_tokens > target:
        left = [k for k, (_, p) in enumerate(docs) if p.is_distractor]
        if not left:
            raise ValueError(f"record {record.id}: gold evidence alone is {n_tokens} tokens, over the budget {target}")
        rng.shuffle(left)  # drop by the stored per-piece counts until the estimate fits, then count exactly again
        over, cut_out = n_tokens - target, set()
        for k in left:
            cut_out.add(k)
            over -= max(1, docs[k][1].n_tokens)
            if over <= 0:
                break
        docs = [d for k, d in enumerate(docs) if k not in cut_out]
        context = render_context([p for _, p in docs])
        n_tokens = counter.count(context)
    pieces = Assembler(counter=counter).with_token_counts([p for _, p in docs])
    ablation = {"from": record.id, "spec": spec} if spec else {"from": record.id, **settings}
    n_distractors = sum(p.is_distractor for p in pieces)
    if n_distractors < sum(p.is_distractor for p in record.pieces):  # which were own and which filler is not kept
        meta.pop("n_own", None)
        meta.pop("n_filler", None)
    if "row_tokens" in meta:  # the frame (question, answer, chat template) is unchanged
        meta["row_tokens"] += n_tokens - record.n_tokens
    gold_tokens = sum(p.n_tokens for p in pieces if not p.is_distractor)
    meta.update(
        n_tokens=n_tokens,
        n_gold=len(pieces) - n_distractors,
        n_distractors=n_distractors,
        gold_tokens=gold_tokens,
        gold_fraction=round(gold_tokens / max(1, n_tokens), 4),
    )
    meta["ablation"] = {
        **ablation,
        "source_indices": [i for i, _ in docs],
        "n_tokens_before": record.n_tokens,
        "budget_before": record.budget,
    }
    return replace(
        record,
        id=hashlib.sha256(json.dumps(ablation, sort_keys=True).encode()).hexdigest()[:20],
        pieces=pieces,
        context=context,
        prompt=prompt_messages(record.domain, record.question, context),
        n_tokens=n_tokens,
        budget=target,
        meta=json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str),
    )


def _tokenizer_path(name: str | None) -> str | None:
    """The counter name stored in meta -> what token_counter accepts (the bundled tokenizer has a display name)."""
    from dataset_builder.tokens import DEFAULT_TOKENIZER, token_counter

    return DEFAULT_TOKENIZER if not name or name == token_counter().name else name
