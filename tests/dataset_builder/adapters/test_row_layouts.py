"""Row layouts of public trajectory datasets, end to end on their real rows (../shared/fixtures/real, the Agent Data
Protocol samples): each row compiles with its gold evidence in the context, or is rejected with a specific reason."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.adapters import detect, read_file
from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions
from dataset_builder.domains.swe import parse_patch
from dataset_builder.schema import Reject, Trajectory

ADP = "zhu-yiqi__agent-data-protocol/datasets"
NEBIUS = f"swe/{ADP}/nebius_SWE-agent-trajectories"
SWE_GYM = f"swe/{ADP}/swe-gym_openhands_sampled_trajectories"
AGENTTUNING = f"sql/{ADP}/agenttuning_db"
TOUCAN = f"search/{ADP}/toucan_1_5m"


def compile_dir(inputs, tmp_path, **opts):
    out = tmp_path / "out"
    result = compile_trajectories([str(i) for i in inputs], out, progress=False, domain_options=DomainOptions(**opts))
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    return result, rejects


def by_trajectory(result):
    return {json.loads(r.meta)["trajectory_id"] + "|" + r.source: r for r in result.records}


def gold_pieces(record):
    return {p.title: p.text for p in record.pieces if not p.is_distractor}


def net_changes(patch: str, files: set[str]) -> tuple[list, list]:
    plus, minus, current = [], [], None
    for line in patch.replace("\r\n", "\n").split("\n"):
        if line.startswith("diff --git"):
            current = line.split(" b/")[-1]
        elif current in files and line[:1] in ("+", "-") and not line.startswith(("+++", "---")):
            (plus if line[0] == "+" else minus).append(line[1:])
    return sorted(plus), sorted(minus)


def test_every_adp_fixture_row_is_a_record_or_a_specific_reject(real, tmp_path):
    inputs = [real / NEBIUS, real / SWE_GYM, real / AGENTTUNING, real / TOUCAN]
    result, rejects = compile_dir(inputs, tmp_path)
    n_rows = sum(len(json.loads(p.read_text())) for i in inputs for p in Path(i).rglob("*.json"))
    assert n_rows == 31 and len(result.records) + len(rejects) == n_rows and result.balanced
    records = by_trajectory(result)
    assert sorted(records) == sorted(
        [f"{r['instance_id']}|role-text-rows" for r in json.loads((real / NEBIUS / "sample_raw.json").read_text())]
        + [f"{r['instance_id']}|chat-rows" for r in json.loads((real / SWE_GYM / "sample_raw.json").read_text())]
        + [
            f"{i}|sharegpt-rows"
            for i in ("python__mypy-15976_0", "Project-MONAI__MONAI-5686_4", "Project-MONAI__MONAI-6849_1")
            + ("getmoto__moto-6387_0",)
        ]
    )
    reasons = {r["origin"].split("/datasets/")[1]: r["reason"] for r in rejects}
    for k in range(5):  # the ADP form of the nebius runs compiles to the very records of the raw rows
        assert reasons[f"nebius_SWE-agent-trajectories/sample_std.json#{k}"].startswith("duplicate: same question")
        for name in ("raw", "std"):  # AgentTuning's sampled rows answer without ever running SQL
            assert reasons[f"agenttuning_db/sample_{name}.json#{k}"].startswith("no tool steps: the agent ran no tool")
    assert all(r["domain"] == "sql" for r in rejects if "agenttuning" in r["origin"])
    assert (
        "the replaced text is not found in the text the run saw"
        in reasons["swe-gym_openhands_sampled_trajectories/sample_sft/sample_sft_openhands.json#4"]
    )
    assert reasons["toucan_1_5m/sample_raw.json#0"].startswith("no visited page: nothing to compile")
    for record in result.records:  # every SWE record shows the files its answer patches
        touched = {fp.path for fp in parse_patch(record.answer) if fp.old_path}
        assert touched and touched <= set(gold_pieces(record)), record.id


def test_role_text_rows_with_swe_agent_command_blocks(real, tmp_path):
    path = real / NEBIUS / "sample_raw.json"
    assert detect(path).NAME == "role-text-rows"
    traj = next(read_file(path))
    assert traj.id == "tomerfiliba__plumbum-366_17" and traj.meta["instance_id"] == "tomerfiliba__plumbum-366"
    assert traj.meta["repo"] == "tomerfiliba/plumbum" and traj.meta["resolved"] is True
    assert [s.tool for s in traj.steps] == ["bash", "find_file", "open", "edit", "bash", "submit"]
    assert traj.steps[2].args["path"] == "plumbum/cli/image.py" and "[File: /plumbum/plumbum/cli/image.py" in (
        traj.steps[2].observation
    )
    assert traj.question.startswith("SyntaxError in plumbum/cli/image.py") and "INSTRUCTIONS" not in traj.question
    result, _ = compile_dir([path], tmp_path)
    record = by_trajectory(result)["tomerfiliba__plumbum-366_17|role-text-rows"]
    assert (
        "5:import . as cli" not in record.context and "import . as cli" in gold_pieces(record)["plumbum/cli/image.py"]
    )
    assert record.answer.startswith("diff --git a/plumbum/cli/image.py")


def test_adp_std_records_read_like_the_raw_rows(real):
    raw = [t for t in read_file(real / NEBIUS / "sample_raw.json")]
    std = [t for t in read_file(real / NEBIUS / "sample_std.json")]
    assert detect(real / NEBIUS / "sample_std.json").NAME == "adp-std"
    for a, b in zip(raw, std):
        assert (a.id, a.question, a.final_answer) == (b.id, b.question, b.final_answer)
        assert [s.tool for s in a.steps] == [s.tool for s in b.steps]
        assert [s.observation.strip() for s in a.steps[:-1]] == [s.observation.strip() for s in b.steps[:-1]]
    assert std[0].steps[2].args == {"path": "plumbum/cli/image.py"}  # ADP's JSON-quoted argument, unquoted


def test_openai_chat_rows_take_the_patch_from_test_result(real, tmp_path):
    path = real / SWE_GYM / "sample_raw.json"
    rows = json.loads(path.read_text())
    result, rejects = compile_dir([path], tmp_path)
    assert not rejects
    record = by_trajectory(result)["python__mypy-15976_0|chat-rows"]
    assert record.answer == rows[0]["test_result"]["git_patch"].replace("\r\n", "\n") + "\n"  # diffs end with a newline
    files = gold_pieces(record)
    assert "_add_slots(ctx, attributes)" in files["mypy/plugins/attrs.py"]
    assert json.loads(record.meta)["trajectory"]["resolved"] is True


def test_sharegpt_rows_with_xml_function_calls_derive_the_patch_from_the_edits(real, tmp_path):
    path = real / SWE_GYM / "sample_sft" / "sample_sft_openhands.json"
    raw = {
        r["instance_id"]: r["test_result"]["git_patch"]
        for r in json.loads((real / SWE_GYM / "sample_raw.json").read_text())
    }
    trajs = [t for t in read_file(path) if isinstance(t, Trajectory)]
    assert len(trajs) == 5 and all(t.meta["text_actions"] == "xml" for t in trajs)
    derived = [t for t in trajs if t.final_answer]
    assert len(derived) == 4
    for t in derived:  # the same changes as the patch the harness stored for the raw row (minus the agent's scripts)
        files = {fp.path for fp in parse_patch(t.final_answer)}
        assert files < {fp.path for fp in parse_patch(raw[t.id])}
        assert net_changes(t.final_answer, files) == net_changes(raw[t.id], files)
        assert t.meta["patch_from"] == "edits"
    result, _ = compile_dir([path], tmp_path)
    record = by_trajectory(result)["getmoto__moto-6387_0|sharegpt-rows"]
    assert "moto/cloudfront/responses.py" in gold_pieces(record)


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_toucan_rows_with_messages_as_a_json_string(real, tmp_path):
    row = json.loads((real / TOUCAN / "sample_raw.json").read_text())[0]
    as_stored = {k: v if isinstance(v, str) else json.dumps(v) for k, v in row.items()}  # every column a string
    (traj,) = list(read_file(write_rows(tmp_path / "toucan" / "train-00000-of-00001.parquet", [as_stored])))
    assert traj.source == "chat-rows" and traj.domain == "search"
    assert [(s.tool, s.args["query"][:9]) for s in traj.steps] == [("web_search", "StellarPa")]  # exa MCP tool
    assert '"title": "StellarPay Raises $50M Series B"' in traj.steps[0].observation
    page = "StellarPay, a fintech startup focused on cross-border payments, raised $50M in its Series B round."
    fetch = {
        "id": "toucan_fetch_0",
        "question": "How much did StellarPay raise in its Series B?",
        "messages": json.dumps(
            [
                {"role": "user", "content": "How much did StellarPay raise in its Series B?"},
                {
                    "role": "assistant",
                    "content": "",
                    "function_call": json.dumps(
                        {"name": "fetch-fetch", "arguments": json.dumps({"url": "https://example.com/stellarpay"})}
                    ),
                },  # fmt: skip
                {"role": "function", "name": "fetch-fetch", "content": page},
                {"role": "assistant", "content": "$50M"},
            ]
        ),
        "available_tools": json.dumps([{"type": "function", "function": {"name": "fetch-fetch"}}]),
    }
    path = write_rows(tmp_path / "fetch" / "train-00000-of-00001.parquet", [fetch])
    result, rejects = compile_dir([path], tmp_path)
    (record,) = result.records
    assert gold_pieces(record) == {"https://example.com/stellarpay": page} and record.answer == "$50M"


AGENTTUNING_PROMPT = (
    "I will ask you a question, then you should help me operate a MySQL database with SQL to answer the question.\n"
    "your operation should be like this:\nAction: Operation\n```sql\nSELECT * FROM table WHERE condition;\n```\n"
)


def test_agenttuning_operations_with_a_task_table_and_database(tmp_path):
    import sqlite3

    db_dir = tmp_path / "dbs"
    db_dir.mkdir()
    with sqlite3.connect(db_dir / "shop.sqlite") as con:
        con.execute("CREATE TABLE Products (Product TEXT, Price REAL)")
        con.executemany("INSERT INTO Products VALUES (?, ?)", [("ABC1234", 9.5), ("XYZ", 3.0)])
    row = {
        "id": "db_7",
        "conversations": [
            {"role": "user", "content": AGENTTUNING_PROMPT},
            {"role": "assistant", "content": "Ok."},
            {"role": "user", "content": "What is the price of product ABC1234?"},
            {
                "role": "assistant",
                "content": "Let me look.\nAction: Operation\n```sql\nSELECT Price FROM Products WHERE Product = 'ABC1234';\n```",
            },  # fmt: skip
            {"role": "user", "content": "[(9.5,)]"},
            {"role": "assistant", "content": 'The price is 9.5.\nAction: Answer\nFinal Answer: ["9.5"]'},
        ],
    }
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps(row) + "\n")
    (traj,) = list(read_file(runs))
    assert traj.source == "chat-rows" and traj.domain == "sql" and traj.meta["engine"] == "mysql"
    assert traj.question == "What is the price of product ABC1234?" and traj.final_answer == '["9.5"]'
    assert traj.steps[0].tool == "sql_db_query" and traj.steps[0].observation == "[(9.5,)]"
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "db_7", "db_id": "shop", "SQL": "SELECT Price FROM Products"}) + "\n")
    result, rejects = compile_dir([runs], tmp_path, db_dir=db_dir, tasks=str(tasks))
    (record,) = result.records
    assert "'ABC1234'" in gold_pieces(record)["Products"] and record.gold == "SELECT Price FROM Products"


def test_react_action_input_rows(tmp_path):
    page = "The Gannet Head lighthouse keeper's cottage is run by the Carrow Trust, founded by Maren Hale."
    row = {
        "trajectory_id": "react-1",
        "resolved": True,
        "messages": [
            {"role": "user", "content": "Who founded the Carrow Trust?"},
            {
                "role": "assistant",
                "content": 'Thought: I should read the page.\nAction: visit_webpage\nAction Input: {"url": "https://carrow.example/trust"}',
            },  # fmt: skip
            {"role": "user", "content": f"Observation: {page}"},
            {"role": "assistant", "content": "Thought: I know it.\nFinal Answer: Maren Hale"},
        ],
    }
    path = write_rows(tmp_path / "react" / "train-00000-of-00001.parquet", [row])
    result, _ = compile_dir([path], tmp_path)
    (record,) = result.records
    assert record.answer == "Maren Hale" and page in gold_pieces(record)["https://carrow.example/trust"]


def test_bad_rows_are_rejects_with_shard_and_row(tmp_path):
    good = json.loads(json.dumps({"id": "ok", "resolved": True, "messages": [{"role": "user", "content": "hi"}]}))
    rows = [
        {"id": "null", "resolved": True, "messages": None},
        {"id": "alien", "resolved": True, "messages": json.dumps([{"speaker": "x", "utterance": 1}])},
        {"id": "broken", "resolved": True, "messages": '[{"role": "user", "content": "unterminated'},
        {"id": "huge", "resolved": True, "messages": "[" + " " * (60 * 2**20) + "]"},
        {**good, "messages": json.dumps(good["messages"])},
    ]
    shard = write_rows(tmp_path / "data" / "train-00000-of-00002.parquet", rows)
    not_parquet = tmp_path / "data" / "train-00001-of-00002.parquet"
    not_parquet.write_text("this is not parquet\n")
    items = [*read_file(shard), *read_file(not_parquet)]
    assert all(isinstance(i, Reject) for i in items)
    got = [(i.origin.rsplit("/", 1)[1], i.reason.split(":")[0]) for i in items]
    assert got == [
        ("train-00000-of-00002.parquet#0", "no turns"),
        ("train-00000-of-00002.parquet#1", "unknown row layout"),
        ("train-00000-of-00002.parquet#2", "the turns cell is a JSON string that does not parse"),
        ("train-00000-of-00002.parquet#3", "row of 60 MiB, over the 48 MiB row limit (a broken or runaway cell)"),
        ("train-00000-of-00002.parquet#4", "no tool steps"),
        ("train-00001-of-00002.parquet", "not a parquet file"),
    ]


@pytest.mark.parametrize("name", ["raw", "std"])
def test_format_override_and_detection_for_json_rows(real, name):
    path = real / NEBIUS / f"sample_{name}.json"
    forced = list(read_file(path, "role-text-rows" if name == "raw" else "adp-std"))
    assert [t.id for t in forced] == [t.id for t in read_file(path)]
