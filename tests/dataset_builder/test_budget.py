import math
import random

import pytest

from dataset_builder.budget import (
    DEFAULT_BUDGETS,
    MAX_LENGTH,
    MIN_BUDGET,
    TEMPLATE_ALLOWANCE,
    BudgetError,
    BudgetRange,
    RowLimit,
    check_length,
    clip,
    default_reasoning_reserve,
    draw_budget,
    fit_budget,
    frame_tokens,
    length_stats,
    parse_budgets,
    parse_range,
    parse_size,
)


def test_defaults_cover_2k_128k_per_domain():
    assert set(DEFAULT_BUDGETS) == {"search", "swe", "sql"}
    for spec in DEFAULT_BUDGETS.values():
        assert MIN_BUDGET <= spec.low < spec.high <= MAX_LENGTH
    assert DEFAULT_BUDGETS["swe"].high == MAX_LENGTH  # swe contexts are the longest
    assert DEFAULT_BUDGETS["sql"].low < DEFAULT_BUDGETS["search"].low < DEFAULT_BUDGETS["swe"].low


def test_one_max_length_constant_from_compile_to_training():
    """acc compile's default --max-length is the max_length the GPU recipe packs to."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    assert MAX_LENGTH == 131072
    assert yaml.safe_load((root / "recipes" / "qwen3_moe.yaml").read_text())["max_length"] == MAX_LENGTH


def test_default_reasoning_reserve_is_16k_or_half_of_a_short_window():
    assert default_reasoning_reserve(MAX_LENGTH) == 16384
    assert default_reasoning_reserve(32768) == 16384
    assert default_reasoning_reserve(16384) == 8192
    assert default_reasoning_reserve(4096) == 2048


def test_draws_are_log_uniform_within_range():
    rng = random.Random(0)
    draws = [draw_budget("search", 0, rng)[0] for _ in range(3000)]
    low, high = DEFAULT_BUDGETS["search"].low, DEFAULT_BUDGETS["search"].high
    assert all(low <= d <= high for d in draws)
    assert all(d % 256 == 0 for d in draws)
    # 8k-64k is three octaves: log-uniform puts about a third of the draws in each
    for a in (low, 2 * low, 4 * low):
        share = sum(a <= d < 2 * a for d in draws) / len(draws)
        assert 0.28 < share < 0.39, (a, share)
    geometric_mean = math.exp(sum(math.log(d) for d in draws) / len(draws))
    assert abs(geometric_mean / math.sqrt(low * high) - 1) < 0.05


def test_draws_are_clipped_to_what_the_row_leaves_for_the_context():
    """swe 16k-128k under --max-length 32768, reserve 8192, a 500-token frame: every draw <= 24076, log-uniform
    below it; a range entirely above the limit collapses to it."""
    limit = RowLimit(32768, 8192, 500)
    assert limit.max_context == 24076
    rng = random.Random(3)
    draws = [draw_budget("swe", 0, rng, limit=limit)[0] for _ in range(2000)]
    assert max(draws) <= 24076 and min(draws) >= 16384
    assert sum(d < 20000 for d in draws) / len(draws) == pytest.approx(
        math.log(20000 / 16384) / math.log(24076 / 16384), abs=0.05
    )
    assert clip(BudgetRange(65536, 131072), 24076) == BudgetRange(24076, 24076)
    assert draw_budget("swe", 0, random.Random(0), limit=RowLimit(4096, 1024, 100)) == (2972, 2972)


def test_draws_are_seeded():
    a = [draw_budget("swe", 0, random.Random(7))[0] for _ in range(3)]
    b = [draw_budget("swe", 0, random.Random(7))[0] for _ in range(3)]
    assert a == b


def test_fixed_budget_and_move_up_to_power_of_two():
    budgets = parse_budgets(["swe=32768"])
    rng = random.Random(1)
    limit = RowLimit(MAX_LENGTH, 0, 0)
    assert draw_budget("swe", 1000, rng, budgets, limit) == (32768, 32768)
    assert draw_budget("swe", 32768, rng, budgets, limit) == (32768, 32768)
    assert draw_budget("swe", 32769, rng, budgets, limit) == (32768, 65536)
    assert draw_budget("swe", 100_000, rng, budgets, limit) == (32768, 131072)
    # with a reserve and a frame, the move-up stops at what the row leaves
    limit = RowLimit(MAX_LENGTH, 16384, 1000)
    assert draw_budget("swe", 100_000, rng, budgets, limit) == (32768, MAX_LENGTH - 16384 - 1000)


def test_gold_that_cannot_fit_the_row_is_rejected_with_the_numbers_not_cut():
    limit = RowLimit(4096, 1024, 300)
    with pytest.raises(BudgetError) as err:
        draw_budget("sql", 2773, random.Random(0), limit=limit)
    assert str(err.value).startswith(
        "gold evidence alone is 2773 tokens, over the 2772 maximum for this record's context (--max-length 4096 - "
        "reasoning reserve 1024 - 300 for question, answer and chat template)"
    )
    assert draw_budget("sql", 2772, random.Random(0), limit=limit) == (2772, 2772)
    assert fit_budget(5000, 4000) == 5000  # fits: unchanged, even when not a power of two
    assert fit_budget(5000, 5001) == 8192
    with pytest.raises(BudgetError, match="over the -100 maximum"):  # the question and answer alone are too long
        fit_budget(0, 1, RowLimit(4096, 1024, 3172))


def test_frame_counts_everything_but_the_context():
    from dataset_builder.tokens import token_counter

    counter = token_counter()
    prompt, completion = (
        "Where was Agnes Pyle born?\n\nBelow are pages.\n\n\n\nAnswer briefly.",
        "<think>\n\n</think>\n\nTollan",
    )
    expected = counter.count(prompt) + counter.count(completion) + TEMPLATE_ALLOWANCE
    assert expected < frame_tokens(counter, prompt, completion) <= expected + 8


def test_check_length_needs_room_for_a_context():
    check_length(4096, 2048)
    with pytest.raises(ValueError, match="leaves less than 2048 tokens"):
        check_length(4096, 2049)
    with pytest.raises(ValueError, match="must be >= 0"):
        check_length(4096, -1)


def test_length_stats():
    assert length_stats(4096, 1024, [100, 4000, 4097]) == {
        "max_length": 4096,
        "reasoning_reserve": 1024,
        "template_allowance": TEMPLATE_ALLOWANCE,
        "longest_row": 4097,
        "rows_over_max_length": 1,
    }
    assert length_stats(None, None, [])["longest_row"] == 0


def test_parse_sizes_ranges_and_overrides(tmp_path):
    assert parse_size("32k") == 32768 and parse_size("4096") == 4096 and parse_size(128) == 128
    assert parse_range("4k:16k") == BudgetRange(4096, 16384)
    assert parse_range([4096, 8192]) == BudgetRange(4096, 8192)
    budgets = parse_budgets(["sql=4096:16384", "swe=32k"])
    assert budgets["sql"] == BudgetRange(4096, 16384)
    assert budgets["swe"] == BudgetRange(32768, 32768)
    assert budgets["search"] == DEFAULT_BUDGETS["search"]
    assert budgets["swe"].describe() == "32768" and budgets["sql"].describe() == "log-uniform 4096-16384"
    f = tmp_path / "budgets.yaml"
    f.write_text("search: 16k\nsql: [2048, 8192]\nswe: '64k:128k'\n")
    budgets = parse_budgets([str(f)])
    assert budgets == {
        "search": BudgetRange(16384, 16384),
        "sql": BudgetRange(2048, 8192),
        "swe": BudgetRange(65536, 131072),
    }
    assert parse_budgets(["swe=256k"], max_length=262144)["swe"] == BudgetRange(262144, 262144)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("video=8k", "unknown domain"),
        ("sql=16k:4k", "low <= high"),
        ("sql=1024", "2048 <= low"),
        ("swe=256k", r"<= 131072 \(--max-length\)"),
        ("sql=lots", "not a token count"),
        ("sql", "expected DOMAIN=SIZE"),
    ],
)
def test_bad_budget_specs_say_why(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_budgets([spec])


def test_bad_yaml_budget_file(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must map domains"):
        parse_budgets([str(f)])
