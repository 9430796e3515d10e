"""Reasoning traces for a compiled ACC dataset, kept only when the answer verifies against the gold.

    generate_traces(dataset_dir, out_dir=None, teacher=TeacherConfig(...), k=4)   # mode="teacher"
    generate_traces(dataset_dir, mode="trajectory")                               # offline: the agents' own answers

teacher: each record's `prompt` (exactly what the student trains on) is sent to an OpenAI-compatible server for up
to `k` candidates, one request each (candidate i uses seed + i), one record after another per record and many
records at once; the first candidate whose answer verifies is kept. trajectory: no server; the trajectory's final
answer (`meta["trajectory_answer"]`, else the record's `answer`) and the agent's reasoning
(`meta["trajectory_reasoning"]`) are kept when that answer verifies. Without a gold, a trajectory-mode record can
verify on its benchmark's own verdict (`meta` `resolved` / `correct`), and the why says so.

A kept trace sets `reasoning`, `answer` (as the verifier read it), `verified=True`, `completion`, and in `meta`:
`teacher` (model, host of the URL only, sample index, tokens), `verifier` (score, why), `traces` (mode, status).
Every other record stays as it was, `verified` untouched (a run never un-verifies a record), with `meta["traces"]`
saying why: `rejected` (candidates came back, none verified) or `no_answer` (the server never answered). The number
of records never changes. Records verified before are skipped unless `redo_verified`.

Length contract: a dataset compiled with `--max-length L` (stats.json settings) keeps every row within L. A verified
candidate whose row (prompt + trace + answer) would be longer is re-fitted (`refit.py`: distractors dropped, never
gold, the context re-rendered from `pieces`); when the gold alone cannot fit beside it, the candidate is not kept,
the next one is tried, and a record left without any counts as `over_length` (status `rejected`, the numbers in its
why). `meta.row_tokens` holds each row's length, stats.json `length.longest_row` the longest.

Failures: whatever goes wrong with one record (an unreadable reply, a verifier or parser error of any type) ends that
record as `rejected` or `no_answer` with the exception type in `meta.traces.why`; the run goes on, and per domain
`attempted == verified + rejected + no_answer` (`DomainTally.balanced`).

Output: the shards are rewritten (same names; in place unless `out_dir` differs, each file replaced atomically), the
summary (attempted, verified, pass rate, tokens, per domain) goes to `traces_summary.json`, to `stats.json` under
"traces", and into the card (README.md) as a "## Reasoning traces" section.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.schema import DOMAINS
from dataset_builder.secrets import redact_trace_row
from dataset_builder.traces import refit
from dataset_builder.traces.cache import ResponseCache, default_cache_path
from dataset_builder.traces.teacher import NoAnswer, Teacher, TeacherConfig
from dataset_builder.verify import Verdict, extract_answer, meta_value, verify

CARD_SECTION = "## Reasoning traces"


@dataclass
class DomainTally:
    attempted: int = 0
    verified: int = 0
    rejected: int = 0
    no_answer: int = 0
    skipped_verified: int = 0  # verified before this run, left as they were
    refitted: int = 0  # verified records whose context lost distractors so that the row fits max_length
    over_length: int = 0  # rejected records whose verified candidates could not fit max_length even with gold only
    candidates: int = 0  # answers that came back (from the server or the cache)
    new_responses: int = 0  # of which asked from the server in this run
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def pass_rate(self) -> float:
        return self.verified / self.attempted if self.attempted else 0.0

    @property
    def balanced(self) -> bool:
        return self.attempted == self.verified + self.rejected + self.no_answer


@dataclass
class TracesSummary:
    mode: str
    model: str = ""
    k: int = 1
    domains: dict[str, DomainTally] = field(default_factory=dict)
    http_attempts: int = 0
    retries: int = 0
    out_dir: str = ""
    max_length: int | None = None  # the dataset's length contract (None: compiled without one)
    longest_row: int = 0  # tokens of the longest row after this run (meta.row_tokens)
    secrets_redacted: Counter = field(default_factory=Counter)  # credentials / personal data in what was written

    def total(self) -> DomainTally:
        total = DomainTally()
        for tally in self.domains.values():
            for name, value in asdict(tally).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def to_dict(self) -> dict[str, Any]:
        rows = {**self.domains, "total": self.total()}
        return {
            "mode": self.mode,
            "model": self.model,
            "k": self.k,
            "http_attempts": self.http_attempts,
            "retries": self.retries,
            "max_length": self.max_length,
            "longest_row": self.longest_row,
            "secrets_redacted": dict(sorted(self.secrets_redacted.items())),
            "domains": {
                d: {**asdict(t), "pass_rate": round(t.pass_rate, 4), "balanced": t.balanced} for d, t in rows.items()
            },
        }

    def table(self) -> str:
        lines = [
            "| domain | attempted | verified | pass rate | rejected | no answer | candidates | new requests "
            "| prompt tokens | completion tokens | re-fitted | over length |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, t in [*self.domains.items(), ("**total**", self.total())]:
            lines.append(
                f"| {name} | {t.attempted} | {t.verified} | {t.pass_rate:.1%} | {t.rejected} | {t.no_answer} "
                f"| {t.candidates} | {t.new_responses} | {t.prompt_tokens:,} | {t.completion_tokens:,} "
                f"| {t.refitted} | {t.over_length} |"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------- one record


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    try:
        meta = json.loads(row.get("meta") or "{}")
    except Exception as err:  # noqa: BLE001 - JSON errors, but also recursion on deep nesting
        meta = {"unreadable_meta": f"{type(err).__name__}: {str(row.get('meta'))[:200]}"}
    return meta if isinstance(meta, dict) else {"meta": meta}


def _prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    if row.get("prompt"):
        return [{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
    from dataset_builder.assemble import prompt_messages

    row["prompt"] = prompt_messages(row["domain"], row["question"], row["context"])
    return row["prompt"]


def _keep(row: dict[str, Any], meta: dict, reasoning: str, answer: str, verdict: Verdict, traces: dict) -> None:
    from dataset_builder.assemble import completion_messages

    row["reasoning"], row["answer"], row["verified"] = reasoning.strip(), answer.strip(), True
    row["completion"] = completion_messages(row["reasoning"], row["answer"])
    meta["verifier"] = {"domain": row["domain"], "score": round(verdict.score, 4), "why": verdict.why}
    meta["traces"] = {**traces, "status": "verified"}


def fit_row(row: dict[str, Any], reasoning: str, answer: str, contract: refit.LengthContract | None) -> dict:
    """`refit.fit` for the completion this reasoning and answer make ({} without a length contract)."""
    from dataset_builder.assemble import completion_messages

    if contract is None:
        return {}
    return refit.fit(row, completion_messages(reasoning, answer)[0]["content"], contract)


def _settle(tally: DomainTally, meta: dict, row: dict, update: dict, reasoning: str, answer: str, verdict, traces):
    """Keep a verified candidate that fits: re-fit the context if needed, then set the trace."""
    refit.apply(row, meta, update)
    tally.refitted += "refit" in update
    tally.verified += 1
    _keep(row, meta, reasoning, answer, verdict, traces)


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err)[:300]}"


def _source_verdict(row: dict[str, Any], meta: dict) -> Verdict | None:
    """The benchmark's own verdict, used in trajectory mode when the record has no gold to check against."""
    if (row.get("gold") or "").strip() or meta_value(meta, "gold_tables"):
        return None
    for key in ("resolved", "correct"):
        value = meta_value(meta, key)
        if isinstance(value, bool):
            return Verdict(value, float(value), f"no gold; the benchmark's own verdict: {key}={value}")
    return None


def safe_verify(row: dict[str, Any], answer: str, opts: dict) -> Verdict:
    """`verify`, with an unexpected error in a verifier turned into a failed verdict (one bad answer, not a crash)."""
    try:
        return verify(row, answer, **opts)
    except Exception as err:  # noqa: BLE001 - a verifier bug must not lose the run's other records
        return Verdict(False, 0.0, f"verifier error: {type(err).__name__}: {str(err)[:200]}")


def trajectory_trace(
    row: dict[str, Any], meta: dict, tally: DomainTally, verify_opts: dict, contract: refit.LengthContract | None = None
) -> None:
    answer = meta_value(meta, "trajectory_answer") or row.get("answer") or ""
    reasoning = meta_value(meta, "trajectory_reasoning") or ""
    traces = {"mode": "trajectory", "candidates": 1}
    if not str(answer).strip():
        tally.no_answer += 1
        meta["traces"] = {**traces, "status": "no_answer", "why": "the trajectory has no final answer"}
        return
    tally.candidates += 1
    verdict = safe_verify(row, str(answer), verify_opts)
    if not verdict.ok:
        verdict = _source_verdict(row, meta) or verdict
    why = verdict.why
    if verdict.ok:
        kept = extract_answer(row["domain"], str(answer))
        try:
            update = fit_row(row, str(reasoning), kept, contract)
        except refit.DoesNotFit as err:
            tally.over_length += 1
            why = f"verified, but {err}"
        else:
            _settle(tally, meta, row, update, str(reasoning), kept, verdict, traces)
            meta["teacher"] = {"model": meta_value(meta, "model") or "", "trajectory": True}
            return
    tally.rejected += 1
    meta["traces"] = {**traces, "status": "rejected", "why": why[:500]}


async def teacher_trace(
    row: dict[str, Any],
    meta: dict,
    tally: DomainTally,
    teacher: Teacher,
    k: int,
    verify_opts: dict,
    contract: refit.LengthContract | None = None,
) -> None:
    messages = _prompt(row)
    traces: dict[str, Any] = {"mode": "teacher", "candidates": 0}
    problems: list[str] = []
    best = None
    too_long = False
    for index in range(k):
        try:
            candidate = await teacher.sample(messages, index, record_id=row["id"])
        except NoAnswer as err:  # the server will not answer this prompt now: asking for more samples would not help
            problems.append(f"sample {index}: {err}")
            break
        except Exception as err:  # noqa: BLE001 - a client or cache failure ends this record, not the run
            problems.append(f"sample {index}: teacher request failed: {_error(err)}")
            break
        traces["candidates"] += 1
        tally.candidates += 1
        tally.new_responses += not candidate.cached
        tally.prompt_tokens += candidate.prompt_tokens
        tally.completion_tokens += candidate.completion_tokens
        if not candidate.ok:
            problems.append(f"sample {index}: {candidate.error}")
            continue
        verdict = await asyncio.to_thread(safe_verify, row, candidate.content, verify_opts)
        if verdict.ok:
            answer = extract_answer(row["domain"], candidate.content)
            try:
                update = await asyncio.to_thread(fit_row, row, candidate.reasoning, answer, contract)
            except refit.DoesNotFit as err:
                too_long = True
                problems.append(f"sample {index}: verified, but {err}")
                best = max(best or 0.0, verdict.score)
                continue
            _settle(tally, meta, row, update, candidate.reasoning, answer, verdict, {**traces, "sample_index": index})
            config = teacher.config
            meta["teacher"] = {
                "model": config.model,
                "host": config.host,
                "sample_index": index,
                "temperature": config.temperature,
                "prompt_tokens": candidate.prompt_tokens,
                "completion_tokens": candidate.completion_tokens,
                "finish_reason": candidate.finish_reason,
            }
            return
        problems.append(f"sample {index}: {verdict.why}")
        best = max(best or 0.0, verdict.score)
    status = "rejected" if traces["candidates"] else "no_answer"
    setattr(tally, status, getattr(tally, status) + 1)
    tally.over_length += too_long
    meta["traces"] = {**traces, "status": status, "why": " | ".join(p[:300] for p in problems)[:2000]}
    if best is not None:
        meta["traces"]["best_score"] = round(best, 4)


def record_failed(meta: dict, tally: DomainTally, err: BaseException, mode: str) -> None:
    """A record whose processing raised: rejected with the exception type (once: its status may be set already)."""
    if (meta.get("traces") or {}).get("status"):  # counted already: the error came after its verdict
        meta["traces"]["error"] = _error(err)
        return
    tally.rejected += 1
    meta["traces"] = {"mode": mode, "status": "rejected", "why": f"error while making its trace: {_error(err)}"}


# ---------------------------------------------------------------- the dataset


def _shards(dataset_dir: Path) -> list[Path]:
    shards = sorted((dataset_dir / "data").glob("*/*.parquet"))
    if not shards:
        raise FileNotFoundError(
            f"no parquet shards under {dataset_dir}/data/<domain>/ (is it an `acc compile` output?)"
        )
    return shards


def _write_shard(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataset_builder.writer import arrow_schema

    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), tmp, compression="zstd")
    os.replace(tmp, path)


def _progress_text(domains: dict[str, DomainTally]) -> str:
    done = {d: t.verified + t.rejected + t.no_answer for d, t in domains.items()}
    return " ".join(f"{d} {t.verified}/{done[d]} ({t.verified / done[d]:.0%})" for d, t in domains.items() if done[d])


def _selected(shard: Path, domains: list[str] | None, redo_verified: bool) -> int:
    """How many records of a shard this run will process (reads two columns only)."""
    import pyarrow.parquet as pq

    table = pq.read_table(shard, columns=["domain", "verified"]).to_pydict()
    return sum(
        (not domains or d in domains) and (redo_verified or not v) for d, v in zip(table["domain"], table["verified"])
    )


def generate_traces(
    dataset_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    teacher: TeacherConfig | None = None,
    k: int = 4,
    mode: str = "teacher",
    cache_path: str | Path | None = None,
    domains: list[str] | None = None,
    redo_verified: bool = False,
    verify_opts: dict[str, Any] | None = None,
    progress: bool = True,
    tokenizer: str | None = None,
    secrets: str = "redact",
) -> TracesSummary:
    """Add verified traces to the dataset in `dataset_dir` (written to `out_dir`, default in place).

    `tokenizer` overrides the one stats.json names for keeping rows within the dataset's max_length. `secrets`:
    "redact" (default) scans what the teacher wrote (reasoning, answer, verifier notes) and replaces credentials and
    personal data with placeholders before the row is written (`secrets.redact_trace_row`); "off" does not."""
    import pyarrow.parquet as pq
    from tqdm import tqdm

    if mode not in ("teacher", "trajectory"):
        raise ValueError(f"mode must be 'teacher' or 'trajectory', not {mode!r}")
    if mode == "teacher" and teacher is None:
        raise ValueError("mode 'teacher' needs a TeacherConfig (teacher URL and model)")
    source = Path(dataset_dir)
    shards = _shards(source)
    out = Path(out_dir) if out_dir is not None else source
    if out.resolve() != source.resolve():
        shutil.copytree(source, out, dirs_exist_ok=True)
    opts = dict(verify_opts or {})
    stats_path = out / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    if opts.get("db_root") is None and (stats.get("settings") or {}).get("db_dir"):
        opts["db_root"] = stats["settings"]["db_dir"]
    contract = refit.load_contract(stats.get("settings") or {}, tokenizer)
    summary = TracesSummary(mode, teacher.model if teacher else "", k if mode == "teacher" else 1, out_dir=str(out))
    summary.max_length = contract.max_length if contract else None
    tallies = summary.domains
    cache = ResponseCache(cache_path or default_cache_path()) if mode == "teacher" else None
    total = sum(_selected(shard, domains, redo_verified) for shard in shards)
    bar = tqdm(
        total=total, desc=f"traces ({mode})", unit="rec", disable=not progress, file=sys.stderr, dynamic_ncols=True
    )
    try:
        for shard in shards:
            rows = pq.read_table(shard).to_pylist()
            metas = [_meta(r) for r in rows]
            todo = []
            for i, row in enumerate(rows):
                if domains and row["domain"] not in domains:
                    continue
                tally = tallies.setdefault(row["domain"], DomainTally())
                if row.get("verified") and not redo_verified:
                    tally.skipped_verified += 1
                    continue
                tally.attempted += 1
                metas[i].pop("traces", None)  # set again below: a status there means this run counted the record
                todo.append(i)
            if mode == "trajectory":
                for i in todo:
                    try:
                        trajectory_trace(rows[i], metas[i], tallies[rows[i]["domain"]], opts, contract)
                    except Exception as err:  # noqa: BLE001 - one record's failure must not stop the run
                        record_failed(metas[i], tallies[rows[i]["domain"]], err, mode)
                    bar.update(1)
                    bar.set_postfix_str(_progress_text(tallies), refresh=False)
            else:
                http = asyncio.run(_teach_all(rows, metas, todo, tallies, teacher, cache, k, opts, bar, contract))
                summary.http_attempts += http[0]
                summary.retries += http[1]
            if secrets != "off":  # what a teacher wrote is scanned before it enters the record (secrets/)
                for i in todo:
                    summary.secrets_redacted.update(redact_trace_row(rows[i], metas[i]))
            for row, meta in zip(rows, metas):
                summary.longest_row = max(summary.longest_row, int(meta.get("row_tokens") or 0))
                row["meta"] = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)
            _write_shard(out / shard.relative_to(source), rows)
    finally:
        bar.close()
        if cache is not None:
            cache.close()
    summary.domains = {d: tallies[d] for d in (*DOMAINS, *sorted(tallies)) if d in tallies}
    _write_summary(out, summary, stats)
    return summary


async def _teach_all(rows, metas, todo, tallies, config, cache, k, opts, bar, contract=None) -> tuple[int, int]:
    async with Teacher(config, cache) as teacher:

        async def one(i: int) -> None:
            tally = tallies[rows[i]["domain"]]
            try:
                await teacher_trace(rows[i], metas[i], tally, teacher, k, opts, contract)
            except Exception as err:  # noqa: BLE001 - one record's failure must not stop the run
                record_failed(metas[i], tally, err, "teacher")
            bar.update(1)
            bar.set_postfix_str(_progress_text(tallies), refresh=False)

        await asyncio.gather(*(one(i) for i in todo))
        return teacher.requests_sent, teacher.retries


def _write_summary(out: Path, summary: TracesSummary, stats: dict) -> None:
    data = summary.to_dict()
    (out / "traces_summary.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    section = card_section(summary)
    if stats:  # the card template renders stats.traces.card_section, so every re-rendered card (acc push) keeps it
        from dataset_builder.writer import write_card

        stats["traces"] = {**data, "card_section": section}
        if isinstance(stats.get("length"), dict):  # the dataset's longest row now includes the traces
            stats["length"]["longest_row"] = summary.longest_row
        (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        write_card(out)
    else:
        update_card(out / "README.md", section)


def card_section(summary: TracesSummary) -> str:
    """The body of the card's "## Reasoning traces" section: how traces were made, and the summary table."""
    if summary.mode == "teacher":
        how = (
            f"Traces were sampled from the teacher `{summary.model}` (up to {summary.k} candidates per record) given "
            "each record's prompt, and kept only when the candidate's answer verified against the gold."
        )
    else:
        how = (
            "Traces are the agents' own: a trajectory's final answer and reasoning were kept when that answer "
            "verified against the gold."
        )
    return (
        f"{how} Verifiers: search = normalized exact match / token F1 against the gold aliases; "
        "sql = result table vs the gold result (rows as a multiset, numeric tolerance); swe = the diff applied to the "
        "context files vs the gold patch applied to them. Records without a verified trace stay in the dataset with "
        "`verified = false` and the reason in `meta.traces`: filter on `verified` to train on traces only.\n\n"
        f"{length_note(summary)}{summary.table()}\n"
    )


def length_note(summary: TracesSummary) -> str:
    if not summary.max_length:
        return ""
    total = summary.total()
    return (
        f"Every row fits max_length {summary.max_length} (longest: {summary.longest_row} tokens): {total.refitted} "
        "verified records whose trace was longer than the reasoning reserve were re-fitted (distractors dropped, never "
        f"gold evidence), and {total.over_length} were rejected because their gold evidence alone could not fit "
        "beside the trace.\n\n"
    )


def update_card(readme: Path, body: str) -> None:
    """Put the "## Reasoning traces" section into the card: replace an earlier one, else append it (below the YAML
    front matter and the rest of the card)."""
    section = f"{CARD_SECTION}\n\n{body}"
    text = readme.read_text() if readme.is_file() else ""
    pattern = re.compile(rf"^{re.escape(CARD_SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    readme.write_text(text)
