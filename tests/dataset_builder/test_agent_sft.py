"""`acc agent-sft`: the agent-SFT view covers exactly the ACC view's runs (ids per config and split), on the bundled
samples and the real fixtures; inputs = records + rejects; same inputs -> same bytes; malformed inputs become rejects;
the bundled chat template renders tool calls and keeps plain conversations byte-identical."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dataset_builder.agent_sft import build_agent_sft, read_acc_index
from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions
from dataset_builder.load import local_card_configs

SAMPLES = Path(__file__).resolve().parents[2] / "dataset_builder" / "samples"
SAMPLE_INPUTS = [SAMPLES / "search", SAMPLES / "sql", SAMPLES / "swe"]
SAMPLE_OPTS = DomainOptions(db_dir=SAMPLES / "sql", repos_dir=SAMPLES / "swe", page_cache_dir=SAMPLES / "corpus")


@pytest.fixture(scope="module")
def samples_views(tmp_path_factory):
    """The samples compiled (with a test split) and their agent-SFT view, from the inputs the ACC stats name."""
    root = tmp_path_factory.mktemp("views")
    compile_trajectories(SAMPLE_INPUTS, root / "acc", domain_options=SAMPLE_OPTS, test_size=0.3, progress=False)
    stats = build_agent_sft(None, root / "acc", root / "sft")
    return root / "acc", root / "sft", stats


def ids_by_config_split(folder: Path) -> dict[tuple[str, str], list[str]]:
    """{(config, split): sorted ids}, read through the card's configs as `load_dataset(folder, config)` resolves them."""
    import pyarrow.parquet as pq

    out = {}
    for config, splits in local_card_configs(folder).items():
        for split, files in splits.items():
            out[(config, split)] = sorted(i for f in files for i in pq.read_table(f, columns=["id"])["id"].to_pylist())
    return out


def file_hashes(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_samples_same_ids_per_config_and_split(samples_views):
    acc, sft, stats = samples_views
    acc_ids, sft_ids = ids_by_config_split(acc), ids_by_config_split(sft)
    assert set(acc_ids) == set(sft_ids)
    assert {c for c, _ in acc_ids} == {"all", "search", "swe", "sql"}
    assert {s for _, s in acc_ids} == {"train", "test"}  # the test split is mirrored too
    for key, ids in acc_ids.items():
        assert sft_ids[key] == ids, key
    assert stats["acc_dataset"]["same_runs"] and stats["acc_dataset"]["n_missing"] == 0
    assert (sft / "missing.jsonl").read_text() == ""


def test_samples_inputs_balance_and_rows(samples_views):
    acc, sft, stats = samples_views
    rejects = [json.loads(line) for line in (sft / "rejects.jsonl").read_text().splitlines()]
    assert stats["n_in"] == stats["n_records"] + stats["n_rejected"] and stats["balanced"]
    assert len(rejects) == stats["n_rejected"]
    acc_stats = json.loads((acc / "stats.json").read_text())
    assert stats["n_in"] == acc_stats["n_in"]  # the same inputs, read the same way
    assert stats["n_records"] == acc_stats["n_records"]
    # the database, git bundle and harness report: rejected in both views, with the same reasons
    assert sorted(r["reason"] for r in rejects) == sorted(
        json.loads(line)["reason"] for line in (acc / "rejects.jsonl").read_text().splitlines()
    )

    from dataset_builder.load import load_acc_split

    ds = load_acc_split(str(sft), "swe", split="train")
    row = ds[0]
    roles = [m["role"] for m in row["messages"]]
    assert roles[0] == "user" and roles[-1] == "assistant" and "tool" in roles
    call = next(m for m in row["messages"] if m["tool_calls"])["tool_calls"][0]
    assert call["type"] == "function" and isinstance(call["function"]["arguments"], dict)  # Json feature -> dict
    tool = next(m for m in row["messages"] if m["role"] == "tool")
    assert tool["name"] == call["function"]["name"]
    assert [t["function"]["name"] for t in row["tools"]] == ["bash"]
    assert row["tools"][0]["function"]["parameters"]["required"] == ["command"]
    meta = json.loads(row["meta"])
    assert 0 < meta["n_loss_tokens"] < meta["n_tokens"] and meta["n_tool_calls"] == roles.count("tool")
    for domain, d in stats["domains"].items():
        if d["n_records"]:
            assert 0 < d["loss_share"] < 1, domain
    card = (sft / "README.md").read_text()
    assert "agent-SFT baseline" in card and "config_name: swe" in card and "`acc`" in card


def test_same_inputs_same_bytes(samples_views, tmp_path):
    acc, sft, _ = samples_views
    build_agent_sft(None, acc, tmp_path / "again")
    assert file_hashes(tmp_path / "again") == file_hashes(sft)
    build_agent_sft(None, acc, tmp_path / "again")  # rerun into the same folder: replaced, same bytes
    assert file_hashes(tmp_path / "again") == file_hashes(sft)


def test_not_in_acc_and_missing_are_reported(samples_views, tmp_path):
    """An ACC dataset of search only: sql/swe trajectories are rejects with the ACC's own reason (domain filter);
    an agent-SFT view built from search inputs only reports the ACC records it could not find."""
    acc = tmp_path / "acc_search"
    compile_trajectories(SAMPLE_INPUTS, acc, domain="search", domain_options=SAMPLE_OPTS, progress=False)
    stats = build_agent_sft(SAMPLE_INPUTS, acc, tmp_path / "sft")
    rejects = [json.loads(line) for line in (tmp_path / "sft" / "rejects.jsonl").read_text().splitlines()]
    filtered = [r for r in rejects if r["domain"] == "sql" and r["stage"] == "join"]
    assert filtered and all(r["reason"].startswith("not in the ACC view: domain filter: sql") for r in filtered)
    assert stats["balanced"] and stats["acc_dataset"]["same_runs"]

    full_acc, _, _ = samples_views
    partial = build_agent_sft([SAMPLES / "search"], full_acc, tmp_path / "partial")
    missing = [json.loads(line) for line in (tmp_path / "partial" / "missing.jsonl").read_text().splitlines()]
    n_other = sum(1 for e in read_acc_index(full_acc).values() if e.domain != "search")
    assert len(missing) == n_other == partial["acc_dataset"]["n_missing"] > 0
    assert {m["domain"] for m in missing} == {"sql", "swe"} and not partial["acc_dataset"]["same_runs"]
    assert all(m["reason"] == "trajectory not found in INPUTS" for m in missing)


def test_malformed_inputs_become_rejects(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    lines = (SAMPLES / "search" / "carrow_messages.jsonl").read_text().splitlines()
    good, second = json.loads(lines[0]), json.loads(lines[1])
    no_question = dict(second, id="no-question", messages=[m for m in second["messages"] if m["role"] != "user"])
    rows = [json.dumps(good), "{this is not json", json.dumps(no_question), json.dumps(dict(good, id="dup"))]
    (runs / "mixed.jsonl").write_text("\n".join(rows) + "\n")
    (runs / "garbage.bin").write_bytes(b"\x00\x01\x02 binary")
    acc = tmp_path / "acc"
    compile_trajectories([runs], acc, progress=False)
    stats = build_agent_sft(None, acc, tmp_path / "sft")
    rejects = [json.loads(line) for line in (tmp_path / "sft" / "rejects.jsonl").read_text().splitlines()]
    assert stats["n_in"] == stats["n_records"] + len(rejects) == 5
    assert stats["n_records"] == json.loads((acc / "stats.json").read_text())["n_records"] >= 1
    reasons = " | ".join(r["reason"] for r in rejects)
    assert "binary" in reasons and "JSON" in reasons
    assert all(r["origin"] for r in rejects)
    assert ids_by_config_split(acc) == ids_by_config_split(tmp_path / "sft")


def test_bad_acc_folder_is_a_usage_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="stats.json"):
        build_agent_sft(SAMPLE_INPUTS, tmp_path, tmp_path / "out")


def test_cli_runs_and_explains_itself(samples_views, tmp_path, capsys):
    from acc_hf.cli import main

    acc, sft, _ = samples_views
    with pytest.raises(SystemExit):
        main(["agent-sft", "--help"])
    assert "agent-SFT baseline" in capsys.readouterr().out
    assert main(["agent-sft", *map(str, SAMPLE_INPUTS), "--acc", str(acc), "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "inputs = records + rejects" in out and "missing from INPUTS 0" in out
    data = {k: v for k, v in file_hashes(tmp_path / "cli").items() if k.startswith("data/")}
    assert data == {k: v for k, v in file_hashes(sft).items() if k.startswith("data/")}


def test_real_fixtures_same_ids(real, tmp_path):
    acc = tmp_path / "acc"
    compile_trajectories([real], acc, domain_options=DomainOptions(db_dir=real / "sql"), test_size=0.2, progress=False)
    stats = build_agent_sft([real], acc, tmp_path / "sft")
    assert stats["balanced"] and stats["acc_dataset"]["same_runs"]
    acc_ids, sft_ids = ids_by_config_split(acc), ids_by_config_split(tmp_path / "sft")
    assert acc_ids == sft_ids and sum(len(v) for (c, _), v in acc_ids.items() if c == "all") == stats["n_records"]
    assert {c for c, _ in acc_ids} >= {"all", "search", "swe"}
    acc_stats = json.loads((acc / "stats.json").read_text())
    assert stats["n_in"] == acc_stats["n_in"] == stats["n_records"] + stats["n_rejected"]


def test_plain_conversations_render_as_before_tools():
    """The bundled template gained tools and {% generation %}: plain conversations (ACC rows, the demo) keep their
    bytes, with and without the generation prompt."""
    transformers = pytest.importorskip("transformers")
    from dataset_builder.tokenizer.make_tokenizer import PLAIN_CHAT_TEMPLATE
    from dataset_builder.tokens import DEFAULT_TOKENIZER

    tok = transformers.AutoTokenizer.from_pretrained(DEFAULT_TOKENIZER)
    chats = [
        [
            {"role": "user", "content": "Q?\n\nContext:\n# doc\ntext"},
            {"role": "assistant", "content": "<think>r</think>A"},
        ],
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        [{"role": "user", "content": ""}, {"role": "assistant", "content": "x\n"}, {"role": "user", "content": "y"}],
    ]
    for chat in chats:
        for gen in (False, True):
            new = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)
            old = tok.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=gen, chat_template=PLAIN_CHAT_TEMPLATE
            )
            assert new == old
    tools = [{"type": "function", "function": {"name": "sql_db_query", "parameters": {"type": "object"}}}]
    chat = [
        {"role": "user", "content": "How many?"},
        {"role": "assistant", "content": "Count.", "tool_calls": [
            {"type": "function", "function": {"name": "sql_db_query", "arguments": {"query": "SELECT 1"}}}]},
        {"role": "tool", "name": "sql_db_query", "content": "1"},
        {"role": "assistant", "content": "1"},
    ]  # fmt: skip
    text = tok.apply_chat_template(chat, tools=tools, tokenize=False)
    assert '<tools>\n{"type": "function", "function": {"name": "sql_db_query"' in text
    assert 'Count.\n<tool_call>\n{"name": "sql_db_query", "arguments": {"query": "SELECT 1"}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\n1\n</tool_response><|im_end|>\n" in text
