"""The secret scan: every planted credential and personal datum found and redacted whole, decoys never flagged,
records kept consistent (gold stays gold, exact token counts, budgets), and a compile of a leaky corpus of all three
domains whose output folder holds none of the planted values."""

import json
import random
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from compile_helpers import make_items
from secrets_corpus import all_decoys, all_planted, decoys, fake_secrets, in_context, write_corpus

from dataset_builder.assemble import Assembler, completion_messages, prompt_messages, render_context
from dataset_builder.budget import parse_budgets
from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions
from dataset_builder.schema import ACCRecord
from dataset_builder.secrets import Redactor, Scanner, load_allowlist, scan_record
from dataset_builder.tokens import token_counter

SECRETS = fake_secrets()
BUDGETS = ["search=4k:8k", "swe=4k:8k", "sql=16k"]  # sql: the whole leaky table fits


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_kind_is_found_and_redacted_whole(name):
    value, kind = SECRETS[name]
    text = in_context(name, value)
    spans = Scanner().scan(text)
    assert [(s.type, text[s.start : s.end]) for s in spans] == [(kind, value)]
    clean = Redactor().redact(text, spans)
    assert value not in clean and "<" in clean
    assert Scanner().scan(clean) == ()  # placeholders are never found again


@pytest.mark.parametrize("name", sorted(decoys()))
def test_decoys_are_never_flagged(name):
    text = decoys()[name]
    assert Scanner().scan(text) == (), [text[s.start : s.end] for s in Scanner().scan(text)]


def test_github_token_is_redacted_whole_not_only_its_prefix():
    """detect-secrets' GitHub detector reports only the `ghp` prefix as the secret: the whole token must go."""
    value = SECRETS["github_token"][0]
    clean = Redactor().redact(f"token={value}", Scanner().scan(f"token={value}"))
    assert clean == "token=<SECRET:github_token>"


def test_jwt_signature_is_redacted_too():
    """detect-secrets' JWT pattern ends in a lazy `*?`: its match stops before the signature."""
    value = SECRETS["jwt"][0]
    clean = Redactor().redact(f"auth: {value};", Scanner().scan(f"auth: {value};"))
    assert clean == "auth: <SECRET:jwt>;" and value.rsplit(".", 1)[1] not in clean


def test_long_line_with_many_near_misses():
    """A 4 MB line of URLs, addresses and colons without spaces, with one secret at its end, is scanned whole."""
    rng = random.Random(0)
    noise = "".join(f"https://h{rng.randrange(999)}.io/a:b{rng.randrange(99)}@x=1;" for _ in range(80_000))
    text = noise + " " + SECRETS["hf_token"][0]
    spans = Scanner().scan(text)
    assert [(s.type, text[s.start : s.end]) for s in spans] == [("hf_token", SECRETS["hf_token"][0])]


def test_same_value_same_placeholder_and_distinct_values_numbered():
    a, b = fake_secrets(1)["email"][0], fake_secrets(2)["email"][0]
    text = f"from {a} to {b}, cc {a}"
    red = Redactor()
    assert red.redact(text, Scanner().scan(text)) == "from <EMAIL> to <EMAIL_2>, cc <EMAIL>"
    later = Redactor.continuing(["from <EMAIL> to <EMAIL_2>"])
    c = fake_secrets(3)["email"][0]
    assert later.redact(c, Scanner().scan(c)) == "<EMAIL_3>"  # a new value never reuses a placeholder in the record


def test_allowlist_keeps_known_public_values(tmp_path):
    ip = SECRETS["public_ip"][0]
    (tmp_path / "public.txt").write_text(f"# our public load balancer\n{ip}\n")
    text = in_context("public_ip", ip)
    assert Scanner(load_allowlist(tmp_path / "public.txt")).scan(text) == ()
    assert len(Scanner().scan(text)) == 1


# ---------------------------------------------------------------- one record


def leaky_record(tight: bool = False) -> ACCRecord:
    """An assembled search record with secrets in a gold piece, a distractor, the question, the answer and meta."""
    items = make_items(3, "search", gold_words=120)
    item = items[0]
    item.traj.question += f" Ask {SECRETS['email'][0]}."
    item.traj.meta["cwd"] = f"/home/{SECRETS['home_user'][0]}/runs"
    gold = item.evidence.gold[0]
    item.evidence.gold[0] = replace(
        gold, text=gold.text + "\n" + in_context("aws_access_key", SECRETS["aws_access_key"][0])
    )
    own = item.evidence.distractors[0]
    item.evidence.distractors[0] = replace(own, text=own.text + f"\nkey {SECRETS['aws_access_key'][0]} again")
    item.evidence.answer = f"mail {SECRETS['email'][0]}"
    counter = token_counter()
    rec = Assembler(counter=counter, budgets=parse_budgets(["search=2k:4k"])).assemble(items)[0]
    assert isinstance(rec, ACCRecord)
    if tight:  # every token of the budget used: placeholders longer than their values must push a distractor out
        rec.budget = rec.n_tokens
        rec.pieces = [replace(p, text=p.text + "\n/home/al/x /home/bo/y") if p.is_distractor else p for p in rec.pieces]
        rec.context = render_context(rec.pieces)
        rec.prompt = prompt_messages(rec.domain, rec.question, rec.context)
        rec.n_tokens = counter.count(rec.context)
        rec.budget = rec.n_tokens
    return rec


def test_scan_record_redacts_every_field_and_keeps_the_record_consistent():
    rec = leaky_record()
    counter = token_counter()
    out = scan_record(rec, "redact", counter)
    red = out.record
    blob = json.dumps(red.to_row())
    for name in ("email", "aws_access_key", "home_user"):
        assert SECRETS[name][0] not in blob, name
    assert "<SECRET:aws_access_key>" in red.context and "<EMAIL>" in red.question and red.answer == "mail <EMAIL>"
    assert json.loads(red.meta)["trajectory"]["cwd"] == "/home/<USER>/runs"
    # the same key in a gold piece and in a distractor: one placeholder; gold pieces stay gold, in place
    assert [p.is_distractor for p in red.pieces] == [p.is_distractor for p in rec.pieces]
    assert red.context == render_context(red.pieces) and red.prompt == prompt_messages(
        "search", red.question, red.context
    )
    assert red.n_tokens == counter.count(red.context) <= red.budget
    assert [p.n_tokens for p in red.pieces] == [
        p.n_tokens for p in Assembler(counter=counter).with_token_counts(red.pieces)
    ]
    meta = json.loads(red.meta)
    assert meta["n_tokens"] == red.n_tokens and meta["secrets"]["redacted"] == {
        "aws_access_key": 2,
        "email": 2,
        "home_user": 1,
    }
    # findings: where and what, never the value
    fields = Counter((f.field.split("[")[0].split(".")[0], f.type) for f in out.findings)
    assert (
        fields[("question", "email")] == 1 and fields[("answer", "email")] == 1 and fields[("meta", "home_user")] == 1
    )
    assert not any(SECRETS[n][0] in json.dumps([f.to_dict() for f in out.findings]) for n in SECRETS)
    assert scan_record(red, "redact", counter).findings == []  # a redacted record scans clean


def test_placeholders_longer_than_their_values_never_break_the_budget():
    rec = leaky_record(tight=True)
    counter = token_counter()
    red = scan_record(rec, "redact", counter).record
    assert red.n_tokens == counter.count(red.context) <= red.budget
    assert sum(not p.is_distractor for p in red.pieces) == sum(not p.is_distractor for p in rec.pieces)
    assert json.loads(red.meta)["secrets"]["distractors_dropped"] >= 1


def test_drop_and_off_policies():
    rec = leaky_record()
    dropped = scan_record(rec, "drop", token_counter(), origin="runs.jsonl:1")
    assert dropped.record is None and dropped.reject.stage == "secrets" and dropped.reject.origin == "runs.jsonl:1"
    assert (
        dropped.reject.reason == "credentials or personal data found (--secrets drop): aws_access_key, email, home_user"
    )
    off = scan_record(rec, "off", token_counter())
    assert off.record is rec and off.findings == []
    with pytest.raises(ValueError, match="unknown secrets policy"):
        scan_record(rec, "maybe")


def test_hand_edited_context_is_scanned_as_its_own_text():
    rec = leaky_record()
    rec.context += "\nappended by hand: " + SECRETS["stripe_key"][0]
    out = scan_record(rec, "redact", token_counter())
    assert SECRETS["stripe_key"][0] not in out.record.context
    assert any(f.field == "context" and f.type == "stripe_key" for f in out.findings)


# ---------------------------------------------------------------- a whole compile


def output_texts(out: Path) -> dict[str, str]:
    """Every file of the output folder as text (parquet: its rows as JSON)."""
    texts = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            texts[str(path)] = json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False)
        else:
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return texts


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaky")
    corpus = write_corpus(root)
    result = compile_trajectories(
        [corpus["inputs"]],
        root / "out",
        budgets=BUDGETS,
        domain_options=DomainOptions(db_dir=corpus["db_dir"]),
        progress=False,
    )
    return root, corpus, result


def test_compile_leaves_none_of_the_planted_values_in_the_output(leaky):
    root, _, result = leaky
    out = root / "out"
    assert {r.domain for r in result.records} == {"search", "swe", "sql"} and result.balanced
    texts = output_texts(out)
    assert {"README.md", "stats.json", "rejects.jsonl", "secrets.jsonl"} <= {Path(p).name for p in texts}
    for key, value in all_planted().items():
        leaks = [p for p, t in texts.items() if value in t or json.dumps(value)[1:-1] in t]
        assert not leaks, (key, leaks)
    everything = "\n".join(texts.values())
    assert [d for d in all_decoys() if d not in everything] == []  # SHAs, UUIDs, checksums intact
    stats = json.loads((out / "stats.json").read_text())["secrets"]
    assert stats["policy"] == "redact" and stats["n_records_with_findings"] == len(result.records)
    assert set(stats["by_domain"]) == {"search", "swe", "sql"}
    for domain in ("search", "swe", "sql"):  # every kind planted in a domain was found there
        kinds = {t for _, t in fake_secrets({"search": 1, "swe": 2, "sql": 3}[domain]).values()}
        assert kinds <= set(stats["by_domain"][domain]), (domain, kinds - set(stats["by_domain"][domain]))
    card = (out / "README.md").read_text()
    assert "## Credentials and personal data" in card and f"{stats['n_findings']} findings in" in card
    assert "| aws_access_key |" in card


def test_secrets_jsonl_names_places_never_values(leaky):
    root, _, result = leaky
    rows = [json.loads(line) for line in (root / "out" / "secrets.jsonl").read_text().splitlines()]
    assert rows and all(set(r) == {"record_id", "domain", "field", "type", "offset"} for r in rows)
    ids = {r.id for r in result.records}
    assert {r["record_id"] for r in rows} <= ids
    by_field = Counter(re.sub(r"\[\d+\]", "[]", r["field"]).split(".")[0] for r in rows)
    assert by_field["question"] == len(result.records) and by_field["pieces[]"] > 0
    stats = json.loads((root / "out" / "stats.json").read_text())["secrets"]
    assert len(rows) == stats["n_findings"]


def test_records_stay_consistent_after_redaction(leaky):
    _, _, result = leaky
    counter = token_counter()
    for rec in result.records:
        assert rec.context == render_context(rec.pieces) and rec.n_tokens == counter.count(rec.context) <= rec.budget
        assert rec.prompt == prompt_messages(rec.domain, rec.question, rec.context)
        gold = [p for p in rec.pieces if not p.is_distractor]
        assert gold and all(p.text in rec.context for p in gold)
        meta = json.loads(rec.meta)
        assert meta["row_tokens"] + 0 >= rec.n_tokens and meta["secrets"]["redacted"]


def test_drop_policy_turns_leaky_records_into_rejects(leaky, tmp_path):
    _, corpus, _ = leaky
    result = compile_trajectories(
        [corpus["inputs"]], tmp_path / "out", budgets=BUDGETS, domain_options=DomainOptions(db_dir=corpus["db_dir"]),
        progress=False, secrets="drop",
    )  # fmt: skip
    assert result.records == [] and result.balanced
    assert {r.stage for r in result.rejects} == {"secrets"}
    assert all(r.reason.startswith("credentials or personal data found (--secrets drop): ") for r in result.rejects)
    assert "aws_access_key" in result.rejects[0].reason
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["secrets"]["n_records_dropped"] == len(result.rejects) == stats["n_rejected"]


def test_off_policy_is_explicit_and_in_the_card(leaky, tmp_path, caplog):
    _, corpus, _ = leaky
    with caplog.at_level("WARNING", logger="acc"):
        result = compile_trajectories(
            [corpus["inputs"]], tmp_path / "out", budgets=BUDGETS,
            domain_options=DomainOptions(db_dir=corpus["db_dir"]), progress=False, secrets="off",
        )  # fmt: skip
    assert "scan was turned off" in caplog.text
    assert any(SECRETS_IN(rec) for rec in result.records)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Not scanned: this dataset was compiled with `--secrets off`." in card
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["settings"]["secrets"] == "off"
    assert not (tmp_path / "out" / "secrets.jsonl").exists()


def SECRETS_IN(rec: ACCRecord) -> bool:
    blob = json.dumps(rec.to_row())
    return any(v in blob for v in all_planted().values())


def test_cli_flags(leaky, tmp_path, capsys):
    from acc_hf.cli import main

    _, corpus, _ = leaky
    (tmp_path / "public.txt").write_text(all_planted()["sql/public_ip"] + "\n")
    args = ["compile", str(corpus["inputs"]), "--out", str(tmp_path / "out"), "--db-dir", str(corpus["db_dir"])]
    args += ["--no-progress", *[f"--budget={b}" for b in BUDGETS]]
    assert main([*args, "--secrets-allowlist", str(tmp_path / "public.txt")]) == 0
    printed = capsys.readouterr().out
    assert "secrets (redact): " in printed and "secrets.jsonl (local, never pushed)" in printed
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["secrets"]["allowlist"] == "public.txt" and "public_ip" not in stats["secrets"]["by_domain"]["sql"]
    assert "--secrets-allowlist public.txt" in stats["settings"]["command"]
    assert main([*args, "--secrets-allowlist", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_traces_redact_teacher_outputs():
    """What a teacher writes is scanned before it enters the record (`acc traces`)."""
    from dataset_builder.secrets.records import redact_trace_row

    rec = scan_record(leaky_record(), "redact", token_counter()).record
    row = rec.to_row()
    row["reasoning"] = f"The key is {SECRETS['github_token'][0]} and the user is {fake_secrets(9)['email'][0]}"
    row["answer"] = SECRETS["github_token"][0]
    row["completion"] = completion_messages(row["reasoning"], row["answer"])  # as `acc traces` keeps a trace
    meta = json.loads(row["meta"])
    meta["traces"] = {"why": f"sample 0: expected x, got {SECRETS['github_token'][0]}"}
    found = redact_trace_row(row, meta)
    assert SECRETS["github_token"][0] not in json.dumps([row, meta])
    assert row["answer"] == "<SECRET:github_token>" and "<EMAIL_2>" in row["reasoning"]  # <EMAIL> is taken
    assert row["completion"][0]["content"].endswith("<SECRET:github_token>")
    assert found == {"github_token": 3, "email": 1}


# ---------------------------------------------------------------- false positives on real data

# Findings of the scanner on the raw text of the real fixtures and the bundled samples (every file, as read), by
# file and type, each judged. All are real personal data (people's emails in web pages, git logs and setup.py; user
# names in tracebacks and paths from issue reports), except the false positives marked below. Zero findings are
# git SHAs, UUIDs, checksums, base64 data or hashes in diffs.
REAL_FINDINGS = {
    ("gpt-4o__code__simpleqa__2025-07-24.jsonl", "email"): 2,
    ("gpt-4o__tool-calling__gaia__2025-07-24.jsonl", "email"): 6,
    ("marshmallow-code__marshmallow-1867.traj", "email"): 9,
    ("sample_raw.json", "email"): 11,
    ("swe-agent__test-repo-i1.traj", "email"): 1,
    ("6e44b9__sweagenttestrepo-1c2844.traj", "home_user"): 1,
    ("function_calling_simple.traj", "home_user"): 1,
    ("output.jsonl", "home_user"): 5,
    ("pvlib__pvlib-python-1072.traj.json", "home_user"): 2,
    ("sample_sft_openhands.json", "home_user"): 10,  # false positives: `/home/bob/Documents/...` in a docs example
    ("str_replace_anthropic_demo.yaml", "home_user"): 4,
    ("swe-agent__test-repo-i1.traj", "home_user"): 1,
}
FALSE_POSITIVES = {("sample_sft_openhands.json", "home_user"): 10}
HASH_LIKE = re.compile(r"[0-9a-fA-F]{7,}|[0-9a-f]{8}-[0-9a-f]{4}-|sha\d+|[A-Za-z0-9+/]{40,}={0,2}")


def test_false_positives_on_real_fixtures_and_samples(real):
    samples = Path(__file__).resolve().parents[2] / "dataset_builder" / "samples"
    scanner = Scanner()
    found: Counter = Counter()
    hash_like = []
    for root in (real, samples):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            for span in scanner.scan(text):
                found[(path.name, span.type)] += 1
                if span.type not in ("email", "home_user") or HASH_LIKE.fullmatch(text[span.start : span.end]):
                    hash_like.append((path.name, span.type))
    assert hash_like == []  # no SHA, UUID, checksum or other secret-shaped finding in real data
    assert dict(found) == REAL_FINDINGS
    assert all(found[k] == n for k, n in FALSE_POSITIVES.items())
