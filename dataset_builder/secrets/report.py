"""The scan of a whole compile: records of each assemble task, the rejects, and the report of the run.

    kept, report = scan_run(records, rejects, policy="redact", counter=counter)   # per bucket, in the workers
    write_json(work / "secrets" / "swe-00003.json", report.to_json())
    ...
    summary = finish_secrets(work / "secrets", rejects, out, policy, allowlist)  # finalize: stats["secrets"]

`OUT/secrets.jsonl` (one finding per line: record id, domain, field, type, offset; never the value) stays local:
`acc push` uploads only the files it names, and this is not one of them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from dataset_builder.budget import MAX_LENGTH
from dataset_builder.schema import ACCRecord, Reject
from dataset_builder.secrets.records import Finding, ScanOutcome, check_policy, scan_record
from dataset_builder.secrets.scan import Redactor, Scanner, load_allowlist

log = logging.getLogger("acc")
FINDINGS_FILE = "secrets.jsonl"
COUNTS = ("n_records", "n_records_with_findings", "n_records_redacted", "n_records_dropped", "n_rejects_redacted")


@dataclass
class SecretsReport:
    policy: str = "redact"
    allowlist: str | None = None  # the allowlist file's name (its values are never reported)
    n_records: int = 0  # records scanned
    n_records_with_findings: int = 0
    n_records_redacted: int = 0
    n_records_dropped: int = 0
    n_rejects_redacted: int = 0
    by_type: Counter = field(default_factory=Counter)
    by_domain: dict[str, Counter] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def add(self, outcome: ScanOutcome, domain: str) -> None:
        self.n_records += 1
        if not outcome.findings:
            return
        self.n_records_with_findings += 1
        if outcome.record is not None:
            self.n_records_redacted += 1
        else:
            self.n_records_dropped += 1
        self.count(outcome.findings)

    def count(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)
        for f in findings:
            self.by_type[f.type] += 1
            self.by_domain.setdefault(f.domain or "unknown", Counter())[f.type] += 1

    def merge(self, other: SecretsReport) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.count(other.findings)

    def summary(self) -> dict[str, Any]:
        """What stats.json keeps under "secrets" (and the card shows): counts only."""
        return {
            "policy": self.policy,
            "allowlist": self.allowlist,
            "n_records_scanned": self.n_records,
            "n_records_with_findings": self.n_records_with_findings,
            "n_records_redacted": self.n_records_redacted,
            "n_records_dropped": self.n_records_dropped,
            "n_rejects_redacted": self.n_rejects_redacted,
            "n_findings": sum(self.by_type.values()),
            "by_type": dict(sorted(self.by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_domain": {d: dict(sorted(c.items())) for d, c in sorted(self.by_domain.items())},
        }

    def to_json(self) -> dict[str, Any]:
        """A task's report, for the finalize stage (`from_json`)."""
        return {
            "policy": self.policy,
            "allowlist": self.allowlist,
            **{name: getattr(self, name) for name in COUNTS},
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SecretsReport:
        report = cls(data["policy"], data.get("allowlist"), **{name: data.get(name, 0) for name in COUNTS})
        report.count([Finding(**f) for f in data.get("findings", [])])
        return report

    def write_findings(self, path: str | Path) -> None:
        lines = sorted(json.dumps(f.to_dict(), sort_keys=True) for f in self.findings)
        Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@lru_cache(maxsize=4)
def scanner_for(allowlist: str | None) -> Scanner:
    """One scanner (and its cache) per allowlist per process: filler pieces recur across records and buckets."""
    return Scanner(load_allowlist(allowlist))


def scan_run(
    records: list[ACCRecord],
    rejects: list[Reject],
    *,
    policy: str = "redact",
    counter: Any = None,
    allowlist: str | Path | None = None,
    origins: dict[str, str] | None = None,
    max_length: int = MAX_LENGTH,
    reasoning_reserve: int | None = None,
    contexts: Any = None,
) -> tuple[list[ACCRecord], SecretsReport]:
    """Scan every record (`scan_record`): the kept (redacted) records, and the report. Records dropped by policy
    "drop", or that no longer fit after redaction, are appended to `rejects` (so inputs = records + rejects holds)."""
    report = SecretsReport(check_policy(policy), Path(allowlist).name if allowlist else None)
    if policy == "off":
        return records, report
    scanner = scanner_for(str(allowlist) if allowlist else None)
    kept: list[ACCRecord] = []
    for rec in records:
        origin = (origins or {}).get(rec.id)
        outcome = scan_record(
            rec,
            policy,
            counter,
            scanner=scanner,
            origin=origin,
            max_length=max_length,
            reasoning_reserve=reasoning_reserve,
            contexts=contexts,
        )
        report.add(outcome, rec.domain)
        if outcome.reject is not None:
            rejects.append(outcome.reject)
        else:
            kept.append(outcome.record)
    return kept, report


def redact_rejects(rejects: list[dict[str, Any]], report: SecretsReport, allowlist: str | None = None) -> None:
    """Redact, in place, the reasons of rejects (an error message can quote what it failed on). Origins are local
    paths, which `acc push` rewrites (and then checks)."""
    scanner = scanner_for(allowlist)
    for i, rej in enumerate(rejects):
        spans = scanner.scan(rej.get("reason", ""))
        if spans and rej.get("stage") != "secrets":
            domain = rej.get("domain") or "unknown"
            report.count([Finding(f"rejects.jsonl:{i + 1}", domain, "reason", s.type, s.start) for s in spans])
            rej["reason"] = Redactor().redact(rej["reason"], spans)
            report.n_rejects_redacted += 1


def finish_secrets(
    parts: Path, rejects: list[dict[str, Any]], out: Path, policy: str, allowlist: str | None = None
) -> dict[str, Any]:
    """Finalize: merge the tasks' reports (`parts/*.json`), redact the rejects' reasons, write OUT/secrets.jsonl;
    returns the summary for stats.json."""
    report = SecretsReport(policy, Path(allowlist).name if allowlist else None)
    if policy == "off":
        log.warning(
            "secrets: the scan was turned off (--secrets off): records were written unscanned; the card says so"
        )
        (out / FINDINGS_FILE).unlink(missing_ok=True)
        return report.summary()
    for path in sorted(parts.glob("*.json")):
        report.merge(SecretsReport.from_json(json.loads(path.read_text(encoding="utf-8"))))
    redact_rejects(rejects, report, allowlist)
    report.write_findings(out / FINDINGS_FILE)
    s = report.summary()
    log.info(
        "secrets (%s): %d findings in %d of %d records (%d redacted, %d dropped), %d rejects redacted: %s",
        policy, s["n_findings"], report.n_records_with_findings, report.n_records, report.n_records_redacted,
        report.n_records_dropped, report.n_rejects_redacted, s["by_type"],
    )  # fmt: skip
    return s
