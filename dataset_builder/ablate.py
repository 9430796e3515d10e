"""acc ablate: an ablation dataset from a compiled ACC dataset, without the raw trajectories.

  acc ablate acc_data --out acc_gold_only --ablation no-distractors
  acc ablate acc_data --out acc_swe --ablation domain=swe
  acc ablate hf://datasets/my-org/acc-data --out acc_half --ablation budget-scale=0.5
  acc ablate my-org/acc-data --out acc_gold_last --ablation order=gold-last

Each record of the source (a folder written by `acc compile`, or a Hub dataset laid out the same) is re-rendered
from its stored `pieces` (`assemble.rerender`): every gold piece is kept, the documents are numbered 1..n again, and
the context, prompt, token counts (under the tokenizer named in the record's meta) and meta counts are recomputed.
Question, answer, gold, verified, reasoning and completion stay; a reasoning trace that cites documents by number
("document 7", `index="7"`) has those numbers remapped to where the documents now are, and a citation of a document
the ablation removed is counted (`meta.ablation.citations.stale`; `--stale-citations reject` makes such records
rejects). The output has the source's configs and splits (a record stays in its source split), rejects.jsonl, stats.json
and a card naming the ablation and the source (its stats.json sha256 and compile settings).

Ids: an ablated record gets a new id, a hash of the source id and the ablation spec, so arms never collide when mixed
or deduplicated by id; `meta.ablation.from` is the source record's id, which pairs the arms record by record.
Every source record of the selected domains ends as a record or a reject (inputs = records + rejects). Sources are read
one batch of rows at a time and written through the compile's finalize step: memory is bounded by a row group.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.schema import DOMAINS, ACCRecord, Reject

# name -> (syntax, one line of help); the `acc ablate --help` list
ABLATIONS = {
    "no-distractors": ("no-distractors", "gold pieces only: every distractor removed"),
    "domain": ("domain=swe | domain=search,sql", "the records of these domains only (other domains are not read)"),
    "budget-scale": (
        "budget-scale=0.5",
        "every budget x S (0 < S <= 1); distractors dropped to fit, never gold; gold over the new budget -> reject",
    ),
    "budget-cap": ("budget-cap=8192 | budget-cap=8k", "budgets capped at N tokens; same dropping and rejects"),
    "order": (
        "order=gold-first | order=gold-last | order=gold-middle",
        "gold pieces together at the start / end / middle, distractors in their order (position bias)",
    ),
}
ORDERS = ("gold-first", "gold-last", "gold-middle")
ORDER_WORDS = {"gold-first": "first", "gold-last": "last", "gold-middle": "in the middle"}
STALE_POLICIES = ("keep", "reject")
READ_BATCH_ROWS = 64
WORK_FLUSH_ROWS = 64


class AblationError(ValueError):
    """A usage error: an unknown or malformed ablation spec, a source that is not an ACC dataset."""


@dataclass(frozen=True)
class Ablation:
    kind: str  # a key of ABLATIONS
    domains: tuple[str, ...] = DOMAINS  # domain=: which domains are read; every other ablation reads all
    scale: float | None = None  # budget-scale
    cap: int | None = None  # budget-cap
    order: str | None = None  # order: one of ORDERS

    @property
    def spec(self) -> str:
        """The canonical spec string (what meta.ablation.spec and the card name)."""
        if self.kind == "domain":
            return "domain=" + ",".join(self.domains)
        if self.kind == "budget-scale":
            return f"budget-scale={self.scale:g}"
        if self.kind == "budget-cap":
            return f"budget-cap={self.cap}"
        if self.kind == "order":
            return f"order={self.order}"
        return self.kind

    def describe(self) -> str:
        if self.kind == "no-distractors":
            return "Every distractor was removed: each context holds its gold evidence only."
        if self.kind == "domain":
            return f"Only the records of {', '.join(self.domains)} were kept (the other domains were not read)."
        if self.kind == "order":
            return (
                f"Evidence order not shuffled: in every context the gold pieces come {ORDER_WORDS[self.order]}, "
                "the distractors keep their relative order (a probe of position bias)."
            )
        what = f"scaled by {self.scale:g}" if self.kind == "budget-scale" else f"capped at {self.cap} tokens"
        return (
            f"Every record's token budget was {what}; distractors were dropped (seeded by the record id and this spec) "
            "until the context fits, never gold; a record whose gold evidence alone is over its new budget is rejected."
        )

    def budget_of(self, budget: int) -> int | None:
        if self.kind == "budget-scale":
            return max(1, int(budget * self.scale))
        if self.kind == "budget-cap":
            return min(budget, self.cap)
        return None


def parse_ablation(text: str) -> Ablation:
    """'no-distractors', 'domain=swe', 'domain=search,sql', 'budget-scale=0.5', 'budget-cap=8192', 'order=gold-first'."""
    from dataset_builder.budget import parse_size

    name, sep, value = str(text).strip().partition("=")
    name, value = name.strip(), value.strip()
    if name not in ABLATIONS:
        raise AblationError(f"unknown ablation {text!r}; one of: {', '.join(s for s, _ in ABLATIONS.values())}")
    if name == "no-distractors":
        if sep:
            raise AblationError(f"{text!r}: no-distractors takes no value")
        return Ablation(name)
    if not value:
        raise AblationError(f"{text!r}: expected {ABLATIONS[name][0]}")
    if name == "domain":
        wanted = {d.strip() for d in value.split(",") if d.strip()}
        if unknown := wanted - set(DOMAINS):
            raise AblationError(
                f"{text!r}: unknown domain(s) {', '.join(sorted(unknown))} (known: {', '.join(DOMAINS)})"
            )
        return Ablation(name, domains=tuple(d for d in DOMAINS if d in wanted))
    if name == "budget-scale":
        try:
            scale = float(value)
        except ValueError:
            raise AblationError(f"{text!r}: the scale is a number, e.g. budget-scale=0.5") from None
        if not 0 < scale <= 1:
            raise AblationError(
                f"{text!r}: the scale must be in (0, 1]: a record's pieces hold no filler beyond its own budget, "
                "so budgets can only shrink"
            )
        return Ablation(name, scale=scale)
    if name == "budget-cap":
        try:
            cap = parse_size(value)
        except ValueError as err:
            raise AblationError(f"{text!r}: {err}") from None
        if cap < 1:
            raise AblationError(f"{text!r}: the cap must be at least 1 token")
        return Ablation(name, cap=cap)
    if value not in ORDERS:
        raise AblationError(
            f"{text!r}: order is one of {', '.join(ORDERS)} (the compile's pre-shuffle order is not stored in a "
            "record, so there is no order=original: the source dataset is the shuffled arm)"
        )
    return Ablation(name, order=value)


# ---- citations of documents by number in a reasoning trace -----------------------------------------------------

_NUMBERS = r"#?\d+(?:\s*(?:,|and|or|&)\s*#?\d+)*"
CITATION = re.compile(rf"\b(?P<word>documents?|docs?\.?)(?P<gap>\s*)(?P<nums>{_NUMBERS})", re.IGNORECASE)
INDEX_ATTR = re.compile(r'(?P<word>index=")(?P<gap>)(?P<nums>\d+)(?=")')
NUMBER = re.compile(r"\d+")


def remap_citations(text: str, new_index: dict[int, int]) -> tuple[str, int, list[int]]:
    """`text` with every document number it cites ("document 7", "Documents 2, 5 and 9", "doc #3", `index="7"`)
    replaced by `new_index[number]`; returns (text, numbers changed, cited numbers with no new index). The two
    patterns match disjoint spans, so a remapped number is never remapped again."""
    changed, stale = 0, []

    def numbers(m: re.Match) -> str:
        nonlocal changed

        def one(n: re.Match) -> str:
            nonlocal changed
            old = int(n.group())
            if old not in new_index:
                stale.append(old)
                return n.group()
            changed += new_index[old] != old
            return str(new_index[old])

        return m.group("word") + m.group("gap") + NUMBER.sub(one, m.group("nums"))

    for pattern in (CITATION, INDEX_ATTR):
        text = pattern.sub(numbers, text)
    return text, changed, sorted(set(stale))


# ---- one record -------------------------------------------------------------------------------------------------


def ablate_record(record: ACCRecord, ablation: Ablation, tokenizer: str | None = None) -> ACCRecord:
    """The ablated record (ValueError when its gold evidence alone is over the ablated budget)."""
    from dataset_builder.assemble import completion_messages, rerender

    budget = ablation.budget_of(record.budget)
    new = rerender(
        record,
        drop_distractors=ablation.kind == "no-distractors",
        budget=budget,
        order=ablation.order,
        spec=ablation.spec,
        tokenizer=tokenizer,
    )
    meta = json.loads(new.meta)
    source_indices = meta["ablation"]["source_indices"]
    new_index = {old: k for k, old in enumerate(source_indices, start=1)}
    reasoning, changed, stale = remap_citations(record.reasoning, new_index)
    meta["ablation"]["citations"] = {"remapped": changed, "stale": stale}
    if reasoning != record.reasoning:
        content = record.completion[0]["content"] if len(record.completion) == 1 else ""
        if record.reasoning and record.reasoning in content:
            completion = [dict(record.completion[0], content=content.replace(record.reasoning, reasoning, 1))]
        else:
            completion = completion_messages(reasoning, record.answer)
        new.reasoning, new.completion = reasoning, completion
    new.meta = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)
    return new


def check_row(row: dict[str, Any], domain: str) -> ACCRecord:
    """The row as a record, or ValueError saying what is wrong with it."""
    try:
        record = ACCRecord.from_row(row)
    except (TypeError, KeyError) as err:
        raise ValueError(f"not an ACC record row ({type(err).__name__}: {err})") from None
    try:
        meta = json.loads(record.meta or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"meta is not JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError("meta is not a JSON object")
    if record.domain != domain:
        raise ValueError(f"domain {record.domain!r} in the {domain} files")
    if not any(not p.is_distractor for p in record.pieces):
        raise ValueError("no gold piece (an ACC context always holds its gold evidence)")
    if record.budget < 1 or len(record.completion) != 1 or len(record.prompt) != 1:
        raise ValueError(f"budget {record.budget}, {len(record.prompt)} prompt and "
                         f"{len(record.completion)} completion messages (expected a budget and one of each)")  # fmt: skip
    return record


def ablate_row(row: dict[str, Any], domain: str, ablation: Ablation, origin: str, *, tokenizer=None, stale="keep"):
    """One source row -> an ablated ACCRecord, or a Reject with `origin` and the reason."""
    try:
        record = check_row(row, domain)
    except ValueError as err:
        where = f"{origin} (id {row['id']})" if isinstance(row.get("id"), str) else origin
        return Reject(where, f"malformed record: {err}", str(row.get("source") or ""), domain, stage="ablate")
    origin = f"{origin} (id {record.id})"  # the reason classes in stats.json group reasons without the ids
    try:
        new = ablate_record(record, ablation, tokenizer)
    except Exception as err:  # noqa: BLE001 - one bad record (an unknown tokenizer, ...) must not end the run
        if isinstance(err, ValueError) and "gold evidence alone" in str(err):
            was = f"budget {record.budget} x {ablation.scale:g}" if ablation.kind == "budget-scale" else ""
            was = was or f"budget {record.budget}, capped at {ablation.cap}"
            reason = f"{str(err).removeprefix(f'record {record.id}: ')} ({was}); the evidence is never cut"
        else:
            reason = f"cannot re-render ({type(err).__name__}: {str(err)[:300]})"
        return Reject(origin, reason, record.source, domain, stage="ablate")
    cited = json.loads(new.meta)["ablation"]["citations"]["stale"]
    if cited and stale == "reject":
        reason = f"its reasoning cites document(s) {cited}, which {ablation.spec} removed"
        return Reject(origin, reason, record.source, domain, stage="ablate")
    return new


# ---- the source dataset -------------------------------------------------------------------------------------------


@dataclass
class Source:
    """A compiled ACC dataset behind an fsspec filesystem: a local folder or a Hub dataset repository."""

    name: str  # what the card names: the folder's path or the Hub id
    fs: Any
    root: str
    stats: dict[str, Any] = field(default_factory=dict)
    stats_sha256: str = ""

    def files(self, domain: str, split: str) -> list[str]:
        """Paths relative to the root of one domain's split: data/<domain>/<split>-*.parquet, sorted."""
        found = self.fs.glob(f"{self.root}/data/{domain}/{split}-*.parquet")
        return sorted(str(p)[len(self.root) + 1 :] for p in found)

    def open(self, rel: str):
        return self.fs.open(f"{self.root}/{rel}", "rb")


def open_source(path: str | Path) -> Source:
    """A local folder, `hf://datasets/ORG/NAME[@REV]`, or a bare `ORG/NAME` that is no local folder (the Hub)."""
    from dataset_builder.readers import hub

    text = str(path)
    if Path(text).is_dir():
        from fsspec.implementations.local import LocalFileSystem

        source = Source(text, LocalFileSystem(), str(Path(text).resolve()))
    elif hub.is_hub_url(text) or re.fullmatch(r"[\w.-]+/[\w.-]+(@[\w./%-]+)?", text):
        url = text if hub.is_hub_url(text) else hub.HF_DATASETS + text
        try:
            ref = hub.parse_hub_url(url)
        except hub.HubError as err:
            raise AblationError(str(err)) from None
        fs = hub.hub_filesystem()
        local = "" if hub.is_hub_url(text) else f"no folder {text} here, and "
        if not fs.exists(ref.root):
            raise AblationError(
                f"{text}: {local}no dataset {ref.repo_id} on the Hub (revision {ref.revision or 'default'})"
            )
        source = Source(ref.repo_id + (f"@{ref.revision}" if ref.revision else ""), fs, ref.root)
    else:
        raise AblationError(f"{text}: no such folder (expected a folder written by `acc compile`, or a Hub id)")
    try:
        with source.open("stats.json") as f:
            raw = f.read()
    except FileNotFoundError:
        raise AblationError(
            f"{source.name}: not a compiled ACC dataset (no stats.json; build one with acc compile)"
        ) from None
    try:
        source.stats = json.loads(raw)
    except json.JSONDecodeError as err:
        raise AblationError(f"{source.name}/stats.json: not JSON ({err})") from None
    source.stats_sha256 = hashlib.sha256(raw).hexdigest()
    if not any(source.files(d, s) for d in DOMAINS for s in ("train", "test")):
        raise AblationError(f"{source.name}: no data/<domain>/<split>-*.parquet shards (an empty or foreign dataset)")
    return source


def iter_source_rows(source: Source, rel: str):
    """Rows of one shard, a batch of `READ_BATCH_ROWS` at a time (never the whole file)."""
    import pyarrow.parquet as pq

    with source.open(rel) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=READ_BATCH_ROWS):
            yield from batch.to_pylist()


# ---- the run ------------------------------------------------------------------------------------------------------


@dataclass
class DomainSummary:
    n_in: int = 0
    n_records: int = 0
    n_rejected: int = 0
    n_verified: int = 0
    tokens_before: int = 0  # context tokens of the source records that became records
    tokens_after: int = 0
    distractors_before: int = 0
    distractors_after: int = 0
    citations_remapped: int = 0  # records whose reasoning had document numbers changed
    citations_stale: int = 0  # records whose reasoning cites a document that is no longer there

    def add(self, source_row: dict, new: ACCRecord) -> None:
        self.n_records += 1
        self.n_verified += bool(new.verified)
        self.tokens_before += int(source_row["n_tokens"])
        self.tokens_after += new.n_tokens
        self.distractors_before += sum(bool(p["is_distractor"]) for p in source_row["pieces"])
        self.distractors_after += sum(p.is_distractor for p in new.pieces)
        cited = json.loads(new.meta)["ablation"]["citations"]
        self.citations_remapped += cited["remapped"] > 0
        self.citations_stale += bool(cited["stale"])


class WorkShard:
    """Records of one domain's split into the compile's work folder, `WORK_FLUSH_ROWS` at a time."""

    def __init__(self, path: Path):
        self.path, self._rows, self._writer = path, [], None

    def add(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= WORK_FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from dataset_builder.writer import arrow_schema

        if not self._rows:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, arrow_schema())
        self._writer.write_table(pa.Table.from_pylist(self._rows, schema=arrow_schema()))
        self._rows = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()


def ablate_dataset(
    source: str | Path,
    out: str | Path,
    ablation: Ablation | str,
    *,
    tokenizer: str | None = None,
    stale_citations: str = "keep",
    license: str | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Write the ablation of `source` to `out` (shards per domain and split, rejects.jsonl, stats.json, card);
    returns the stats written. Raises AblationError for a bad spec or source."""
    from dataset_builder.pipeline.finalize_step import write_output
    from dataset_builder.pipeline.layout import WorkLayout, write_json
    from dataset_builder.pipeline.read_step import reject_line
    from dataset_builder.writer import SPLITS

    ablation = parse_ablation(ablation) if isinstance(ablation, str) else ablation
    if stale_citations not in STALE_POLICIES:
        raise AblationError(f"stale_citations {stale_citations!r}: one of {', '.join(STALE_POLICIES)}")
    src = open_source(source)
    out = Path(out)
    if isinstance(src.fs.protocol, tuple) and "file" in src.fs.protocol and out.resolve() == Path(src.root):
        raise AblationError(f"--out {out} is the source dataset: write the ablation to another folder")
    settings = dict(src.stats.get("settings") or {})
    check_tokenizer(tokenizer or settings.get("tokenizer"))
    layout = WorkLayout(out)
    shutil.rmtree(layout.work, ignore_errors=True)
    summary: dict[str, DomainSummary] = {}
    rejects: list[str] = []
    file_no = 0
    for domain in ablation.domains:
        for split in SPLITS:
            shard = WorkShard(layout.records(domain, split) / "00000.parquet")
            for rel in src.files(domain, split):
                tally = summary.setdefault(domain, DomainSummary())
                for k, row in enumerate(iter_rows_or_reject(src, rel, domain, rejects, file_no, tally)):
                    tally.n_in += 1
                    result = ablate_row(row, domain, ablation, f"{rel}#{k}", tokenizer=tokenizer, stale=stale_citations)
                    if isinstance(result, Reject):
                        tally.n_rejected += 1
                        rejects.append(reject_line(result, (file_no, k)))
                    else:
                        tally.add(row, result)
                        shard.add(result.to_row())
                file_no += 1
            shard.close()
    layout.rejects("ablate", "00000").parent.mkdir(parents=True, exist_ok=True)
    layout.rejects("ablate", "00000").write_text("".join(line + "\n" for line in rejects), encoding="utf-8")
    write_json(layout.counts("read", "ablate"), {"n_in": {d: t.n_in for d, t in summary.items()}})
    settings["ablation"] = {
        "spec": ablation.spec,
        "description": ablation.describe(),
        "source": src.name,
        "source_stats_sha256": src.stats_sha256,
        "source_n_records": src.stats.get("n_records"),
        "stale_citations": stale_citations,
        "tokenizer": tokenizer or settings.get("tokenizer"),
        "command": command,
        "domains": {d: vars(t) for d, t in sorted(summary.items())},
    }
    license = license or src.stats.get("license", "other")
    # the texts were scanned when the source was compiled; an ablation adds none: its secrets block is the source's
    stats = write_output(out, settings, license, secrets_summary=src.stats.get("secrets"))
    shutil.rmtree(layout.work, ignore_errors=True)
    return stats


def iter_rows_or_reject(src: Source, rel: str, domain: str, rejects: list[str], file_no: int, tally: DomainSummary):
    """The rows of one shard; a shard that cannot be read (from some row on) counts as one more input, rejected."""
    from dataset_builder.pipeline.read_step import reject_line

    k = 0
    try:
        for row in iter_source_rows(src, rel):
            yield row
            k += 1
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        tally.n_in += 1
        tally.n_rejected += 1
        reason = f"unreadable shard from row {k} on ({type(err).__name__}: {str(err)[:300]})"
        rejects.append(reject_line(Reject(f"{rel}#{k}", reason, "", domain, stage="ablate"), (file_no, 1 << 40)))


def check_tokenizer(name: str | None) -> None:
    """Load the tokenizer that counts the ablated contexts up front: a clear usage error instead of N rejects."""
    from dataset_builder.assemble import _tokenizer_path
    from dataset_builder.tokens import token_counter

    try:
        token_counter(_tokenizer_path(name))
    except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exceptions for Hub ids it cannot fetch
        raise AblationError(
            f"the records' tokens are counted with {name!r}, the tokenizer the dataset was compiled with, which cannot "
            f"be loaded ({type(err).__name__}: {err}); pass --tokenizer NAME_OR_DIR"
        ) from None


# ---- CLI ----------------------------------------------------------------------------------------------------------


def ablations_help() -> str:
    width = max(len(s) for s, _ in ABLATIONS.values())
    lines = [f"  {syntax:<{width}}  {text}" for syntax, text in ABLATIONS.values()]
    return "ablations (one per run):\n" + "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="ACC_DIR", help="a folder written by acc compile, or a Hub id / hf:// URL")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the ablation dataset to")
    parser.add_argument("--ablation", required=True, metavar="SPEC", help="what to ablate (see the list below)")
    parser.add_argument(
        "--stale-citations",
        choices=STALE_POLICIES,
        default="keep",
        help="a record whose reasoning cites a document the ablation removed: keep it (counted in stats.json and "
        "the card; default) or reject it",
    )
    parser.add_argument("--tokenizer", metavar="NAME_OR_DIR", help="override the tokenizer named in the records")
    parser.add_argument("--license", help="the card's licence (default: the source's)")
    parser.epilog = ablations_help()


def run(args: argparse.Namespace) -> int:
    command = "acc ablate " + " ".join(
        [str(args.source), "--out", str(args.out), "--ablation", args.ablation]
        + (["--stale-citations", args.stale_citations] if args.stale_citations != "keep" else [])
        + (["--tokenizer", args.tokenizer] if args.tokenizer else [])
    )
    try:
        stats = ablate_dataset(
            args.source,
            args.out,
            args.ablation,
            tokenizer=args.tokenizer,
            stale_citations=args.stale_citations,
            license=args.license,
            command=command,
        )
    except AblationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary_table(stats))
    print(f"\nwrote {args.out}: {stats['n_records']} records, rejects in {args.out / 'rejects.jsonl'}")
    return 0 if stats["balanced"] else 1


def summary_table(stats: dict[str, Any]) -> str:
    ab = stats["settings"]["ablation"]
    lines = [f"ablation {ab['spec']} of {ab['source']}", "domain  inputs  records  rejects  tokens before -> after"]
    for domain, d in ab["domains"].items():
        lines.append(
            f"{domain:<6}  {d['n_in']:>6}  {d['n_records']:>7}  {d['n_rejected']:>7}  "
            f"{d['tokens_before']:>13,} -> {d['tokens_after']:,}"
        )
    reasons = Counter(stats.get("reject_reasons") or {})
    if reasons:
        lines.append("rejects: " + "; ".join(f"{n}x {r}" for r, n in reasons.most_common(3)))
    return "\n".join(lines)
