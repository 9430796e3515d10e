"""`acc agent-sft`: the agent-SFT baseline of an ACC dataset, built from the same trajectories.

    acc compile runs/ --out acc_data --test-size 0.02
    acc agent-sft runs/ --acc acc_data --out acc_data_agent_sft      # INPUTS default to the ACC dataset's own

The paper's baseline is ordinary agent SFT: each trajectory as a multi-turn conversation (user question, assistant
turns with `tool_calls`, `tool` responses, final answer) in the chat template's tool format, trained with TRL's
assistant-only loss, so that tool outputs, user and system turns carry no loss. The inputs are read through the same
walker and adapters as `acc compile`; each trajectory is joined to the ACC record made from it (the record's
`meta.origin`, the input-relative origin, plus its `trajectory_id` and `source`), so the two datasets hold exactly
the same runs, with the same record ids, configs (search / swe / sql / all) and train/test splits.

    OUT/data/<domain>/<split>-0000K-of-0000N.parquet   id, domain, source, verified, messages, tools, meta
    OUT/README.md                                      card with configs:, naming the ACC dataset it mirrors
    OUT/rejects.jsonl                                  inputs that are not in the ACC view (with the ACC's reason)
    OUT/missing.jsonl                                  ACC records whose trajectory was not found in INPUTS
    OUT/stats.json                                     counts, conversation tokens and loss tokens, rejects

inputs = records + rejects. Streaming: one input file's trajectories at a time, the ACC dataset's id index (its
id / source / verified / meta columns) and one row group per open shard. Same inputs -> byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.schema import DOMAINS, Reject, Trajectory

log = logging.getLogger("acc")

SHARD_NAME = re.compile(r"(?P<split>[A-Za-z0-9_]+)-\d{5}-of-\d{5}\.parquet")
NOT_IN_ACC = "not in the ACC view"


@dataclass(frozen=True)
class AccEntry:
    """What the join needs of one ACC record."""

    id: str
    domain: str
    source: str
    split: str
    trajectory_id: str
    verified: bool


def read_acc_index(acc_dir: Path) -> dict[str, AccEntry]:
    """{input-relative origin: AccEntry} over every ACC shard, reading only the id / domain / source / verified / meta
    columns; the split is the shard's file name (`test-00000-of-00001.parquet` -> "test")."""
    import pyarrow.parquet as pq

    index: dict[str, AccEntry] = {}
    for path in sorted((acc_dir / "data").glob("*/*.parquet")):
        match = SHARD_NAME.fullmatch(path.name)
        if not match:
            continue
        shard = pq.ParquetFile(path)
        columns = [c for c in ("id", "domain", "source", "verified", "meta") if c in shard.schema_arrow.names]
        for batch in shard.iter_batches(batch_size=1024, columns=columns):
            for row in batch.to_pylist():
                meta = json.loads(row.get("meta") or "{}")
                origin = meta.get("origin")
                if not origin:
                    raise ValueError(f"{path}: record {row['id']} has no meta.origin (not an `acc compile` dataset?)")
                if origin in index:
                    raise ValueError(f"{path}: two ACC records ({index[origin].id}, {row['id']}) of origin {origin}")
                index[origin] = AccEntry(
                    row["id"], row["domain"], row["source"], match["split"], str(meta.get("trajectory_id", "")),
                    bool(row.get("verified", False)),
                )  # fmt: skip
    return index


def read_acc_rejects(acc_dir: Path) -> dict[str, str]:
    """The ACC dataset's reject reasons, keyed by every path-suffix of their origin (`/abs/runs/a.jsonl:3` under
    `runs/a.jsonl:3`, `a.jsonl:3`, ...), so an input-relative origin finds its reject wherever the inputs lived."""
    reasons: dict[str, str] = {}
    path = acc_dir / "rejects.jsonl"
    if not path.is_file():
        return reasons
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rej = json.loads(line)
                origin = rej["origin"]
                for k in [0] + [m.end() for m in re.finditer(r"/", origin)]:
                    reasons.setdefault(origin[k:], f"{rej['reason']} (stage {rej.get('stage', 'read')})")
    return reasons


def iter_inputs(files: list[tuple[str, str]], fmt: str | None, opts: Any) -> Iterator[tuple[str, Trajectory | Reject]]:
    """(input-relative origin, trajectory or reject) for every input, read as `acc compile` reads them
    (`compile.read_trajectories`: the same triage, adapters and rejects). One file at a time."""
    from dataset_builder.compile import origin_key, read_trajectories

    for path, base in files:
        for item in read_trajectories(path, fmt, opts):
            yield origin_key(item.origin, path, base), item


@dataclass
class DomainTally:
    n_in: int = 0
    n_rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    tokens: list[int] = field(default_factory=list)
    loss_tokens: int = 0
    tool_calls: list[int] = field(default_factory=list)
    splits: Counter = field(default_factory=Counter)
    shards: list[str] = field(default_factory=list)


def build_agent_sft(
    inputs: list[str | Path] | None,
    acc_dir: str | Path,
    out_dir: str | Path,
    *,
    fmt: str | None = None,
    acc_repo: str | None = None,
    license: str | None = None,
) -> dict[str, Any]:
    """Write the agent-SFT view of the ACC dataset `acc_dir` from `inputs` (default: the inputs its stats.json
    names) into `out_dir`; returns stats.json's content. Compile settings that decide what is read (format, databases
    and repositories beside the runs, the secrets policy) come from the ACC dataset's stats.json."""
    from dataset_builder.agent_sft_format import (
        ConversationError,
        ConversationTokens,
        arrow_schemas,
        conversation,
        conversation_bytes,
        encode_arguments,
        redact_conversation,
        remove_old_output,
        to_json,
        tool_schemas,
        trajectory_meta,
        write_card,
    )
    from dataset_builder.compile import reason_class
    from dataset_builder.domains import DomainOptions
    from dataset_builder.readers import input_files
    from dataset_builder.secrets import Scanner, check_policy, load_allowlist
    from dataset_builder.tokens import DEFAULT_TOKENIZER
    from dataset_builder.writer import ShardWriter

    acc, out = Path(acc_dir), Path(out_dir)
    if not (acc / "stats.json").is_file():
        raise FileNotFoundError(f"{acc}: no stats.json (not a dataset written by `acc compile`)")
    acc_stats = json.loads((acc / "stats.json").read_text(encoding="utf-8"))
    settings = acc_stats.get("settings") or {}
    given = bool(inputs)
    inputs = list(inputs or settings.get("inputs") or [])
    if not inputs:
        raise ValueError("no INPUTS given and the ACC dataset's stats.json names none")
    fmt = fmt or (None if settings.get("format", "auto") == "auto" else settings["format"])
    opts = DomainOptions(db_dir=settings.get("db_dir"), repos_dir=settings.get("repos_dir"))
    policy = check_policy(settings.get("secrets", "redact"))
    allowlist = settings.get("secrets_allowlist")
    scanner = Scanner(load_allowlist(allowlist if allowlist and Path(allowlist).is_file() else None))
    files = input_files(inputs)
    index, acc_rejects = read_acc_index(acc), read_acc_rejects(acc)
    counter = ConversationTokens(DEFAULT_TOKENIZER)
    out.mkdir(parents=True, exist_ok=True)
    remove_old_output(out)

    tally: dict[str, DomainTally] = {}
    writers: dict[tuple[str, str], ShardWriter] = {}
    rejects: list[str] = []
    joined: set[str] = set()
    long_rows: list[tuple[int, str]] = []
    secrets: Counter = Counter()
    max_length = settings.get("max_length")

    def reject(rej: Reject) -> None:
        t = tally.setdefault(rej.domain or "unknown", DomainTally())
        t.n_rejected += 1
        t.reasons[reason_class(rej.reason)] += 1
        rejects.append(rej.to_json())

    for key, item in iter_inputs(files, fmt, opts):
        domain = item.domain or "unknown"
        tally.setdefault(domain, DomainTally()).n_in += 1
        if isinstance(item, Reject):
            reject(item)
            continue
        entry = index.get(key)
        if entry is None:
            acc_reason = acc_rejects.get(key) or acc_rejects.get(item.origin)
            why = (
                f"{NOT_IN_ACC}: {acc_reason}"
                if acc_reason
                else f"{NOT_IN_ACC} (no ACC record or reject has this origin)"
            )
            reject(Reject(item.origin, why, item.source, item.domain, stage="join"))
            continue
        if (entry.source, entry.trajectory_id) != (item.source, item.id) or key in joined:
            why = (f"origin {key} is ACC record {entry.id} of trajectory {entry.source}/{entry.trajectory_id}, but "
                   f"INPUTS hold {item.source}/{item.id} there (inputs changed since the compile?)")  # fmt: skip
            if key in joined:
                why = f"origin {key} read twice (its ACC record {entry.id} is already joined)"
            reject(Reject(item.origin, why, item.source, item.domain, stage="join"))
            continue
        try:
            messages = conversation(item)
        except ConversationError as err:
            reject(Reject(item.origin, f"{NOT_IN_ACC}: cannot train on it: {err}", item.source, item.domain, "join"))
            continue
        found = redact_conversation(messages, scanner) if policy != "off" else Counter()
        if found and policy == "drop":
            types = ", ".join(sorted(found))
            reject(Reject(item.origin, f"credentials or personal data found ({types}); --secrets drop", item.source,
                          item.domain, "secrets"))  # fmt: skip
            continue
        secrets.update(found)
        tools = tool_schemas(item)
        n_tokens, n_loss = counter.count(messages, tools)
        meta = {
            "origin": key,
            "trajectory_id": item.id,
            "n_tokens": n_tokens,
            "n_loss_tokens": n_loss,
            "n_tool_calls": len(item.steps),
            "tokenizer": counter.name,
            "tools": "source" if item.meta.get("tools") else "inferred",
            "trajectory": trajectory_meta(item),
        }
        if found:
            meta["secrets_redacted"] = dict(sorted(found.items()))
        row = {
            "id": entry.id,
            "domain": entry.domain,
            "source": entry.source,
            "verified": entry.verified,
            "messages": encode_arguments(messages),
            "tools": [to_json(t) for t in tools],
            "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str),
        }
        shard = writers.get((entry.domain, entry.split))
        if shard is None:
            shard = ShardWriter(out, entry.domain, entry.split, arrow_schemas(), conversation_bytes)
            writers[(entry.domain, entry.split)] = shard
        shard.add(row)
        joined.add(key)
        t = tally.setdefault(entry.domain, DomainTally())
        t.tokens.append(n_tokens)
        t.loss_tokens += n_loss
        t.tool_calls.append(len(item.steps))
        t.splits[entry.split] += 1
        if max_length and n_tokens > max_length:
            long_rows.append((n_tokens, entry.id))

    for (domain, _split), shard in sorted(writers.items()):
        tally[domain].shards.extend(shard.close())
    missing = [(o, e) for o, e in index.items() if o not in joined]
    missing.sort(key=lambda m: (DOMAINS.index(m[1].domain) if m[1].domain in DOMAINS else 9, m[1].split, m[0]))
    with open(out / "missing.jsonl", "w", encoding="utf-8") as f:
        for origin, e in missing:
            line = {"id": e.id, "origin": origin, "domain": e.domain, "split": e.split, "source": e.source,
                    "trajectory_id": e.trajectory_id, "reason": "trajectory not found in INPUTS"}  # fmt: skip
            f.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    (out / "rejects.jsonl").write_text("".join(line + "\n" for line in rejects), encoding="utf-8")
    stats = summarize(tally, out, acc, acc_stats, acc_repo, len(index), len(missing), long_rows, max_length)
    stats["tokenizer"] = counter.name
    stats["secrets"] = {"policy": policy, "redacted": dict(sorted(secrets.items()))}
    stats["settings"] = {"format": fmt or "auto", "inputs": "given" if given else "the ACC dataset's (stats.json)"}
    stats["license"] = license or acc_stats.get("license", "other")
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    write_card(out, stats)
    return stats


def summarize(tally, out, acc, acc_stats, acc_repo, n_acc, n_missing, long_rows, max_length) -> dict[str, Any]:
    from dataset_builder.writer import summary

    domains = {}
    for dom, t in sorted(tally.items()):
        total = sum(t.tokens)
        domains[dom] = {
            "n_in": t.n_in,
            "n_records": len(t.tokens),
            "n_rejected": t.n_rejected,
            "balanced": t.n_in == len(t.tokens) + t.n_rejected,
            "conversation_tokens": summary(t.tokens),
            "loss_tokens": t.loss_tokens,
            "loss_share": round(t.loss_tokens / total, 4) if total else 0.0,
            "tool_calls": summary(t.tool_calls),
            "splits": {s: {"n_records": n} for s, n in sorted(t.splits.items())},
            "shards": t.shards,
            "num_bytes": sum((out / s).stat().st_size for s in t.shards),
            "reject_reasons": dict(t.reasons.most_common()),
        }
    reasons: Counter = Counter()
    for t in tally.values():
        reasons.update(t.reasons)
    n_records = sum(d["n_records"] for d in domains.values())
    all_tokens = sum(d["conversation_tokens"].get("total", 0) for d in domains.values())
    long_rows.sort(key=lambda r: (-r[0], r[1]))
    return {
        "view": "agent-sft",
        "acc_dataset": {
            "name": acc_repo or acc.resolve().name,
            "n_records": n_acc,
            "n_missing": n_missing,  # ACC records whose trajectory INPUTS lack (missing.jsonl)
            "same_runs": n_missing == 0 and n_records == n_acc,
            "settings": {k: acc_stats.get("settings", {}).get(k) for k in ("seed", "test_size", "tokenizer")},
        },
        "n_in": sum(d["n_in"] for d in domains.values()),
        "n_records": n_records,
        "n_rejected": sum(d["n_rejected"] for d in domains.values()),
        "balanced": all(d["balanced"] for d in domains.values()),
        "loss_share": round(sum(d["loss_tokens"] for d in domains.values()) / all_tokens, 4) if all_tokens else 0.0,
        "longer_than_max_length": {
            "max_length": max_length,  # the ACC compile's --max-length; the trainer drops longer rows and says so
            "n_records": len(long_rows),
            "records": [{"id": rid, "n_tokens": n} for n, rid in long_rows],
        },
        "domains": domains,
        "reject_reasons": dict(reasons.most_common()),
    }


# ---- `acc agent-sft` ------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="trajectory files / directories / hf:// datasets, as given to acc compile (default: the inputs the ACC "
        "dataset's stats.json names)",
    )  # fmt: skip
    parser.add_argument("--acc", required=True, type=Path, metavar="ACC_DIR", help="the compiled ACC dataset to mirror")
    parser.add_argument("--out", required=True, type=Path, help="output folder of the agent-SFT dataset")
    parser.add_argument("--format", dest="fmt", help="force one adapter (default: the ACC compile's --format)")
    parser.add_argument("--acc-repo", metavar="ORG/NAME", help="Hub id of the ACC dataset, for the card's link")
    parser.add_argument("--license", help="license for the card (default: the ACC dataset's)")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        stats = build_agent_sft(
            args.inputs, args.acc, args.out, fmt=args.fmt, acc_repo=args.acc_repo, license=args.license
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"acc agent-sft: error: {err}")
        return 2
    print(f"agent-SFT view of {args.acc} -> {args.out} (inputs = records + rejects):")
    for dom, d in stats["domains"].items():
        splits = ", ".join(f"{n['n_records']} {s}" for s, n in d["splits"].items())
        tokens = d["conversation_tokens"]
        line = f"  {dom:8s} {d['n_in']:4d} = {d['n_records']:4d} + {d['n_rejected']:4d}"
        if tokens:
            line += f"   ({splits}; tokens median {tokens['median']}, max {tokens['max']}; loss {d['loss_share']:.1%})"
        print(line)
    acc = stats["acc_dataset"]
    print(f"ACC records: {acc['n_records']}, joined {stats['n_records']}, missing from INPUTS {acc['n_missing']}")
    if not acc["same_runs"]:
        print(f"WARNING: not the same runs as {args.acc}: see {args.out / 'missing.jsonl'}")
    return 0
