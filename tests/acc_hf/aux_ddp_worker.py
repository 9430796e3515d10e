"""One optimizer step of ACCTrainer on the tiny Qwen3-MoE with the MoE aux loss at COEF and at 0, keeping the
gradients (before the step, unclipped) and the logged values; rank 0 saves them.

    torchrun --nproc_per_node 2 tests/acc_hf/aux_ddp_worker.py OUT.pt 4:1     # N_SAMPLES:GRAD_ACCUM ...
    run(OUT, [(4, 2)])                                                   # the same micro-batches in one process

Samples have 4 facts (229-268 tokens) and rows hold 560 tokens, so every packed row holds exactly two samples and
N samples make N/2 rows: one step with world x accumulation = N/2 micro-batches of one row consumes all of them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
# acc_train_data, the project (before tests/, whose acc_hf/ folder would otherwise be taken for the package), acc_records
sys.path[:0] = [str(HERE.parent), str(HERE.parents[2]), str(HERE.parents[1])]

COEF = 0.5
ROW_TOKENS = 560


def samples(n: int) -> list[dict]:
    from acc_train_data import acc_rows

    return acc_rows(n, seed=0, facts=(4, 4))


def run(out_path: str, configs: list[tuple[int, int]]) -> None:
    import torch
    from acc_train_data import GradCapture, make_trainer

    from acc_hf.tiny import tiny_model

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n_samples, accum in configs:
            grads, logs = {}, {}
            for coef in (COEF, 0.0):
                capture = GradCapture()
                trainer = make_trainer(
                    samples(n_samples), Path(tmp) / f"{n_samples}-{accum}-{coef}", model=tiny_model(seed=0),
                    max_length=ROW_TOKENS, per_device_train_batch_size=1, gradient_accumulation_steps=accum,
                    max_steps=1, max_grad_norm=0.0, router_aux_loss_coef=coef, logging_steps=1, seed=0,
                )  # fmt: skip
                world = trainer.accelerator.num_processes
                assert len(trainer.train_dataset) == n_samples // 2 == world * accum, (
                    len(trainer.train_dataset),
                    world,
                )
                trainer.add_callback(capture.callback)
                trainer.train()
                grads[coef] = capture.grads
                logs[coef] = next(h for h in trainer.state.log_history if "loss" in h)
            results[(n_samples, accum)] = {
                "world": world,
                "aux_grad": {k: grads[COEF][k] - grads[0.0][k] for k in grads[COEF]},
                "grad": grads[COEF],
                "log": logs[COEF],
                "log_without_aux": logs[0.0],
            }
            is_main = trainer.is_world_process_zero()
    if is_main:
        torch.save(results, out_path)


if __name__ == "__main__":
    run(sys.argv[1], [tuple(int(x) for x in spec.split(":")) for spec in sys.argv[2:]])
