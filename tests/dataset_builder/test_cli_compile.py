"""`acc compile` end to end: the bundled samples -> parquet + card that `load_dataset` reads per config."""

import json

import pytest
import yaml

from acc_hf.cli import main
from dataset_builder import compile_cli


@pytest.fixture(scope="module")
def samples_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("acc") / "acc_samples"
    rc = main(["compile", "--samples", "--out", str(out), "--no-progress", "--budget", "swe=4k:8k"])
    assert rc == 0
    return out


def test_samples_compile_and_load_per_config(samples_out, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    text = (samples_out / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    stats = json.loads((samples_out / "stats.json").read_text())
    configs = [c["config_name"] for c in meta["configs"]]
    with_data = [d for d in ("search", "swe", "sql") if stats["domains"].get(d, {}).get("n_records")]
    assert configs == ["all", *with_data] and len(with_data) >= 2
    assert stats["balanced"] and stats["n_in"] == stats["n_records"] + stats["n_rejected"]
    total = 0
    for cfg in with_data:
        ds = load_dataset(str(samples_out), cfg, split="train", cache_dir=str(tmp_path / "cache"))
        assert len(ds) == stats["domains"][cfg]["n_records"] and set(ds["domain"]) == {cfg}
        assert all(n <= b for n, b in zip(ds["n_tokens"], ds["budget"]))
        total += len(ds)
    everything = load_dataset(str(samples_out), "all", split="train", cache_dir=str(tmp_path / "cache"))
    assert len(everything) == total == stats["n_records"]
    swe_budgets = [r["budget"] for r in everything if r["domain"] == "swe"]
    assert all(4096 <= b for b in swe_budgets)  # the --budget override was used (moved up only if gold needed it)
    assert f"acc compile --out {samples_out} --samples --budget swe=4k:8k" in text


def test_summary_table_accounts_for_every_input(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["compile", "--samples", "--out", str(out), "--no-progress", "--domain", "search"]) == 0
    printed = capsys.readouterr().out
    assert "inputs = records + rejects" in printed
    header, rule, *rows = printed.splitlines()
    assert header.split()[:5] == ["domain", "inputs", "records", "rejects", "tokens"]
    for row in rows[: rows.index(next(r for r in rows if r.startswith("---")))]:
        name, n_in, n_rec, n_rej = row.split()[:4]
        assert int(n_in) == int(n_rec) + int(n_rej), row
    stats = json.loads((out / "stats.json").read_text())
    assert stats["domains"]["search"]["n_records"] > 0
    assert stats["domains"]["sql"]["n_records"] == 0
    assert stats["domains"]["sql"]["reject_reasons"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--budget", "sql=1k"], "must satisfy 2048 <= low"),
        (["--budget", "video=8k"], "unknown domain 'video'"),
        (["--domain", "video"], "unknown domain video"),
        (["--format", "nope"], "unknown format 'nope'"),
        (["--db-url", "chinook"], "expected DB_ID=URL"),
        (["--repos", "/nonexistent/repos"], "--repos /nonexistent/repos: not a directory"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["/nonexistent/trajectories.jsonl"], "input not found"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv, message):
    assert main(["compile", *argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_nothing_readable_exits_1(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "blob.bin").write_bytes(b"\x00\xff" * 64)
    assert main(["compile", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "nothing readable" in captured.err and "binary data" in captured.out
    assert (tmp_path / "o" / "rejects.jsonl").read_text().count("\n") == 1


def test_missing_samples_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compile_cli, "SAMPLES_DIR", tmp_path / "no-samples")
    assert main(["compile", "--out", str(tmp_path / "o")]) == 2
    assert "bundled samples are missing" in capsys.readouterr().err


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--budget",
        "--num-proc",
        "--db-dir",
        "--db-url",
        "--repos",
        "--page-cache",
        "--samples",
        "--tokenizer",
    ):
        assert flag in out
    assert "records + rejects" in out


def test_test_size_holds_out_whole_questions_as_a_test_split(tmp_path, monkeypatch):
    """`--test-size`: a seeded share of each domain's questions becomes the `test` split of every config; no question
    is in both splits, the two splits add up to the records, and the split is the same in a second compile."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    out, again = tmp_path / "a", tmp_path / "b"
    for path in (out, again):
        assert main(["compile", "--samples", "--out", str(path), "--no-progress", "--test-size", "0.3"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["settings"]["test_size"] == 0.3
    loaded = {
        split: load_dataset(str(out), "all", split=split, cache_dir=str(tmp_path / "cache"))
        for split in ("train", "test")
    }
    assert len(loaded["train"]) + len(loaded["test"]) == stats["n_records"] and len(loaded["test"]) > 0
    assert not set(loaded["train"]["question"]) & set(loaded["test"]["question"])
    for s in stats["domains"].values():
        if s["n_records"]:
            assert sum(part["n_records"] for part in s["splits"].values()) == s["n_records"]
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert meta["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/*/train-*.parquet"},
        {"split": "test", "path": "data/*/test-*.parquet"},
    ]
    assert 'split="test"' in (out / "README.md").read_text()
    shards = sorted(p.relative_to(out) for p in out.glob("data/*/*.parquet"))
    assert shards == sorted(p.relative_to(again) for p in again.glob("data/*/*.parquet"))
    assert all((out / p).read_bytes() == (again / p).read_bytes() for p in shards)
    # compiling again without --test-size into the same directory leaves no stale test shards behind
    assert main(["compile", "--samples", "--out", str(out), "--no-progress"]) == 0
    assert not list(out.glob("data/*/test-*.parquet"))


def test_test_size_out_of_range_is_a_usage_error(tmp_path, capsys):
    assert main(["compile", "--samples", "--out", str(tmp_path / "o"), "--test-size", "1.5"]) == 2
    assert "test_size must be in [0, 1)" in capsys.readouterr().err
