"""Malformed benchmark rows in `acc eval`: every kind is that row's skip with the exception type in its reason, the
valid rows beside them are evaluated, and rows = prompts + skipped + filtered."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from acc_hf.cli import main
from acc_hf.eval import data, graphwalks, mrcr

DEEP = "[" * 200_000 + "]" * 200_000  # deeper than the JSON parser can follow: RecursionError


class Counter:
    """The bundled tokenizer's counts, except that a text holding "\\x00boom" makes the tokenizer raise."""

    name = "boom-counter"

    def __init__(self):
        self.inner = data.as_counter(None)

    def count_batch(self, texts):
        if any("\x00boom" in t for t in texts):
            raise RuntimeError("tokenizer crashed")
        return self.inner.count_batch(texts)

    def count(self, text):
        return self.count_batch([text])[0]


def mrcr_rows():
    good = mrcr.generate_mrcr(2, 2, 1500, seed=3)
    messages = json.loads(good[0]["prompt"])
    boom = json.dumps([dict(messages[0], content=messages[0]["content"] + "\x00boom"), *messages[1:]])
    bad = [
        dict(good[0], prompt=DEEP),  # RecursionError
        dict(good[0], prompt="{not json"),  # JSONDecodeError
        dict(good[0], prompt=json.dumps([{"role": "robot", "content": "hi"}])),  # ValueError: not chat messages
        dict(good[0], prompt=None),  # TypeError
        {k: v for k, v in good[0].items() if k != "answer"},  # KeyError
        dict(good[0], n_needles="many"),  # ValueError
        dict(good[0], n_needles=float("inf")),  # OverflowError
        dict(good[0], n_needles=0),
        dict(good[0], random_string_to_prepend=""),  # an empty prefix would make every response "start" with it
        ["not", "a", "mapping"],  # TypeError
        dict(good[1], prompt=boom),  # the tokenizer raises on it
    ]
    return good + bad


def test_every_malformed_row_is_a_skip_with_its_exception_type():
    es = data.make_set("mrcr", mrcr_rows(), "test", Counter())
    assert [it.id for it in es.items] == ["mrcr/0", "mrcr/1"]
    reasons = {s["id"]: s["reason"] for s in es.skipped}
    assert len(reasons) == 11 and es.balanced and es.n_rows == 13
    expected = {
        "mrcr/2": "bad row: RecursionError",
        "mrcr/3": "bad row: JSONDecodeError",
        "mrcr/4": "bad row: ValueError: prompt is not a JSON list",
        "mrcr/5": "bad row: TypeError",
        "mrcr/6": "bad row: KeyError: 'answer'",
        "mrcr/7": "bad row: ValueError",
        "mrcr/8": "bad row: OverflowError",
        "mrcr/9": "bad row: ValueError: n_needles must be >= 1",
        "mrcr/10": "bad row: ValueError: answer and random_string_to_prepend",
        "mrcr/11": "bad row: TypeError: a row is a mapping",
        "mrcr/12": "token count failed: RuntimeError: tokenizer crashed",
    }
    for item_id, prefix in expected.items():
        assert reasons[item_id].startswith(prefix), (item_id, reasons[item_id])

    good = graphwalks.generate_graphwalks(2, "bfs", 1000, seed=3)
    bad = [
        dict(good[0], problem_type="dfs"),
        dict(good[0], answer_nodes=["ab", None]),
        dict(good[0], prompt=""),
        dict(good[0], answer_nodes="ab, cd"),
    ]
    es = data.make_set("graphwalks", good + bad, "test", Counter(), problem_types=["parents"])
    assert es.items == [] and es.filtered == 2 and len(es.skipped) == 4 and es.balanced
    assert all(s["reason"].startswith("bad row: ValueError") for s in es.skipped)


def _write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_acc_eval_goes_on_past_bad_rows_and_a_grader_that_raises(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "data"
    good = mrcr.generate_mrcr(3, 2, 1500, seed=4)
    bad = [dict(good[0], prompt=DEEP), dict(good[0], prompt="{not json"), dict(good[0], n_needles=0)]
    _write_parquet(folder / "mrcr.parquet", good + bad)
    real_grade = data.grade_item

    def grade_item(item, response):
        if item.id == "mrcr/1":
            raise ZeroDivisionError("grader bug")
        return real_grade(item, response)

    monkeypatch.setattr(data, "grade_item", grade_item)
    out = tmp_path / "out"
    argv = ["eval", "reference", "--backend", "reference", "--data", str(folder), "--benchmarks", "mrcr"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mrcr: 6 rows from local parquet" in printed and "= 3 prompts + 3 skipped + 0 filtered out" in printed
    results = json.loads((out / "results.json").read_text())
    info = results["data"]["mrcr"]
    assert info["n_rows"] == 6 and info["balanced"] and info["n_items"] == 3
    assert [s["reason"].split(":")[1].strip() for s in info["skipped"]] == [
        "RecursionError",
        "JSONDecodeError",
        "ValueError",
    ]
    model = results["models"]["reference"]
    assert model["grading_skipped"] == [{"id": "mrcr/1", "reason": "grading failed: ZeroDivisionError: grader bug"}]
    assert model["summary"]["mrcr"]["overall"] == {"score": 100.0, "n": 2}
