"""mini-swe-agent adapter against every real mini-swe-agent run in shared/fixtures/real/swe, plus made-up edge cases."""

import json
from pathlib import Path

import pytest

from dataset_builder.adapters import mini_swe_agent, swe_agent
from dataset_builder.adapters.common import read_head
from dataset_builder.schema import Reject, Trajectory

MINI = "swe/SWE-agent__mini-swe-agent"
RUN = f"{MINI}/output/deepseek_chat_dev"
REPORT = f"{MINI}/deepseek__deepseek-chat.deepseek_chat_dev.json"


def read_one(path: Path) -> Trajectory:
    assert mini_swe_agent.sniff(path, read_head(path)), path
    items = list(mini_swe_agent.read(path))
    assert len(items) == 1 and isinstance(items[0], Trajectory), items
    return items[0]


def test_every_real_run_matches_preds_and_report(real):
    files = sorted((real / RUN).rglob("*.traj.json"))
    assert len(files) == 5
    preds = json.loads((real / MINI / "preds.json").read_text())
    report = json.loads((real / REPORT).read_text())
    for path in files:
        traj = read_one(path)
        assert traj.id == path.parent.name and traj.source == "mini-swe-agent" and traj.domain == "swe"
        assert traj.final_answer == preds[traj.id]["model_patch"]
        assert traj.meta["resolved"] is (traj.id in report["resolved_ids"])
        report_path = (path.resolve().parent / traj.meta["report"]).resolve()
        assert report_path == (real / REPORT).resolve() and not traj.meta["report"].startswith("/")
        assert traj.meta["workdir"] == "/testbed" and traj.meta["model"] == "deepseek/deepseek-chat"
        assert traj.meta["exit_status"] == "Submitted"
        data = json.loads(path.read_text())
        n_calls = sum(len(m.get("tool_calls") or []) for m in data["messages"] if m["role"] == "assistant")
        assert len(traj.steps) == n_calls
        assert all(s.tool == "bash" and set(s.args) == {"command"} for s in traj.steps)
        assert "<returncode>" not in "".join(s.observation for s in traj.steps)


def test_sqlfluff_run(real):
    traj = read_one(real / RUN / "sqlfluff__sqlfluff-2419/sqlfluff__sqlfluff-2419.traj.json")
    assert traj.question.startswith("Rule L060 could give a specific error message\nAt the moment rule L060 flags")
    assert traj.question.endswith("What do you think @jpy-git ?")
    assert "Consider the following PR description" not in traj.question and "<instructions>" not in traj.question
    assert len(traj.steps) == 48
    first = traj.steps[0]
    assert first.args == {"command": 'find . -type f -name "*.py" | grep -i "l060" | head -20'}
    assert first.observation == "./src/sqlfluff/rules/L060.py\n"  # raw output, not the <returncode> wrapper
    assert first.thought.startswith("I'll start by exploring the codebase")
    assert first.call_id == "call_00_ny6sYZ1DLdmif3xJcOccil3W"
    cat = traj.steps[1]
    assert cat.args["command"] == "cat ./src/sqlfluff/rules/L060.py"
    assert cat.observation.startswith('"""Implementation of Rule L060."""')
    submit = traj.steps[-1]
    assert submit.args["command"] == "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"
    assert submit.observation == traj.final_answer  # the command's output is the exit message
    assert traj.final_answer.startswith("diff --git a/src/sqlfluff/rules/L060.py b/src/sqlfluff/rules/L060.py\n")
    assert traj.meta["resolved"] is True and traj.meta["repo"] == "sqlfluff/sqlfluff"
    assert traj.meta["instance_id"] == "sqlfluff__sqlfluff-2419" and traj.meta["mini_version"] == "2.2.7"
    assert traj.reasoning.startswith("Perfect! The patch looks good.")


def test_unresolved_run(real):
    traj = read_one(real / RUN / "pvlib__pvlib-python-1072/pvlib__pvlib-python-1072.traj.json")
    assert traj.meta["resolved"] is False and traj.meta["repo"] == "pvlib/pvlib-python"
    assert len(traj.steps) == 74


def test_companion_files_are_not_trajectories(real):
    for path in [real / MINI / "preds.json", real / REPORT]:
        assert not mini_swe_agent.sniff(path, read_head(path)), path


def _run(messages, info=None, instance_id="octo__repo-7"):
    return {
        "info": {"exit_status": "Submitted", "submission": "diff --git a/a.py b/a.py\n", **(info or {})},
        "messages": messages,
        "trajectory_format": "mini-swe-agent-1.1",
        "instance_id": instance_id,
    }


SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TASK = {
    "role": "user",
    "content": "<pr_description>\nConsider the following PR description:\nfoo() crashes\n</pr_description>",
}


def _call(call_id, command):
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "bash", "arguments": json.dumps({"command": command})},
    }


def test_parallel_tool_calls_give_one_step_each(tmp_path):
    messages = [
        SYSTEM,
        TASK,
        {"role": "assistant", "content": "Look at both.", "tool_calls": [_call("c1", "cat a.py"), _call("c2", "ls")]},
        {"role": "tool", "tool_call_id": "c2", "content": "<returncode>0</returncode>\n<output>\na.py\n</output>"},
        {"role": "tool", "tool_call_id": "c1", "content": "<returncode>0</returncode>\n<output>\nx = 1\n</output>"},
        {"role": "exit", "content": "diff --git a/a.py b/a.py\n", "extra": {"exit_status": "Submitted"}},
    ]
    path = tmp_path / "octo__repo-7.traj.json"
    path.write_text(json.dumps(_run(messages)))
    traj = read_one(path)
    assert [(s.args["command"], s.observation, s.thought) for s in traj.steps] == [
        ("cat a.py", "x = 1", "Look at both."),
        ("ls", "a.py", ""),
    ]
    assert traj.question == "foo() crashes" and traj.meta["repo"] == "octo/repo"
    assert "resolved" not in traj.meta  # no harness report around


def test_text_format_v1(tmp_path):
    messages = [
        SYSTEM,
        TASK,
        {"role": "assistant", "content": "THOUGHT: list files.\n\n```bash\ncd /testbed && ls\n```"},
        {"role": "user", "content": "<returncode>0</returncode>\n<output>\na.py\n</output>"},
        {"role": "assistant", "content": "Two commands:\n```bash\nls\n```\n```bash\npwd\n```"},
        {"role": "user", "content": "Please always provide EXACTLY ONE action in triple backticks."},
        {
            "role": "assistant",
            "content": "THOUGHT: submit.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```",
        },
        {"role": "user", "content": "diff --git a/a.py b/a.py\n"},
    ]
    data = _run(messages)
    data["trajectory_format"] = "mini-swe-agent-1"
    path = tmp_path / "last_mini_run.traj.json"
    path.write_text(json.dumps(data))
    traj = read_one(path)
    assert [s.args["command"] for s in traj.steps] == [
        "cd /testbed && ls",
        "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT",
    ]
    assert traj.steps[0].observation == "a.py" and traj.steps[0].thought == "THOUGHT: list files."
    assert traj.meta["workdir"] == "/testbed"  # from the cd, no config in this file


def test_failed_run_is_rejected_with_its_exit_status(tmp_path):
    messages = [
        SYSTEM,
        TASK,
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "ls")]},
        {
            "role": "exit",
            "content": "litellm.InternalServerError: DeepseekException - upstream error\nmore",
            "extra": {"exit_status": "InternalServerError", "submission": "", "traceback": "Traceback ..."},
        },
    ]
    path = tmp_path / "octo__repo-7.traj.json"
    path.write_text(json.dumps(_run(messages, info={"exit_status": "InternalServerError", "submission": ""})))
    [reject] = mini_swe_agent.read(path)
    assert isinstance(reject, Reject)
    assert reject.reason == (
        "run failed with exit_status='InternalServerError' and no submission: "
        "litellm.InternalServerError: DeepseekException - upstream error"
    )


def test_report_of_another_model_is_not_used(tmp_path):
    """A deepseek-reasoner run next to a deepseek-chat report gets no verdict; its own report gives one."""
    run_dir = tmp_path / "output" / "deepseek_reasoner_dev" / "octo__repo-7"
    run_dir.mkdir(parents=True)
    data = _run([SYSTEM, TASK, {"role": "assistant", "content": "", "tool_calls": [_call("c1", "ls")]}])
    data["info"]["config"] = {"model": {"model_name": "deepseek/deepseek-reasoner"}, "environment": {"cwd": "/testbed"}}
    path = run_dir / "octo__repo-7.traj.json"
    path.write_text(json.dumps(data))
    chat_report = {"total_instances": 1, "resolved_ids": ["octo__repo-7"], "unresolved_ids": []}
    (tmp_path / "deepseek__deepseek-chat.deepseek_chat_dev.json").write_text(json.dumps(chat_report))
    assert "resolved" not in read_one(path).meta
    own = {"total_instances": 1, "resolved_ids": [], "unresolved_ids": ["octo__repo-7"]}
    (tmp_path / "deepseek__deepseek-reasoner.deepseek_reasoner_dev.json").write_text(json.dumps(own))
    swe_agent._reports_in.cache_clear()  # the folder was already looked at (reports are cached per folder)
    traj = read_one(path)
    assert traj.meta["resolved"] is False and traj.meta["report"].endswith(
        "deepseek-reasoner.deepseek_reasoner_dev.json"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"info": {}, "messages": [{"role": "sys', "invalid JSON"),
        ("", "empty file"),
        ('[{"role": "user"}]', "top level is a list"),
        ('{"info": {"submission": "diff"}, "messages": {"role": "user"}}', "no 'messages' list"),
        ('{"info": {"submission": "diff"}, "messages": [{"role": "system", "content": "s"}]}', "no task"),
        ('{"info": {"submission": "diff"}, "messages": [{"role": "user", "content": "t"}]}', "no commands"),
    ],
)
def test_malformed_files_become_rejects(tmp_path, content, reason):
    path = tmp_path / "bad.traj.json"
    path.write_text(content)
    items = list(mini_swe_agent.read(path))
    assert len(items) == 1 and isinstance(items[0], Reject), items
    assert reason in items[0].reason and items[0].origin == str(path)
