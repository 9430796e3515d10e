"""`acc traces` against a real HTTP teacher on 127.0.0.1: rows kept within the dataset's max_length (re-fit, never
cutting gold), and every failure of one record (garbage, deep nesting, 5xx, timeouts, a raising verifier or parser)
is that record's reject with the exception type, while the run goes on and attempted = verified + rejected + no_answer.
"""

import json
import re

from acc_records import acc_record
from chat_server import ChatServer, Reply, last_user_text
from test_traces_run import rows, write

from dataset_builder.assemble import Assembler, render_context
from dataset_builder.schema import Piece
from dataset_builder.tokens import token_counter
from dataset_builder.traces import refit
from dataset_builder.traces.run import generate_traces
from dataset_builder.traces.teacher import TeacherConfig, parse_response

COUNTER = token_counter()
GOLD = "Agnes Pyle was born in Tollan in 1871, the daughter of a lighthouse keeper."


def page(i: int, words: int) -> Piece:
    text = " ".join(f"The harbour ledger {i} lists boat number {k} as repaired in spring." for k in range(words // 12))
    return Piece("page", f"https://carrow.example/ledger-{i}", text, is_distractor=True)


def record(name: str, gold_words: int = 0, n_distractors: int = 8):
    """A search record whose pieces and context carry exact token counts, gold in the middle."""
    gold = Piece("page", f"https://carrow.example/{name}", " ".join([GOLD] * max(1, gold_words // 14)))
    pieces = [page(i, 120) for i in range(n_distractors // 2)] + [gold]
    pieces += [page(i, 120) for i in range(n_distractors // 2, n_distractors)]
    pieces = Assembler(counter=COUNTER).with_token_counts(pieces)
    context = render_context(pieces)
    question = f"[{name}] Where was Agnes Pyle born?"
    return acc_record(name, "search", question, pieces, "", gold="Tollan", n_tokens=COUNTER.count(context))


def thinking(words: int) -> str:
    return " ".join(["I compare the ledger pages with the page about Agnes Pyle and her birthplace."] * (words // 14))


def test_traces_refit_rows_to_max_length_and_reject_only_when_gold_cannot_fit(tmp_path):
    records = [record("fits"), record("refit"), record("second"), record("huge", gold_words=700, n_distractors=4)]
    ds = write(tmp_path / "ds", records, max_length=4096, reasoning_reserve=1024)
    before = rows(ds)
    assert all(r["n_tokens"] + 1024 + 100 < 4096 for r in before.values())  # as compiled: room for the reserve
    long_trace, short_trace = thinking(1400), thinking(60)

    def script(body, seen):
        name = re.search(r"\[([\w-]+)\]", last_user_text(body)).group(1)
        if name == "fits":
            return Reply(content="Tollan", reasoning_content=short_trace)
        if name == "second" and body["seed"] == 0:  # the first candidate is wrong, the second long and right
            return Reply(content="Port Wendle", reasoning_content=short_trace)
        return Reply(content="Tollan", reasoning_content=long_trace)

    with ChatServer(script) as server:
        cfg = TeacherConfig(url=server.url, model="t", backoff=0.01, max_retries=1, timeout=10)
        summary = generate_traces(ds, teacher=cfg, k=2, cache_path=tmp_path / "c.sqlite", progress=False)
    after = rows(ds)
    tally = summary.domains["search"]
    assert (tally.attempted, tally.verified, tally.rejected, tally.refitted, tally.over_length) == (4, 3, 1, 2, 1)
    assert tally.balanced and summary.max_length == 4096

    fits = after["fits"]
    assert fits["context"] == before["fits"]["context"] and "refit" not in json.loads(fits["meta"])
    for name in ("refit", "second"):
        row, meta = after[name], json.loads(after[name]["meta"])
        assert row["verified"] and row["reasoning"] == long_trace
        assert meta["row_tokens"] <= 4096 and meta["refit"]["row_tokens_before"] > 4096
        assert (
            0 < meta["refit"]["dropped_distractors"] < 8
            and len(row["pieces"]) == 9 - meta["refit"]["dropped_distractors"]
        )
        assert GOLD in row["context"] and [p["title"] for p in row["pieces"] if not p["is_distractor"]] == [
            f"https://carrow.example/{name}"
        ]
        assert row["n_tokens"] == COUNTER.count(row["context"]) <= row["budget"]
        assert (
            row["prompt"][0]["content"].count(row["context"]) == 1
            and before[name]["context"] not in row["prompt"][0]["content"]
        )
        # kept documents keep their index: the gold page is still document 5 for the trace
        assert meta["refit"]["indices"][[p["is_distractor"] for p in row["pieces"]].index(False)] == 5
        assert '<document index="5" kind="page" title="https://carrow.example/' in row["context"]
        _, total = refit.row_tokens(row, row["completion"][0]["content"], refit.LengthContract(4096, COUNTER))
        assert total == meta["row_tokens"]
    huge = after["huge"]
    why = json.loads(huge["meta"])["traces"]["why"]
    assert not huge["verified"] and huge["context"] == before["huge"]["context"]
    assert "verified, but the row would be" in why and "the gold evidence alone" in why and "does not fit beside" in why
    stats = json.loads((ds / "stats.json").read_text())
    assert stats["traces"]["longest_row"] == max(json.loads(r["meta"]).get("row_tokens", 0) for r in after.values())
    assert "re-fitted (distractors dropped, never gold evidence)" in (ds / "README.md").read_text()


def test_a_dataset_without_a_length_contract_is_left_as_it_was(tmp_path):
    ds = write(tmp_path / "ds", [record("old")])
    with ChatServer(lambda body, seen: Reply(content="Tollan", reasoning_content=thinking(3000))) as server:
        cfg = TeacherConfig(url=server.url, model="t", backoff=0.01, max_retries=0, timeout=10)
        summary = generate_traces(ds, teacher=cfg, k=1, cache_path=tmp_path / "c.sqlite", progress=False)
    assert summary.max_length is None and summary.domains["search"].verified == 1
    assert "refit" not in json.loads(rows(ds)["old"]["meta"])


def test_every_failure_of_one_record_is_its_reject_with_the_type(tmp_path, monkeypatch):
    names = ["ok", "garbage", "deep", "badusage", "down", "slow", "verifier", "parser", "refit"]
    ds = write(tmp_path / "ds", [record(n, n_distractors=2) for n in names], max_length=4096, reasoning_reserve=1024)

    def script(body, seen):
        name = re.search(r"\[([\w-]+)\]", last_user_text(body)).group(1)
        if name == "garbage":
            return Reply(raw=b"\x00\xff not json at all")
        if name == "deep":  # a body nested deeper than the JSON parser can follow: RecursionError
            return Reply(raw=b"[" * 200_000 + b"]" * 200_000)
        if name == "badusage":  # usage of the wrong types: the answer itself is fine
            body = {"choices": [{"message": {"content": "Tollan"}}], "usage": {"prompt_tokens": "many"}}
            return Reply(raw=json.dumps(body).encode())
        if name == "down":
            return Reply(status=503)
        if name == "slow":
            return Reply(content="Tollan", delay=3.0)
        return Reply(content="Tollan", reasoning_content="The page says Tollan.")

    import dataset_builder.traces.run as run_module

    real_verify, real_fit = run_module.verify, refit.fit

    class VerifierBug(Exception):
        pass

    def verify(row, answer, **opts):
        if row["id"] == "verifier":
            raise VerifierBug("boom")
        return real_verify(row, answer, **opts)

    def fit(row, completion, contract):
        if row["id"] == "refit":
            raise MemoryError("tokenizer ran out of memory")
        if row["id"] == "parser":
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return real_fit(row, completion, contract)

    monkeypatch.setattr(run_module, "verify", verify)
    monkeypatch.setattr(refit, "fit", fit)
    with ChatServer(script) as server:
        cfg = TeacherConfig(url=server.url, model="t", backoff=0.01, max_retries=1, timeout=1.0)
        summary = generate_traces(ds, teacher=cfg, k=1, cache_path=tmp_path / "c.sqlite", progress=False)
    tally = summary.domains["search"]
    assert tally.attempted == 9 and tally.balanced
    out = {rid: json.loads(r["meta"])["traces"] for rid, r in rows(ds).items()}
    verified = {rid for rid, r in rows(ds).items() if r["verified"]}
    assert verified == {"ok", "badusage"}
    assert out["garbage"]["status"] == "rejected" and "unreadable response (JSONDecodeError)" in out["garbage"]["why"]
    assert out["deep"]["status"] == "rejected" and "unreadable response (RecursionError)" in out["deep"]["why"]
    assert out["down"]["status"] == "no_answer" and "HTTP 503" in out["down"]["why"]
    assert out["slow"]["status"] == "no_answer" and "timed out" in out["slow"]["why"]
    assert out["verifier"]["status"] == "rejected" and "verifier error: VerifierBug: boom" in out["verifier"]["why"]
    assert out["refit"]["status"] == "rejected" and "MemoryError: tokenizer ran out of memory" in out["refit"]["why"]
    assert "UnicodeDecodeError" in out["parser"]["why"]
    assert (tally.verified, tally.rejected, tally.no_answer) == (2, 5, 2)


def test_parse_response_never_raises():
    deep = "[" * 100_000 + "]" * 100_000
    for body in ("", "null", "[]", '{"choices": 3}', '{"choices": [{"message": null}]}', deep, "\udcff"):
        candidate = parse_response(body, 0)
        assert candidate.error.startswith("unreadable response"), body[:20]
    ok = parse_response('{"choices": [{"message": {"content": "x"}}], "usage": {"completion_tokens": 1e400}}', 0)
    assert ok.ok and ok.content == "x" and ok.completion_tokens == 0
