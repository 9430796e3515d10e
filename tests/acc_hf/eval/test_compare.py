"""`acc eval` comparing checkpoints: one table of every model with deltas against the first, the published reference
rows (and --no-reference), each local checkpoint's card, general benchmarks collected from a harness run, and
several runs merged into one report (data settings checked)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
import yaml

from acc_hf.cli import main
from acc_hf.eval import compare

SMALL = ["--data", "generated", "--n", "1", "--lengths", "1000", "--needles", "2,4", "--max-new-tokens", "4"]
PNG = b"\x89PNG\r\n\x1a\n"


def _front_matter(readme: Path) -> dict:
    return yaml.safe_load(readme.read_text().split("---\n")[1])


def _results_by_config(readme: Path, task_prefix: str) -> dict:
    results = _front_matter(readme)["model-index"][0]["results"]
    return {r["dataset"]["config"]: r["metrics"][0]["value"] for r in results if r["task"]["name"].startswith(task_prefix)}  # fmt: skip


def _row(report: str, name: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def _header(report: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith("| model |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


@pytest.fixture
def checkpoints(tiny_checkpoint, tmp_path):
    """Two local checkpoint folders (copies of the tiny model: their cards get written) and the tokenizer both
    runs count with, so that their prompts are the same."""
    return [Path(shutil.copytree(tiny_checkpoint, tmp_path / name)) for name in ("ckpt-solver", "ckpt-tiny")]


def test_two_runs_merge_into_one_report_and_every_local_card(checkpoints, tmp_path, capsys):
    solver_dir, tiny_dir = checkpoints
    common = [*SMALL, "--tokenizer", str(tiny_dir)]
    # run 1: the reference solvers (100 everywhere); run 2, "on another machine": the tiny model through transformers
    assert main(["eval", str(solver_dir), "--backend", "reference", *common, "--out", str(tmp_path / "run1")]) == 0
    assert main(["eval", str(tiny_dir), *common, "--out", str(tmp_path / "run2")]) == 0
    tiny_scores = json.loads((tmp_path / "run2" / "results.json").read_text())["models"]["ckpt-tiny"]["summary"]
    capsys.readouterr()

    out = tmp_path / "merged"
    merge = ["eval", "--merge", str(tmp_path / "run1"), str(tmp_path / "run2" / "results.json"), "--out", str(out)]
    assert main([*merge, "--names", "solver,tiny", "--model-card"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["solver", "tiny"]
    assert [r["models"] for r in results["merged_from"]] == [["solver"], ["tiny"]]
    report = (out / "report.md").read_text()
    header = _header(report)
    assert header[:4] == ["MRCR <=128k", "MRCR 2 needles", "MRCR 4 needles", "MRCR <=4k"]
    assert header[4:] == ["GraphWalks <=128k", "GraphWalks bfs", "GraphWalks parents", "GraphWalks <=4k"]
    assert _row(report, "solver") == ["100.0"] * 8  # the baseline: no deltas
    tiny_mrcr = tiny_scores["mrcr"]["le_128k"]["score"]
    assert _row(report, "tiny")[0] == f"{tiny_mrcr:.1f} ({tiny_mrcr - 100:+.1f})"
    tiny_bfs = tiny_scores["graphwalks"]["le_128k_by_group"]["bfs"]["score"]
    assert _row(report, "tiny")[5] == f"{tiny_bfs:.1f} ({tiny_bfs - 100:+.1f})"
    assert f"merged from `{tmp_path / 'run1' / 'results.json'}`: solver" in report

    # published reference rows, labelled, in the <=128k columns only; deltas of + ACC against the published base
    assert _row(report, "*published*: Qwen3-30B-A3B-Thinking-2507") == ["50.2", *["-"] * 3, "69.9", *["-"] * 3]
    assert _row(report, "*published*: Qwen3-30B-A3B-Thinking-2507 + ACC")[0] == "68.3 (+18.1)"
    assert _row(report, "*published*: Qwen3-30B-A3B-Thinking-2507 + ACC")[4] == "77.5 (+7.6)"
    assert "NOT measured here" in report and "NOT the official sets" in report and "235B" in report
    assert results["reference"] == compare.PUBLISHED

    # plots: one line per model per panel, bars per model, the published values drawn on the overall chart
    assert (out / "score_vs_context.png").read_bytes()[:8] == PNG == (out / "scores_overall.png").read_bytes()[:8]
    assert results["plot_lines"] == {"mrcr": ["solver", "tiny"], "graphwalks": ["solver", "tiny"]}
    assert results["plot_overall"]["bars"] == {"MRCR <=128k": ["solver", "tiny"], "GraphWalks <=128k": ["solver", "tiny"]}  # fmt: skip
    assert len(results["plot_overall"]["reference"]["MRCR <=128k"]) == 2

    # every local checkpoint's card: its own results in its model-index, the comparison table in its text
    assert _results_by_config(solver_dir / "README.md", "MRCR")["<=128k"] == 100.0
    assert _results_by_config(tiny_dir / "README.md", "MRCR")["<=128k"] == tiny_mrcr
    assert _results_by_config(tiny_dir / "README.md", "GraphWalks")["bfs, <=128k"] == tiny_scores["graphwalks"]["le_128k_by_group"]["bfs"]["score"]  # fmt: skip
    for folder, name in ((solver_dir, "solver"), (tiny_dir, "tiny")):
        card = (folder / "README.md").read_text()
        assert card.count("## Comparison with other checkpoints") == 1 and f"This model is **{name}**" in card
        assert _row(card, "solver") == _row(report, "solver") and "*published*" in card
        assert card.index("## Comparison with other checkpoints") < card.index("## Usage")
        assert f"written into {folder / 'README.md'}" in printed

    # merged again without the reference rows: they leave the report and the cards (the section is replaced)
    assert main([*merge, "--names", "solver,tiny", "--model-card", "--no-reference"]) == 0
    report = (out / "report.md").read_text()
    assert "*published*" not in report and json.loads((out / "results.json").read_text())["reference"] is None
    card = (tiny_dir / "README.md").read_text()
    assert "*published*" not in card and card.count("## Comparison with other checkpoints") == 1


def test_merge_refuses_what_does_not_compare(checkpoints, tmp_path, capsys):
    solver_dir, tiny_dir = checkpoints
    common = ["--backend", "reference", *SMALL, "--tokenizer", str(tiny_dir)]
    assert main(["eval", str(solver_dir), *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["eval", str(solver_dir), *common, "--seed", "7", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    a, b = str(tmp_path / "a"), str(tmp_path / "b")

    # the same name twice
    assert main(["eval", "--merge", a, b, "--out", str(tmp_path / "m")]) == 1
    assert "is in more than one merged run" in capsys.readouterr().err
    # other prompts (another seed): refused, naming the setting, unless asked for
    assert main(["eval", "--merge", a, b, "--names", "x,y", "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "evaluated different prompts" in err and "seed: 0 vs 7" in err and "--allow-different-data" in err
    argv = ["eval", "--merge", a, b, "--names", "x,y", "--out", str(tmp_path / "m"), "--allow-different-data"]
    assert main(argv) == 0
    assert "**different data**" in (tmp_path / "m" / "report.md").read_text()
    # a merged folder as --out, models and --merge together, a folder without results
    assert main(["eval", "--merge", a, "--out", a]) == 1
    assert "--out must be a new folder" in capsys.readouterr().err
    assert main(["eval", str(solver_dir), "--merge", a, "--out", str(tmp_path / "m2")]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["eval", "--merge", str(tmp_path), "--out", str(tmp_path / "m3")]) == 1
    assert "no results.json" in capsys.readouterr().err


def test_hub_ids_are_skipped_and_model_card_path_gets_the_last_model(checkpoints, tmp_path, capsys):
    local, _ = checkpoints
    served = tmp_path / "served-card"  # the card folder of a model evaluated by its served name
    models = ["org/base-model", str(local), "my-served-acc"]
    argv = ["eval", *models, "--names", "base,acc,no-distractors", "--backend", "reference", *SMALL]
    assert main([*argv, "--out", str(tmp_path / "out"), "--model-card", str(served)]) == 0
    printed = capsys.readouterr().out
    report = (tmp_path / "out" / "report.md").read_text()
    assert [_row(report, n)[0] for n in ("base", "acc", "no-distractors")] == ["100.0", "100.0 (+0.0)", "100.0 (+0.0)"]
    assert "no model card written for: base (org/base-model: not a local checkpoint folder)" in printed
    assert "my-served-acc" not in printed.split("no model card written for:")[1]  # it went to --model-card PATH
    assert "This model is **acc**" in (local / "README.md").read_text()
    assert "This model is **no-distractors**" in (served / "README.md").read_text()
    assert _results_by_config(served / "README.md", "MRCR")["<=128k"] == 100.0
    assert not Path("org").exists()


def _stub_lighteval(bin_dir: Path) -> None:
    """An executable named lighteval that writes a results file as lighteval does (no harness is installed here)."""
    bin_dir.mkdir()
    script = bin_dir / "lighteval"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        "args = sys.argv[1:]\n"
        "out = pathlib.Path(args[args.index('--output-dir') + 1]); out.mkdir(parents=True, exist_ok=True)\n"
        "acc = 0.25 if 'base-ckpt' in args[1] else 0.5  # args[1]: model_name=...\n"
        "results = {'lighteval|gpqa:diamond|0': {'gpqa_pass@1': acc, 'gpqa_pass@1_stderr': 0.01},\n"
        "           'extended|ifeval|0': {'prompt_level_strict_acc_stderr': 0.02, 'prompt_level_strict_acc': 0.8}}\n"
        "(out / 'results_2026.json').write_text(json.dumps({'results': results}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_general_benchmarks_from_the_harness_join_the_table_and_the_cards(checkpoints, tmp_path, monkeypatch):
    base_dir, acc_dir = checkpoints
    base_dir = base_dir.rename(tmp_path / "base-ckpt")
    _stub_lighteval(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    argv = ["eval", str(base_dir), str(acc_dir), "--names", "base,acc", "--benchmarks", "mrcr,gpqa,ifeval"]
    argv += ["--backend", "reference", *SMALL, "--run-harness", "--out", str(tmp_path / "out"), "--model-card"]
    assert main(argv) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert _header(report)[-2:] == ["GPQA", "IFEval"]
    assert _row(report, "base")[-2:] == ["25.0", "80.0"]
    assert _row(report, "acc")[-2:] == ["50.0 (+25.0)", "80.0 (+0.0)"]
    assert "`gpqa_pass@1` of `lighteval|gpqa:diamond|0`" in report
    assert "`prompt_level_strict_acc` of `extended|ifeval|0`" in report  # the stderr key before it is not a score
    gpqa = [r for r in _front_matter(acc_dir / "README.md")["model-index"][0]["results"] if r["task"]["name"] == "GPQA"]
    assert gpqa[0]["metrics"][0]["value"] == 50.0 and gpqa[0]["dataset"]["type"] == "lighteval|gpqa:diamond|0"
    overall = json.loads((tmp_path / "out" / "results.json").read_text())["plot_overall"]
    assert overall["bars"]["GPQA"] == ["base", "acc"] and "GPQA" not in overall["reference"]


def test_general_scores_reads_both_harnesses():
    lm_eval = {"harness": "lm-eval", "benchmarks": ["mmlu-pro", "aime"], "results": {
        "mmlu_pro": {"alias": "mmlu_pro", "exact_match,custom-extract": 0.61, "exact_match_stderr,custom-extract": 0.004},
        "aime25": {"exact_match,none": 0.4}}}  # fmt: skip
    scores = compare.general_scores(lm_eval)
    assert scores["mmlu-pro"] == {"score": 61.0, "metric": "exact_match,custom-extract", "task": "mmlu_pro"}
    assert scores["aime"]["score"] == 40.0
    assert compare.general_scores({"harness": "lighteval", "benchmarks": ["gpqa"], "ran": False}) == {}
    assert compare.general_scores({"harness": "lighteval", "benchmarks": ["gpqa"], "results": {"other": {"x": 1}}}) == {}  # fmt: skip
