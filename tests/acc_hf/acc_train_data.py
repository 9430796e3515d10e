"""ACC-shaped rows for the trainer tests: every column of `dataset_builder.schema.ACCRecord`, with a question, a
context of key-value facts (one of which answers the question, the rest distractors), and a completion that reads
the answer out of the context, so that a tiny model's loss falls within a few dozen steps."""

from __future__ import annotations

import random
from pathlib import Path

from acc_records import acc_record

from dataset_builder.schema import DOMAINS, Piece

WORDS = "alpha beta gamma delta omega river stone cloud ember frost maple cedar harbor signal vector kernel".split()


def acc_row(i: int, rng: random.Random, domain: str, n_facts: int, verified: bool = True) -> dict:
    keys = [f"{rng.choice(WORDS)}-{rng.randrange(100)}" for _ in range(n_facts)]
    values = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(n_facts)]
    target = rng.randrange(n_facts)
    pieces = [
        Piece(kind="text", title=k, text=f"{k} is {v}.", is_distractor=j != target, n_tokens=8)
        for j, (k, v) in enumerate(zip(keys, values))
    ]
    question = f"What is {keys[target]}?"
    answer = values[target]
    reasoning = f"The context says {keys[target]} is {answer}."
    record = acc_record(
        f"test-{domain}-{i}", domain, question, pieces, answer, reasoning=reasoning, verified=verified,
        n_tokens=8 * n_facts, budget=1024, meta={"test": True},
    )  # fmt: skip
    return record.to_row()


def acc_rows(n: int, seed: int = 0, facts: tuple[int, int] = (2, 6), unverified_every: int = 0) -> list[dict]:
    """`n` rows cycling through the domains; every `unverified_every`-th row is unverified (0: none)."""
    rng = random.Random(seed)
    return [
        acc_row(
            i, rng, DOMAINS[i % len(DOMAINS)], rng.randint(*facts), not (unverified_every and i % unverified_every == 0)
        )
        for i in range(n)
    ]


def write_acc_dataset(out: Path, rows: list[dict]) -> Path:
    """Parquet shards per domain + a card with `configs:` (all, search, swe, sql): `load_dataset(out, "swe")` works."""
    from datasets import Dataset

    from dataset_builder.schema import features

    out.mkdir(parents=True, exist_ok=True)
    configs = [
        "configs:",
        "- config_name: all",
        "  data_files:",
        "  - split: train",
        "    path: data/*/*.parquet",
        "  default: true",
    ]
    for domain in DOMAINS:
        part = [r for r in rows if r["domain"] == domain]
        if not part:
            continue
        (out / "data" / domain).mkdir(parents=True, exist_ok=True)
        Dataset.from_list(part, features=features()).to_parquet(
            str(out / "data" / domain / "train-00000-of-00001.parquet")
        )
        configs += [
            f"- config_name: {domain}",
            "  data_files:",
            "  - split: train",
            f"    path: data/{domain}/*.parquet",
        ]
    (out / "README.md").write_text("---\n" + "\n".join(configs) + "\n---\n\n# test ACC data\n")
    return out


def make_trainer(rows: list[dict], output_dir, model=None, **overrides):
    """An ACCTrainer on `rows` with the tiny Qwen3-MoE, fp32 on CPU, no checkpoints; `overrides` go to ACCConfig."""
    from datasets import Dataset

    from acc_hf import ACCConfig, ACCTrainer
    from acc_hf.tiny import tiny_model, tiny_tokenizer

    settings = dict(
        output_dir=str(output_dir),
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        max_length=1024,
        router_aux_loss_coef=0.0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    settings.update(overrides)
    model = tiny_model() if model is None else model
    return ACCTrainer(
        model, args=ACCConfig(**settings), train_dataset=Dataset.from_list(rows), processing_class=tiny_tokenizer()
    )


class GradCapture:
    """A TrainerCallback that keeps a copy of every gradient just before the (first) optimizer step."""

    def __init__(self):
        from transformers import TrainerCallback

        self.grads: dict[str, object] = {}
        capture = self

        class _Callback(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
                if not capture.grads:
                    capture.grads = {
                        n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None
                    }

        self.callback = _Callback()
