"""acc push, with the Hub replaced at its edge (HfApi): everything up to the network call is real."""

import argparse
import re

import huggingface_hub
import pytest
from compile_helpers import make_result
from huggingface_hub.utils import filter_repo_objects

from dataset_builder import push
from dataset_builder.writer import write_dataset


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi: records the calls, and lists what upload_folder would send."""

    calls: list = []

    def __init__(self, token=None, **kwargs):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs, self.token))
        return f"https://huggingface.co/datasets/{repo_id}"

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", repo_id, kwargs, self.token))

    def upload_folder(self, *, repo_id, folder_path, allow_patterns=None, ignore_patterns=None, **kwargs):
        from pathlib import Path

        root = Path(folder_path)
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        sent = list(filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
        texts = {name: (root / name).read_text() for name in sent if name in push.TEXT_FILES}
        self.calls.append(("upload_folder", repo_id, dict(kwargs, files=sent, texts=texts), self.token))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/datasets/{repo_id}/commit/abc"})()


@pytest.fixture
def hub(monkeypatch):
    RecordingHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return RecordingHfApi.calls


@pytest.fixture
def dataset_dir(tmp_path):
    out = tmp_path / "acc_data"
    write_dataset(out, make_result())
    (out / "notes.txt").write_text("local notes, not for the Hub")
    (out / ".cache").mkdir()
    (out / ".cache" / "x.lock").write_text("")
    return out


def args(path, **kw):
    base = {"dir": str(path), "repo": "my-org/acc-data", "private": False, "revision": None, "token_env": None}
    base["message"] = None
    return argparse.Namespace(**{**base, **kw})


def test_push_creates_the_dataset_repo_and_uploads_the_dataset_files(hub, dataset_dir, capsys):
    assert push.run(args(dataset_dir, private=True)) == 0
    (create, repo, ckw, _), (upload, repo2, ukw, _) = hub
    assert (create, repo, repo2) == ("create_repo", "my-org/acc-data", "my-org/acc-data")
    assert ckw == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload == "upload_folder" and ukw["repo_type"] == "dataset" and ukw["revision"] is None
    assert ukw["files"] == [
        "README.md",
        "data/search/train-00000-of-00001.parquet",
        "data/sql/train-00000-of-00001.parquet",
        "plots/search_lengths.png",
        "plots/sql_lengths.png",
        "rejects.jsonl",
        "stats.json",
    ]
    assert push.SHARDS in ukw["delete_patterns"]  # stale shards on the Hub go in the same commit
    card = (dataset_dir / "README.md").read_text()
    assert 'ds = load_dataset("my-org/acc-data", "all", split="train")' in card
    assert "my-org/acc-data" in capsys.readouterr().out


def test_push_to_a_branch_with_a_token_from_the_environment(hub, dataset_dir, monkeypatch):
    monkeypatch.setenv("MY_HUB_TOKEN", "hf_test_token")
    assert push.run(args(dataset_dir, revision="v2", token_env="MY_HUB_TOKEN")) == 0
    names = [c[0] for c in hub]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert hub[1][2] == {"branch": "v2", "repo_type": "dataset", "exist_ok": True}
    assert hub[2][2]["revision"] == "v2"
    assert all(c[3] == "hf_test_token" for c in hub)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"repo": "no-slash"}, "--repo must be ORG/NAME"),
        ({"token_env": "UNSET_TOKEN_VAR"}, "UNSET_TOKEN_VAR: that environment variable is not set"),
    ],
)
def test_usage_errors(hub, dataset_dir, capsys, kw, message):
    assert push.run(args(dataset_dir, **kw)) == 2
    assert message in capsys.readouterr().err
    assert hub == []


def test_not_a_dataset_dir(hub, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert push.run(args(tmp_path / "empty")) == 2
    err = capsys.readouterr().err
    assert "README.md is missing" in err and "no parquet shards" in err
    assert hub == []


def test_cli_wires_push(hub, dataset_dir):
    from acc_hf.cli import main

    assert main(["push", str(dataset_dir), "--repo", "me/acc"]) == 0
    assert [c[0] for c in hub] == ["create_repo", "upload_folder"]


def test_what_goes_to_the_hub_names_no_local_path(hub, tmp_path, monkeypatch):
    """Compiled from absolute paths (the bundled samples, their database and repository), the uploaded card,
    stats.json and rejects.jsonl name no directory of this machine; the local copy keeps them for `acc traces`."""
    import json

    import pyarrow.parquet as pq

    from acc_hf.cli import main as acc
    from dataset_builder.compile_cli import SAMPLES_DIR

    monkeypatch.setenv("HOME", str(tmp_path))  # the home directory is replaced too
    out = tmp_path / "runs" / "acc_data"
    assert acc(["compile", "--samples", "--out", str(out), "--no-progress"]) == 0
    local = json.loads((out / "stats.json").read_text())["settings"]
    assert local["db_dir"] == str(SAMPLES_DIR.resolve() / "sql")

    assert push.run(args(out)) == 0
    texts = hub[-1][2]["texts"]
    assert set(texts) == {"README.md", "stats.json", "rejects.jsonl"}
    machine = (str(SAMPLES_DIR.resolve().parent), str(tmp_path))
    for name, text in texts.items():
        assert not any(p in text for p in machine), name
    settings = json.loads(texts["stats.json"])["settings"]
    assert settings["inputs"] == ["search", "sql", "swe"] and settings["db_dir"] == "sql"  # under the inputs' folder
    assert "--out <local>/acc_data" in settings["command"]
    origins = {json.loads(line)["origin"] for line in texts["rejects.jsonl"].splitlines()}
    assert "sql/ferries.sqlite" in origins and "swe/carrow-tides.bundle" in origins
    for shard in out.glob("data/*/*.parquet"):  # the records were written without local paths in the first place
        for meta in pq.read_table(shard, columns=["meta"]).column("meta").to_pylist():
            assert not json.loads(meta)["origin"].startswith("/") and str(SAMPLES_DIR) not in meta


def test_local_paths_are_replaced_as_whole_components():
    pairs = [("/data/run", ""), ("/home/me", "~")]
    text = '"/data/run/a.jsonl:3" "/data/runs/b.jsonl" "/data/run" "/home/me/x" "/home/mel"'
    assert push.without_local_paths(text, pairs) == '"a.jsonl:3" "/data/runs/b.jsonl" "" "~/x" "/home/mel"'


# ---------------------------------------------------------------- the pre-upload secret scan


def test_push_refuses_a_token_added_to_the_card_after_compile(hub, dataset_dir, capsys):
    """A token that reached the card after compile (here through stats.json's traces section, which the card
    renders) stops the push before any network call, naming the file and the type, never the value."""
    import json

    from secrets_corpus import fake_secrets

    token = fake_secrets(5)["hf_token"][0]
    stats = json.loads((dataset_dir / "stats.json").read_text())
    stats["traces"] = {"card_section": f"Traces were made with the key {token} on our server."}
    (dataset_dir / "stats.json").write_text(json.dumps(stats))
    assert push.run(args(dataset_dir)) == 3
    assert hub == []  # not even create_repo
    err = capsys.readouterr().err
    assert "nothing was uploaded" in err and token not in err
    assert re.search(r"README\.md row \d+, text: hf_token", err) and "stats.json, .traces.card_section: hf_token" in err
    assert "--allow-secrets" in err


def test_push_names_the_shard_row_and_field(hub, dataset_dir, capsys):
    """An email written into a record after compile (e.g. by a teacher) is found in the shard: file, row, field."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from secrets_corpus import fake_secrets

    from dataset_builder.writer import arrow_schema

    shard = sorted(dataset_dir.glob("data/sql/*.parquet"))[0]
    rows = pq.read_table(shard).to_pylist()
    email = fake_secrets(6)["email"][0]
    rows[1]["reasoning"] = f"I asked {email} about it."
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), shard)
    assert push.run(args(dataset_dir)) == 3
    err = capsys.readouterr().err
    assert f"data/sql/{shard.name} row 1, reasoning: email" in err and email not in err
    assert hub == []
    assert push.run(args(dataset_dir, allow_secrets=True)) == 0  # the user's explicit choice
    assert [c[0] for c in hub] == ["create_repo", "upload_folder"]


def test_push_allowlist_and_the_local_findings_file_is_never_uploaded(hub, tmp_path):
    import json

    from secrets_corpus import all_planted, write_corpus

    from acc_hf.cli import main

    corpus = write_corpus(tmp_path / "c")
    out = tmp_path / "acc_data"
    compile_args = ["compile", str(corpus["inputs"]), "--out", str(out), "--db-dir", str(corpus["db_dir"])]
    assert main([*compile_args, "--no-progress", "--budget", "sql=16k"]) == 0
    assert (out / "secrets.jsonl").stat().st_size > 0
    assert main(["push", str(out), "--repo", "me/acc"]) == 0  # compiled with redaction: nothing left to find
    sent = hub[-1][2]
    assert "secrets.jsonl" not in sent["files"]
    assert not any(v in json.dumps(sent["texts"]) for v in all_planted().values())
    # a value known to be public, added after compile, is let through when allowlisted
    stats = json.loads((out / "stats.json").read_text())
    ip = all_planted()["sql/public_ip"]
    stats["traces"] = {"card_section": f"Teacher served from {ip}, connected."}
    (out / "stats.json").write_text(json.dumps(stats))
    assert main(["push", str(out), "--repo", "me/acc"]) == 3
    (tmp_path / "public.txt").write_text(ip + "\n")
    assert main(["push", str(out), "--repo", "me/acc", "--secrets-allowlist", str(tmp_path / "public.txt")]) == 0
