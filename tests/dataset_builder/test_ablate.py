"""`acc ablate`: the bundled samples compiled for real, then ablated with every spec: gold kept, budgets respected,
order, domain filter, citations, accounting, determinism, cards, Hub sources (network edge mocked), bad inputs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from acc_hf.cli import main
from dataset_builder import ablate
from dataset_builder.ablate import AblationError, ablate_dataset, ablate_record, parse_ablation, remap_citations
from dataset_builder.assemble import completion_messages, render_context
from dataset_builder.load import load_acc_split
from dataset_builder.schema import DOMAINS, ACCRecord
from dataset_builder.tokens import token_counter
from dataset_builder.writer import arrow_schema

COUNTER = token_counter()
DOC = re.compile(r'<document index="(\d+)" kind="[^"]*" title="([^"]*)">\n')
SPECS = [
    "no-distractors",
    "domain=swe",
    "domain=search,sql",
    "budget-scale=0.5",
    "budget-cap=2048",
    "order=gold-first",
    "order=gold-last",
    "order=gold-middle",
]


def citing_reasoning(rec: dict) -> str:
    """What a teacher that read the numbered context writes: it cites gold and distractor documents by number."""
    gold = [k for k, p in enumerate(rec["pieces"], start=1) if not p["is_distractor"]]
    other = [k for k, p in enumerate(rec["pieces"], start=1) if p["is_distractor"]]
    text = f"Document {gold[0]} answers the question"
    if other:
        text += f"; documents {other[0]} and {other[-1]} are about something else"
    return text + f'. The passage in <document index="{gold[-1]}"> agrees.'


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The samples compiled with small budgets and a held-out split; the search records get citing traces."""
    from dataset_builder.compile import compile_trajectories
    from dataset_builder.compile_cli import sample_inputs
    from dataset_builder.domains import DomainOptions

    out = tmp_path_factory.mktemp("abl") / "acc_src"
    dirs, res = sample_inputs()
    opts = DomainOptions(repos_dir=res["repos_dir"], db_dir=res["db_dir"], page_cache_dir=res["page_cache_dir"])
    budgets = {"search": "2k:4k", "sql": "4k:8k", "swe": "2k"}
    compile_trajectories(dirs, out, budgets=budgets, domain_options=opts, test_size=0.3, progress=False)
    for path in sorted(out.glob("data/search/*.parquet")):
        rows = pq.read_table(path).to_pylist()
        for rec in rows:
            rec["reasoning"] = citing_reasoning(rec)
            rec["completion"] = completion_messages(rec["reasoning"], rec["answer"])
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), path)
    return out


def rows_of(folder: Path) -> list[dict]:
    return [r for f in sorted(folder.glob("data/*/*.parquet")) for r in pq.read_table(f).to_pylist()]


def split_of_file(path: Path) -> str:
    return path.name.split("-", 1)[0]


def rows_by_id(folder: Path) -> dict[str, tuple[dict, str]]:
    return {
        r["id"]: (r, split_of_file(f))
        for f in sorted(folder.glob("data/*/*.parquet"))
        for r in pq.read_table(f).to_pylist()
    }


def gold_texts(row: dict) -> list[str]:
    return [p["text"] for p in row["pieces"] if not p["is_distractor"]]


@pytest.fixture(scope="module")
def arms(source, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("arms")
    return {spec: (ablate_dataset(source, root / spec, spec), root / spec)[1] for spec in SPECS}


def test_source_has_the_shape_the_tests_need(source):
    rows = rows_of(source)
    assert {r["domain"] for r in rows} == set(DOMAINS)
    assert {split_of_file(f) for f in source.glob("data/*/*.parquet")} == {"train", "test"}
    assert sum(p["is_distractor"] for r in rows for p in r["pieces"]) > 50


@pytest.mark.parametrize("spec", SPECS)
def test_every_gold_piece_kept_budgets_respected_and_every_input_accounted(source, arms, spec):
    src = rows_by_id(source)
    out = arms[spec]
    stats = json.loads((out / "stats.json").read_text())
    ablation = parse_ablation(spec)
    assert stats["settings"]["ablation"]["spec"] == ablation.spec
    records = rows_by_id(out)
    assert records
    for rid, (row, split) in records.items():
        meta = json.loads(row["meta"])
        origin, src_split = src[meta["ablation"]["from"]]
        assert rid != origin["id"] and meta["ablation"]["spec"] == ablation.spec
        assert split == src_split  # the record stays in its source split
        # every gold piece, whole, in the source's relative order
        assert gold_texts(row) == gold_texts(origin)
        assert all(t in row["context"] for t in gold_texts(origin))
        # never over budget (the tokenizer itself), the context is exactly the pieces numbered 1..n
        assert COUNTER.count(row["context"]) == row["n_tokens"] <= row["budget"]
        pieces = [ACCRecord.from_row(row).pieces][0]
        assert row["context"] == render_context(pieces)
        assert [int(m.group(1)) for m in DOC.finditer(row["context"])] == list(range(1, len(pieces) + 1))
        assert row["context"] in row["prompt"][0]["content"] and row["question"] == origin["question"]
        assert (row["answer"], row["gold"], row["verified"]) == (origin["answer"], origin["gold"], origin["verified"])
        # the documents are the source's, in source numbering as meta says
        titles = [p["title"] for p in origin["pieces"]]
        assert [titles[i - 1] for i in meta["ablation"]["source_indices"]] == [p.title for p in pieces]
        assert meta["n_tokens"] == row["n_tokens"] and meta["n_gold"] == len(gold_texts(row))
        budget = ablation.budget_of(origin["budget"])
        assert row["budget"] == (origin["budget"] if budget is None else budget)
        if ablation.kind in ("domain", "order"):  # nothing is dropped
            assert sorted(p["text"] for p in row["pieces"]) == sorted(p["text"] for p in origin["pieces"])
    # inputs = records + rejects, per domain; inputs are the source's records of the domains read
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert stats["balanced"] and stats["n_in"] == stats["n_records"] + stats["n_rejected"] == len(records) + len(
        rejects
    )
    for domain in ablation.domains:
        n_src = sum(1 for r, _ in src.values() if r["domain"] == domain)
        assert stats["domains"][domain]["n_in"] == n_src


def test_no_distractors_and_budget_ablations_drop_only_distractors_and_reject_with_numbers(source, arms):
    src = rows_by_id(source)
    gold_only = rows_of(arms["no-distractors"])
    assert len(gold_only) == len(src) and not any(p["is_distractor"] for r in gold_only for p in r["pieces"])
    half = arms["budget-scale=0.5"]
    kept = rows_by_id(half)
    dropped = sum(
        len(src[json.loads(r["meta"])["ablation"]["from"]][0]["pieces"]) - len(r["pieces"]) for r, _ in kept.values()
    )
    assert dropped > 0  # budgets halved: distractors went
    rejects = [json.loads(line) for line in (half / "rejects.jsonl").read_text().splitlines()]
    assert rejects, "the sql gold tables do not fit half of the small budgets"
    for rej in rejects:
        m = re.fullmatch(
            r"gold evidence alone is (\d+) tokens, over the budget (\d+) \(budget (\d+) x 0\.5\); the evidence is never cut",
            rej["reason"],
        )
        assert m and int(m.group(1)) > int(m.group(2)) == int(m.group(3)) // 2, rej
        rid = re.search(r"\(id (\w+)\)", rej["origin"]).group(1)
        assert rej["origin"].startswith(f"data/{rej['domain']}/") and rid in src
        assert COUNTER.count(
            render_context([p for p in ACCRecord.from_row(src[rid][0]).pieces if not p.is_distractor])
        ) == int(m.group(1))
    card = (half / "README.md").read_text()
    assert "gold evidence alone is N tokens, over the budget N" in card  # the reason class, in the card


@pytest.mark.parametrize("order", ["gold-first", "gold-last", "gold-middle"])
def test_order_ablations_place_gold_and_keep_distractor_order(source, arms, order):
    src = rows_by_id(source)
    for row, _ in rows_by_id(arms[f"order={order}"]).values():
        origin = src[json.loads(row["meta"])["ablation"]["from"]][0]
        flags = [p["is_distractor"] for p in row["pieces"]]
        n_gold, n_dis = flags.count(False), flags.count(True)
        start = {"gold-first": 0, "gold-last": n_dis, "gold-middle": n_dis // 2}[order]
        assert flags == [True] * start + [False] * n_gold + [True] * (n_dis - start)
        distractors = [p["title"] for p in row["pieces"] if p["is_distractor"]]
        assert distractors == [p["title"] for p in origin["pieces"] if p["is_distractor"]]


def test_domain_filter_configs_and_load_dataset_per_config(arms, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    swe = arms["domain=swe"]
    assert sorted(p.name for p in (swe / "data").iterdir()) == ["swe"]
    meta = yaml.safe_load((swe / "README.md").read_text().split("---\n")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["all", "swe"]
    two = arms["domain=search,sql"]
    assert sorted(p.name for p in (two / "data").iterdir()) == ["search", "sql"]
    for out in (swe, two, arms["no-distractors"]):
        stats = json.loads((out / "stats.json").read_text())
        card = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
        for cfg in card["configs"]:
            for entry in cfg["data_files"]:
                ds = load_acc_split(str(out), cfg["config_name"], entry["split"])
                again = load_dataset(str(out), cfg["config_name"], split=entry["split"], cache_dir=str(tmp_path / "c"))
                assert len(ds) == len(again) > 0
                if cfg["config_name"] != "all":
                    assert set(ds["domain"]) == {cfg["config_name"]}
                    assert len(ds) == stats["domains"][cfg["config_name"]]["splits"][entry["split"]]["n_records"]


def test_the_card_names_the_ablation_and_the_source(source, arms):
    sha = __import__("hashlib").sha256((source / "stats.json").read_bytes()).hexdigest()
    for spec, out in arms.items():
        card = (out / "README.md").read_text()
        canonical = parse_ablation(spec).spec
        assert f"## Ablation: `{canonical}`" in card and parse_ablation(spec).describe() in card
        assert str(source) in card and sha in card
        stats = json.loads((out / "stats.json").read_text())
        assert stats["settings"]["ablation"]["source_stats_sha256"] == sha
        assert (
            stats["settings"]["tokenizer"] == json.loads((source / "stats.json").read_text())["settings"]["tokenizer"]
        )


def test_deterministic_byte_identical(source, tmp_path):
    for spec in ("budget-scale=0.5", "order=gold-middle"):
        a, b = tmp_path / "a" / spec, tmp_path / "b" / spec
        ablate_dataset(source, a, spec)
        ablate_dataset(source, b, spec)
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "README.md")
        assert any(str(f).endswith(".parquet") for f in files)
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != "README.md")
        for rel in files:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        # the cards differ only by the folder they name
        assert (a / "README.md").read_text().replace(str(a), "X") == (b / "README.md").read_text().replace(str(b), "X")


def test_citations_follow_their_documents(source, arms):
    """The search traces cite a gold document and two distractors by number: after gold-last every number points at
    the same document; without distractors the distractor citations are stale (counted, or rejected on request)."""
    src = rows_by_id(source)

    def cited_titles(row):
        titles = {k: p["title"] for k, p in enumerate(row["pieces"], start=1)}
        numbers = [int(n) for n in re.findall(r"(?:[Dd]ocuments?|index=\")\s*(\d+)", row["reasoning"])]
        numbers += [int(n) for n in re.findall(r"documents \d+ and (\d+)", row["reasoning"])]
        return [titles.get(n) for n in numbers]

    moved = 0
    for row, _ in rows_by_id(arms["order=gold-last"]).values():
        if row["domain"] != "search":
            continue
        origin = src[json.loads(row["meta"])["ablation"]["from"]][0]
        assert cited_titles(row) == cited_titles(origin) and None not in cited_titles(row)
        assert row["completion"] == completion_messages(row["reasoning"], row["answer"])
        moved += row["reasoning"] != origin["reasoning"]
        assert json.loads(row["meta"])["ablation"]["citations"]["stale"] == []
    assert moved > 0
    stats = json.loads((arms["no-distractors"] / "stats.json").read_text())
    n_search = stats["domains"]["search"]["n_records"]
    assert stats["settings"]["ablation"]["domains"]["search"]["citations_stale"] == n_search > 0
    for row, _ in rows_by_id(arms["no-distractors"]).values():
        if row["domain"] == "search":
            origin = src[json.loads(row["meta"])["ablation"]["from"]][0]
            assert cited_titles(row)[0] == cited_titles(origin)[0]  # the gold citation still points at the gold page
            assert json.loads(row["meta"])["ablation"]["citations"]["stale"]


def test_stale_citations_reject(source, tmp_path):
    out = tmp_path / "strict"
    assert (
        main(["ablate", str(source), "--out", str(out), "--ablation", "no-distractors", "--stale-citations", "reject"])
        == 0
    )
    stats = json.loads((out / "stats.json").read_text())
    assert stats["domains"]["search"]["n_records"] == 0 and stats["domains"]["search"]["n_rejected"] > 0
    assert stats["domains"]["sql"]["n_records"] > 0  # no citations there: kept
    reasons = [json.loads(line)["reason"] for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert all(
        re.fullmatch(r"its reasoning cites document\(s\) \[[\d, ]+\], which no-distractors removed", r) for r in reasons
    )


def test_remap_citations_patterns():
    text = 'Document 3 and doc #1 say so; documents 3, 7 and 2 do not; see <document index="7">; 7 apples.'
    out, changed, stale = remap_citations(text, {3: 1, 1: 2, 2: 3})
    assert out == 'Document 1 and doc #2 say so; documents 1, 7 and 3 do not; see <document index="7">; 7 apples.'
    assert changed == 4 and stale == [7]


def test_refit_records_cite_their_refit_numbering(source):
    """A record re-fitted by `acc traces` keeps its document numbers with gaps (meta.refit.indices); ablating it
    renumbers 1..n and moves the trace's citations along."""
    from dataset_builder.traces import refit

    row = next(
        r for r in rows_of(source) if r["domain"] == "search" and sum(p["is_distractor"] for p in r["pieces"]) > 4
    )
    contract = refit.LengthContract(json.loads(row["meta"])["row_tokens"] - 200, COUNTER)
    update = refit.fit(row, row["completion"][0]["content"], contract)
    meta = json.loads(row["meta"])
    refit.apply(row, meta, update)
    row["meta"] = json.dumps(meta)
    indices = meta["refit"]["indices"]
    assert indices != list(range(1, len(indices) + 1))  # gaps
    gold_index = next(i for i, p in zip(indices, row["pieces"]) if not p["is_distractor"])
    row["reasoning"] = f"Document {gold_index} answers it."
    new = ablate_record(ACCRecord.from_row(row), parse_ablation("order=gold-first"))
    assert new.reasoning == "Document 1 answers it." and not new.pieces[0].is_distractor
    gold_title = next(p["title"] for i, p in zip(indices, row["pieces"]) if i == gold_index)
    assert new.pieces[0].title == gold_title


def test_a_malformed_row_is_a_reject_not_a_crash(source, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    path = sorted(broken.glob("data/search/train-*.parquet"))[0]
    rows = pq.read_table(path).to_pylist()
    rows[1]["meta"] = "{not json"
    rows[2]["pieces"] = [dict(p, is_distractor=True) for p in rows[2]["pieces"]]
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), path)
    (broken / "data" / "swe" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not parquet at all")
    out = tmp_path / "out"
    stats = ablate_dataset(broken, out, "order=gold-first")
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    by_origin = {r["origin"].split(" ")[0]: r["reason"] for r in rejects}
    rel = path.relative_to(broken)
    assert by_origin[f"{rel}#1"].startswith("malformed record: meta is not JSON")
    assert by_origin[f"{rel}#2"].startswith("malformed record: no gold piece")
    assert by_origin["data/swe/train-00000-of-00001.parquet#0"].startswith("unreadable shard from row 0 on")
    assert stats["balanced"] and stats["n_in"] == stats["n_records"] + len(rejects)
    assert stats["n_records"] == len(rows_of(source)) - 2 - 2  # two bad search rows, two swe train records unread


def test_hub_source_reads_through_the_same_path(source, arms, tmp_path, monkeypatch):
    """A Hub dataset (a local folder laid out like the repository behind the mocked HfFileSystem) gives the same
    shards as the local folder."""
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    from dataset_builder.readers import hub

    repo = tmp_path / "hub" / "datasets" / "my-org" / "acc-data"
    shutil.copytree(source, repo, ignore=shutil.ignore_patterns("secrets.jsonl"))
    calls = []

    def fake_hub():
        calls.append(1)
        return DirFileSystem(path=str(tmp_path / "hub"), fs=LocalFileSystem())

    monkeypatch.setattr(hub, "hub_filesystem", fake_hub)
    local = arms["order=gold-last"]
    for name in ("hf://datasets/my-org/acc-data", "my-org/acc-data"):
        out = tmp_path / name.replace("/", "_").replace(":", "")
        stats = ablate_dataset(name, out, "order=gold-last")
        assert stats["settings"]["ablation"]["source"] == "my-org/acc-data"
        shards = sorted(p.relative_to(out) for p in out.glob("data/*/*.parquet"))
        assert shards == sorted(p.relative_to(local) for p in local.glob("data/*/*.parquet"))
        assert all((out / s).read_bytes() == (local / s).read_bytes() for s in shards)
        assert "**my-org/acc-data**" in (out / "README.md").read_text()
    assert calls
    with pytest.raises(AblationError, match="no dataset my-org/missing on the Hub"):
        ablate_dataset("hf://datasets/my-org/missing", tmp_path / "x", "no-distractors")
    with pytest.raises(AblationError, match="no folder my-org/missing here, and no dataset"):
        ablate_dataset("my-org/missing", tmp_path / "x", "no-distractors")


def test_bad_inputs_give_clear_errors(source, tmp_path, capsys):
    with pytest.raises(AblationError, match="no such folder"):
        ablate_dataset(tmp_path / "nope" / "acc_data", tmp_path / "o", "no-distractors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AblationError, match="not a compiled ACC dataset \\(no stats.json"):
        ablate_dataset(tmp_path / "empty", tmp_path / "o", "no-distractors")
    with pytest.raises(AblationError, match="is the source dataset"):
        ablate_dataset(source, source, "no-distractors")
    for bad, why in [
        ("shuffle", "unknown ablation"),
        ("domain=web", "unknown domain"),
        ("budget-scale=2", "must be in \\(0, 1\\]"),
        ("budget-cap=lots", "not a token count"),
        ("order=original", "no order=original"),
        ("no-distractors=1", "takes no value"),
    ]:
        with pytest.raises(AblationError, match=why):
            parse_ablation(bad)
    assert main(["ablate", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--ablation", "no-distractors"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["ablate", str(source), "--out", str(tmp_path / "o"), "--ablation", "sideways"]) == 2
    assert "unknown ablation 'sideways'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_help_lists_every_ablation_and_prints_the_accounting(source, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["ablate", "--help"])
    text = capsys.readouterr().out
    for syntax, _ in ablate.ABLATIONS.values():
        assert syntax in text
    out = tmp_path / "cap"
    assert main(["ablate", str(source), "--out", str(out), "--ablation", "budget-cap=1k"]) == 0
    printed = capsys.readouterr().out
    assert "ablation budget-cap=1024" in printed
    for line in printed.splitlines()[2:]:
        if line.split() and line.split()[0] in DOMAINS:
            name, n_in, n_rec, n_rej = line.split()[:4]
            assert int(n_in) == int(n_rec) + int(n_rej)
    assert f"acc ablate {source} --out {out} --ablation budget-cap=1k" in (out / "README.md").read_text()


def test_acc_train_trains_on_an_ablation_unchanged(arms, tmp_path, monkeypatch):
    pytest.importorskip("trl")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny_moe_cpu.yaml"
    out = tmp_path / "run"
    code = main(
        [
            "train", str(recipe), "--dataset_path", str(arms["no-distractors"]), "--output_dir", str(out),
            "--only_verified", "false", "--max_steps", "2", "--logging_steps", "1", "--save_strategy", "no",
        ]
    )  # fmt: skip
    assert code == 0
    assert (out / "model.safetensors").is_file()
