"""Credentials and personal data: found in every compiled text, redacted (or the record dropped) before writing,
and checked again in every file before `acc push` uploads it.

- `detectors.py`: what is found (detect-secrets' regex plugins, whole match, plus the patterns they lack)
- `scan.py`: one text -> spans; placeholders (`<SECRET:aws_access_key>`, `<EMAIL>`, `<IP>`, `<USER>`)
- `records.py`: one ACC record -> redacted record (or Reject) + findings (`scan_record`)
- `report.py`: a whole compile -> kept records + report (stats.json, card, local secrets.jsonl) (`scan_run`)
- `files.py`: the files of a dataset folder -> locations (file, row, field, type) (`scan_files`, for `acc push`)
"""

from dataset_builder.secrets.files import Location, scan_files
from dataset_builder.secrets.records import POLICIES, Finding, ScanOutcome, check_policy, redact_trace_row, scan_record
from dataset_builder.secrets.report import FINDINGS_FILE, SecretsReport, finish_secrets, redact_rejects, scan_run
from dataset_builder.secrets.scan import Redactor, Scanner, Span, load_allowlist

__all__ = [
    "FINDINGS_FILE",
    "POLICIES",
    "Finding",
    "Location",
    "Redactor",
    "ScanOutcome",
    "Scanner",
    "SecretsReport",
    "Span",
    "check_policy",
    "load_allowlist",
    "scan_files",
    "redact_trace_row",
    "scan_record",
    "finish_secrets",
    "redact_rejects",
    "scan_run",
]
