"""`acc eval` end to end: the tiny model over small generated sets (reports, plot, model card, resume), local
parquet through `datasets`, the Hub paths offline, and the harness commands."""

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from acc_hf.cli import main
from acc_hf.eval import graphwalks, harness, mrcr
from acc_hf.tiny import save_tiny

SMALL = ["--data", "generated", "--n", "1", "--lengths", "1000", "--needles", "2,4", "--max-new-tokens", "4"]


def _front_matter(readme):
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_two_tiny_models_end_to_end(tiny_checkpoint, tmp_path, capsys):
    base = Path(shutil.copytree(tiny_checkpoint, tmp_path / "tiny-base"))  # its card is written: not the shared one
    other = save_tiny(tmp_path / "tiny-acc", seed=1)
    out = tmp_path / "out"
    argv = ["eval", str(base), str(other), "--names", "base,acc", *SMALL, "--out", str(out)]
    assert main([*argv, "--model-card", str(other)]) == 0
    printed = capsys.readouterr().out

    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["base", "acc"]
    assert results["data"]["mrcr"]["kind"] == "generated" and results["data"]["mrcr"]["n_items"] == 2
    assert results["data"]["graphwalks"]["n_items"] == 2
    assert results["settings"]["tokenizer"] == str(base)  # the model's own tokenizer counts
    for name in ("base", "acc"):
        model = results["models"][name]
        assert model["generated"] == 4 and model["cached"] == 0
        mr, gw = model["summary"]["mrcr"], model["summary"]["graphwalks"]
        assert mr["groups"] == ["2", "4"] and gw["groups"] == ["bfs", "parents"]
        assert mr["overall"]["n"] == 2 and 0 <= mr["overall"]["score"] <= 100
        assert mr["le_128k"] == mr["overall"]  # every prompt is under 128k
        assert list(mr["by_bin"]) == ["<=4k"]
        lines = (out / "responses" / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == 4
        for rec in map(json.loads, lines):  # the stored scores are the graders' scores of the stored responses
            if rec["benchmark"] == "mrcr":
                expected = mrcr.grade(rec["response"], rec["reference"]["answer"], rec["reference"]["random_string_to_prepend"])  # fmt: skip
            else:
                expected = graphwalks.score(rec["response"], rec["reference"]["answer_nodes"])
            assert rec["score"] == expected

    # one line per model in each panel of the plot
    assert results["plot_lines"] == {"mrcr": ["base", "acc"], "graphwalks": ["base", "acc"]}
    assert (out / "score_vs_context.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| model | MRCR <=128k | MRCR 2 needles | MRCR 4 needles | MRCR <=4k | GraphWalks <=128k |" in report
    assert "| prompt tokens | 2 needles | 4 needles | all |" in report
    assert "| prompt tokens | bfs | parents | all |" in report
    assert "With the published parser" in report and report.strip() in printed

    # each model's results went into its own card's model-index, honestly labelled as generated data
    assert _front_matter(base / "README.md")["model-index"][0]["name"] == "tiny-base"
    index = _front_matter(other / "README.md")["model-index"]
    assert index[0]["name"] == "tiny-acc"
    results_in_card = index[0]["results"]
    datasets = {r["dataset"]["type"] for r in results_in_card}
    assert datasets == {"acc-hf/generated-mrcr", "acc-hf/generated-graphwalks"}
    mrcr_le_128k = [r for r in results_in_card if r["dataset"]["config"] == "<=128k" and "MRCR" in r["task"]["name"]]
    assert mrcr_le_128k[0]["metrics"][0]["value"] == results["models"]["acc"]["summary"]["mrcr"]["le_128k"]["score"]
    assert "not the official set" in mrcr_le_128k[0]["task"]["name"]

    # rerunning the same command resumes from the cache: nothing is generated again
    assert main(argv) == 0
    rerun = json.loads((out / "results.json").read_text())
    assert all(m["generated"] == 0 and m["cached"] == 4 for m in rerun["models"].values())
    assert rerun["models"]["acc"]["summary"] == results["models"]["acc"]["summary"]


def _write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_local_parquet_with_the_reference_backend(tmp_path):
    data = tmp_path / "data"
    mrcr_rows = mrcr.generate_mrcr(2, 2, 1500, seed=1) + mrcr.generate_mrcr(2, 4, 1500, seed=1)
    mrcr_rows.append(dict(mrcr_rows[0], prompt="{not json"))  # a bad row: skipped with its reason
    _write_parquet(data / "mrcr" / "rows.parquet", mrcr_rows)
    gw_rows = graphwalks.generate_graphwalks(3, "bfs", 1000, seed=1) + graphwalks.generate_graphwalks(3, "parents", 1000, seed=1)  # fmt: skip
    wrong = dict(gw_rows[0], answer_nodes=gw_rows[0]["answer_nodes"] + ["ffffffffff"])  # a wrong ground truth
    _write_parquet(data / "graphwalks.parquet", gw_rows + [wrong])
    out = tmp_path / "out"
    argv = ["eval", "reference", "--backend", "reference", "--data", str(data), "--out", str(out), "--needles", "2"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["mrcr"]["kind"] == "local"
    assert results["data"]["mrcr"]["n_items"] == 2 and results["data"]["mrcr"]["filtered"] == 2  # 4-needle rows
    assert [s["id"] for s in results["data"]["mrcr"]["skipped"]] == ["mrcr/4"]
    assert results["data"]["mrcr"]["skipped"][0]["reason"].startswith("bad row:")
    summary = results["models"]["reference"]["summary"]
    assert summary["mrcr"]["overall"] == {"score": 100.0, "n": 2}
    assert summary["graphwalks"]["overall"]["n"] == 7
    # the solver disagrees with the corrupted row only: it lowers the mean below 100
    assert summary["graphwalks"]["by_group"]["parents"] == {"score": 100.0, "n": 3}
    assert 90 < summary["graphwalks"]["by_group"]["bfs"]["score"] < 100


def test_max_context_and_bad_columns(tmp_path, capsys):
    data = tmp_path / "data"
    _write_parquet(data / "gw.parquet", graphwalks.generate_graphwalks(2, "bfs", 3000, seed=2))
    out = tmp_path / "out"
    assert main(["eval", "r", "--backend", "reference", "--data", str(data), "--benchmarks", "graphwalks", "--max-context", "2000", "--out", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["graphwalks"]["n_items"] == 0
    assert all("> --max-context 2000" in s["reason"] for s in results["data"]["graphwalks"]["skipped"])

    _write_parquet(tmp_path / "bad" / "x.parquet", [{"question": "q", "answer": "a"}])
    assert main(["eval", "r", "--backend", "reference", "--data", str(tmp_path / "bad"), "--out", str(out)]) == 1
    assert "match neither benchmark" in capsys.readouterr().err


def test_hub_offline_fails_clearly_and_auto_falls_back(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["eval", "r", "--backend", "reference", "--out", str(out), "--n", "1", "--lengths", "1300"]
    assert main([*base, "--data", "hub", "--benchmarks", "graphwalks"]) == 1
    err = capsys.readouterr().err
    assert "openai/graphwalks" in err and "HF_HUB_OFFLINE" in err and "--data generated" in err

    assert main([*base, "--benchmarks", "mrcr"]) == 0  # --data auto
    printed = capsys.readouterr().out
    assert "using GENERATED mrcr data instead" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["mrcr"]["kind"] == "generated"
    assert results["models"]["r"]["summary"]["mrcr"]["overall"] == {"score": 100.0, "n": 3}


def test_general_benchmarks_go_through_a_harness(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["eval", "outputs/qwen3-acc", "--benchmarks", "gpqa,ifeval", "--backend", "vllm", "--tensor-parallel-size", "8", "--out", str(out)]  # fmt: skip
    assert main([*argv, "--run-harness"]) == 0
    printed = capsys.readouterr().out
    assert "lighteval vllm" in printed and "'lighteval|gpqa:diamond|0,extended|ifeval|0'" in printed
    outcome = json.loads((out / "harness.json").read_text())["qwen3-acc"]
    assert outcome["ran"] is False and "not installed" in outcome["note"]  # no harness in this environment

    argv_lm = harness.command("m", ["mmlu-pro", "aime"], "lm-eval", "o", backend="openai", base_url="http://h:8000/v1")
    assert argv_lm[:5] == ["lm_eval", "--model", "local-chat-completions", "--model_args", "model=m,base_url=http://h:8000/v1/chat/completions"]  # fmt: skip
    assert argv_lm[argv_lm.index("--tasks") + 1] == "mmlu_pro,aime25"
    assert harness.expand(["general"]) == ["gpqa", "mmlu-pro", "aime", "ifeval"]
    assert main(["eval", "m", "--benchmarks", "mmlu", "--out", str(out)]) == 1
    assert "unknown benchmark" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--names", "a,b"], ["--chat-template-kwargs", "{bad"]])
def test_bad_options_are_clear_errors(flag, tmp_path, capsys):
    assert main(["eval", "m", "--backend", "reference", "--data", "generated", *flag, "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("acc eval: error:")
