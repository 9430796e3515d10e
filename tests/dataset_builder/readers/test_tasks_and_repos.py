"""Task tables joined on instance id (gold patch from a local git repository), run selection, stored-patch checks,
`acc repos` against local bare repositories (file:// remotes), and Hub-style parquet folders = JSON rows."""

import json
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

from acc_hf.cli import main
from dataset_builder.adapters import read_file
from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions
from dataset_builder.domains.swe import GitTree
from dataset_builder.readers import hub, list_inputs
from dataset_builder.schema import Reject

APP = "def area(w, h):\n    return w + h\n"
UTIL = "def clamp(x):\n    return max(0, x)\n"
GOLD = (
    "diff --git a/util.py b/util.py\n--- a/util.py\n+++ b/util.py\n@@ -1,2 +1,2 @@\n def clamp(x):\n"
    "-    return max(0, x)\n+    return min(max(0, x), 100)\n"
)
AGENT = (
    "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def area(w, h):\n"
    "-    return w + h\n+    return w * h\n"
)


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    git("init", "-q", "-b", "main", cwd=src)
    (src / "app.py").write_text(APP)
    (src / "util.py").write_text(UTIL)
    git("add", ".", cwd=src)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base", cwd=src)
    base = git("rev-parse", "HEAD", cwd=src)
    bare = tmp_path / "remote" / "acme__shapes.git"
    git("clone", "-q", "--bare", str(src), str(bare))
    git("config", "uploadpack.allowFilter", "true", cwd=bare)
    return bare, base


def run_row(run_id, patch, resolved):
    """A SWE-Gym style row: the agent viewed app.py, edited it, and stored a patch."""
    view = "Here's the result of running `cat -n` on /workspace/shapes/app.py:\n     1\tdef area(w, h):\n     2\t    return w + h\n"  # fmt: skip
    call = {"command": "str_replace", "path": "/workspace/shapes/app.py", "old_str": "w + h", "new_str": "w * h"}
    return {
        "instance_id": run_id,
        "resolved": resolved,
        "messages": [
            {"role": "user", "content": "<pr_description>\nclamp() must cap at 100\n</pr_description>"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "function": {
                            "name": "str_replace_editor",
                            "arguments": json.dumps({"command": "view", "path": "/workspace/shapes/app.py"}),
                        },
                    }
                ],
            },  # fmt: skip
            {"role": "tool", "tool_call_id": "c1", "content": view},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c2", "function": {"name": "str_replace_editor", "arguments": json.dumps(call)}}],
            },  # fmt: skip
            {"role": "tool", "tool_call_id": "c2", "content": "The file /workspace/shapes/app.py has been edited."},
        ],
        "test_result": {"git_patch": patch},
    }


def compile_rows(tmp_path, rows, **opts):
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = compile_trajectories([runs], out, progress=False, domain_options=DomainOptions(**opts))
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    return result, rejects


def test_task_table_turns_an_unresolved_run_into_a_record_of_the_gold_patch(tmp_path):
    bare, base = make_repo(tmp_path)
    repos = tmp_path / "repos"
    git("clone", "-q", "--bare", str(bare), str(repos / "acme__shapes"))
    tasks = tmp_path / "tasks.parquet"
    task = {"instance_id": "acme__shapes-1", "repo": "acme/shapes", "base_commit": base, "patch": GOLD}
    pq.write_table(pa.Table.from_pylist([{**task, "problem_statement": "clamp() must cap at 100"}]), tasks)
    rows = [run_row("acme__shapes-1_3", AGENT, resolved=False)]
    result, rejects = compile_rows(tmp_path, rows, repos_dir=repos, tasks=str(tasks))
    assert not rejects
    (record,) = result.records
    assert record.answer == GOLD and record.gold == GOLD
    files = {p.title: p.text for p in record.pieces if not p.is_distractor}
    assert files == {"util.py": UTIL, "app.py": APP}  # the gold patch's file at the base commit + the inspected one
    meta = json.loads(record.meta)
    assert meta["trajectory"]["answer_from"] == "gold patch" and meta["trajectory"]["instance_id"] == "acme__shapes-1"

    result, rejects = compile_rows(tmp_path, rows, repos_dir=repos, tasks=str(tasks), only_resolved=True)
    assert not result.records and rejects[0]["reason"].startswith("not resolved (marked unresolved)")


def test_max_per_instance_caps_runs_of_one_instance(tmp_path):
    rows = [run_row(f"acme__shapes-1_{k}", AGENT, resolved=True) for k in range(3)]
    result, rejects = compile_rows(tmp_path, rows, max_per_instance=2)
    assert len(result.records) == 1  # the other run is a duplicate of the same evidence and answer
    assert [r["reason"] for r in rejects if "max-per-instance" in r["reason"]] == [
        "run 3 of instance acme__shapes-1: over --max-per-instance 2"
    ]


def test_a_stored_patch_of_another_run_is_replaced_by_the_runs_own_edits(tmp_path):
    (mismatched,) = list(read_file(write_jsonl(tmp_path / "a.jsonl", [run_row("acme__shapes-2", GOLD, True)])))
    assert mismatched.final_answer == AGENT  # derived from the str_replace on the file it viewed
    assert "touches only files the run never saw or edited (util.py)" in mismatched.meta["patch_note"]
    row = run_row("acme__shapes-3", GOLD, True)
    row["messages"] = row["messages"][:3]  # no edit left to derive a patch from
    result, rejects = compile_rows(tmp_path, [row])
    assert not result.records and rejects[0]["reason"].startswith(
        "the stored patch touches only files the run never saw or edited (util.py): a patch of another run, and no patch"
    )


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_acc_repos_clones_bare_blob_filtered_and_resumes(tmp_path, capsys):
    bare, base = make_repo(tmp_path)
    tasks = write_jsonl(
        tmp_path / "tasks.jsonl", [{"instance_id": f"acme__shapes-{k}", "base_commit": base} for k in (1, 2)]
    )
    out = tmp_path / "clones"
    (out / "acme__shapes.partial").mkdir(parents=True)  # an interrupted earlier run
    remote = f"file://{tmp_path}/remote/{{owner}}__{{name}}.git"
    assert main(["repos", str(tasks), "--out", str(out), "--remote", remote]) == 0
    clone = out / "acme__shapes"
    assert git("rev-parse", "--is-bare-repository", cwd=clone) == "true" and not (out / "acme__shapes.partial").exists()
    assert git("config", "remote.origin.partialclonefilter", cwd=clone) == "blob:none"
    assert "1 cloned; base commits missing: 0" in capsys.readouterr().out
    assert GitTree(clone, base).read("util.py") == (UTIL, "")  # the blob is fetched on demand
    assert main(["repos", str(tasks), "--out", str(out), "--remote", remote]) == 0
    assert "1 present" in capsys.readouterr().out
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"instance_id": "nobody__nothing-1"}])
    assert main(["repos", str(bad), "--out", str(out), "--remote", remote]) == 1


def test_hub_style_parquet_folder_compiles_to_the_records_of_the_json_rows(real, tmp_path, monkeypatch):
    nebius = real / "swe/zhu-yiqi__agent-data-protocol/datasets/nebius_SWE-agent-trajectories/sample_raw.json"
    rows = json.loads(nebius.read_text())
    repo = tmp_path / "hub" / "datasets" / "nebius" / "SWE-agent-trajectories"
    (repo / "data").mkdir(parents=True)
    for k, part in enumerate((rows[:3], rows[3:])):
        pq.write_table(pa.Table.from_pylist(part), repo / "data" / f"train-0000{k}-of-00002.parquet")
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n---\n")  # fmt: skip
    monkeypatch.setattr(hub, "hub_filesystem", lambda: DirFileSystem(path=str(tmp_path / "hub"), fs=LocalFileSystem()))
    urls = list_inputs(["hf://datasets/nebius/SWE-agent-trajectories?split=train"])
    from_hub = [t for url in urls for t in read_file(url)]
    from_json = list(read_file(nebius))
    assert not any(isinstance(t, Reject) for t in from_hub)
    assert [t.origin.rsplit("/", 1)[1] for t in from_hub] == [
        f"train-0000{k // 3}-of-00002.parquet#{k % 3}" for k in range(3)
    ] + [  # fmt: skip
        "train-00001-of-00002.parquet#0",
        "train-00001-of-00002.parquet#1",
    ]

    def same(t):
        return (t.id, t.source, t.question, t.final_answer, [(s.tool, s.args, s.observation) for s in t.steps], t.meta)

    assert [same(t) for t in from_hub] == [same(t) for t in from_json]
    local = sorted(str(p) for p in (repo / "data").glob("*.parquet"))
    records = {}
    for name, inputs in (("json", [nebius]), ("parquet", local)):
        out = tmp_path / name
        result = compile_trajectories(inputs, out, progress=False)
        records[name] = sorted(
            (
                r.id and json.loads(r.meta)["trajectory_id"],
                r.question,
                r.answer,
                r.gold,
                sorted((p.title, p.text) for p in r.pieces if not p.is_distractor),
            )  # fmt: skip
            for r in result.records
        )
    assert len(records["json"]) == 5 and records["json"] == records["parquet"]
