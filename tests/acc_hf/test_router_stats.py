"""Router telemetry against the model's own ``output_router_logits``, on the tiny Qwen3-MoE (CPU)."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from torch import nn

from acc_hf.moe import find_routers
from acc_hf.router_stats import RouterStats, RouterStatsCallback, plot_router_heatmap
from acc_hf.tiny import tiny_model

N_EXPERTS, TOP_K, PAD = 8, 2, 0


def padded_batch(seed: int, lengths=(11, 6, 9)):
    """Right-padded input_ids [batch, max_len] and attention_mask, with the real rows for reference."""
    gen = torch.Generator().manual_seed(seed)
    rows = [torch.randint(1, 8000, (n,), generator=gen) for n in lengths]
    width = max(lengths)
    ids = torch.full((len(rows), width), PAD)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask, rows


def by_hand(router_logits, mask=None):
    """Counts, probability sums and entropies from the logits the model returns with output_router_logits=True."""
    keep = None if mask is None else mask.reshape(-1).bool()
    counts, prob_sums, entropies, tokens = [], [], [], []
    for logits in router_logits:
        logits = logits.detach()
        probs = torch.softmax(logits.float(), dim=-1)
        if keep is not None:
            probs = probs[keep]
        top = torch.topk(probs, TOP_K, dim=-1).indices
        counts.append(torch.bincount(top.reshape(-1), minlength=N_EXPERTS))
        prob_sums.append(probs.double().sum(0))
        entropies.append(-(probs.double() * probs.double().log()).sum(-1).sum())
        tokens.append(probs.shape[0])
    return torch.stack(counts), torch.stack(prob_sums), torch.stack(entropies), torch.tensor(tokens)


def test_find_routers_on_plain_and_wrapped_models():
    model = tiny_model(0)
    routers = find_routers(model)
    assert [layer for layer, _ in routers] == [0, 1]
    assert routers[1][1] is model.model.layers[1].mlp.gate

    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(tiny_model(0), LoraConfig(target_modules=["q_proj", "v_proj"], r=4))
    assert [layer for layer, _ in find_routers(peft_model)] == [0, 1]

    assert [layer for layer, _ in find_routers(tiny_model(0, mlp_only_layers=[0]))] == [1]
    assert find_routers(nn.Sequential(nn.Linear(4, 4))) == []


def test_statistics_match_output_router_logits_with_padding():
    model = tiny_model(0).train()
    stats = RouterStats(model)
    ids, mask, _ = padded_batch(1)
    stats.set_token_mask(mask)
    out = model(input_ids=ids, attention_mask=mask, labels=ids, output_router_logits=True)

    counts, prob_sums, entropies, tokens = by_hand(out.router_logits, mask)
    window = stats.window
    assert torch.equal(window.assignments, counts)
    assert torch.equal(window.tokens, tokens) and int(tokens[0]) == int(mask.sum())
    torch.testing.assert_close(window.prob_sum, prob_sums, atol=1e-6, rtol=0)
    torch.testing.assert_close(window.entropy_sum, entropies, atol=1e-5, rtol=0)

    fractions = counts.double() / counts.sum(1, keepdim=True)
    torch.testing.assert_close(stats.load_matrix(), fractions, atol=1e-12, rtol=0)
    metrics = stats.compute()
    for layer in (0, 1):
        f = fractions[layer]
        assert metrics[f"router/layer{layer}/max_load"] == pytest.approx(float(f.max() / f.mean()), abs=1e-6)
        assert metrics[f"router/layer{layer}/cv"] == pytest.approx(float(f.std(unbiased=False) / f.mean()), abs=1e-6)
        assert metrics[f"router/layer{layer}/entropy"] == pytest.approx(
            float(entropies[layer] / tokens[layer]), abs=1e-6
        )
        assert metrics[f"router/layer{layer}/dead_experts"] == int((counts[layer] == 0).sum())
    assert metrics["router/tokens"] == int(mask.sum())
    assert metrics["router/max_over_mean"] == max(metrics["router/layer0/max_load"], metrics["router/layer1/max_load"])
    assert 0 < metrics["router/entropy"] <= torch.log(torch.tensor(8.0)).item()
    # The same counts give the model's own load-balancing loss (masked, pooled over layers).
    assert metrics["router/balance_loss"] == pytest.approx(out.aux_loss.item(), abs=1e-6)


def test_padding_is_excluded():
    model = tiny_model(0).train()
    stats = RouterStats(model)
    ids, mask, rows = padded_batch(2)
    stats.set_token_mask(mask)
    model(input_ids=ids, attention_mask=mask)
    padded = stats.window

    stats.reset()
    stats.set_token_mask(None)
    for row in rows:  # only the real tokens, one unpadded sequence at a time
        model(input_ids=row[None])
    assert torch.equal(padded.assignments, stats.window.assignments)
    assert torch.equal(padded.tokens, stats.window.tokens)
    torch.testing.assert_close(padded.prob_sum, stats.window.prob_sum, atol=1e-5, rtol=0)
    torch.testing.assert_close(padded.entropy_sum, stats.window.entropy_sum, atol=1e-5, rtol=0)

    stats.reset()  # without the mask the padding would be counted
    model(input_ids=ids, attention_mask=mask)
    assert int(stats.window.tokens[0]) == ids.numel() > int(mask.sum())

    stats.set_token_mask(mask[:, :-1])
    with pytest.raises(ValueError, match="set_token_mask"):
        model(input_ids=ids, attention_mask=mask)


def run_step(reentrant):
    model = tiny_model(0).train()
    if reentrant is not None:
        model.activation_checkpointing_enable({"use_reentrant": reentrant})  # gradient_checkpointing_enable's new name
    calls = []
    model.model.layers[0].mlp.gate.register_forward_hook(lambda *args: calls.append(1))
    stats = RouterStats(model)
    ids, mask, _ = padded_batch(3)
    stats.set_token_mask(mask)
    model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
    return stats.window, len(calls)


def test_activation_checkpointing_is_not_double_counted():
    plain, plain_calls = run_step(None)
    assert plain_calls == 1
    for reentrant in (False, True):
        window, calls = run_step(reentrant)
        assert calls == 2, "checkpointing should have recomputed the router in backward"
        assert torch.equal(window.assignments, plain.assignments)
        assert torch.equal(window.tokens, plain.tokens)
        torch.testing.assert_close(window.prob_sum, plain.prob_sum, atol=1e-6, rtol=0)


def test_eval_is_skipped():
    model = tiny_model(0).eval()
    stats = RouterStats(model)
    with torch.no_grad():
        model(input_ids=padded_batch(4)[0])
    assert int(stats.window.tokens.sum()) == 0 and stats.compute() == {}


class LinearGateMoE(nn.Module):
    """Older MoE code: the gate is an nn.Linear returning logits only; routing takes top-k of its softmax."""

    def __init__(self):
        super().__init__()
        self.config = type("Config", (), {"num_experts": N_EXPERTS, "num_experts_per_tok": TOP_K})()
        block = nn.Module()
        block.mlp = nn.Module()
        block.mlp.gate = nn.Linear(16, N_EXPERTS)
        block.mlp.shared_expert_gate = nn.Linear(16, 1)  # not a router
        self.layers = nn.ModuleList([block])

    def forward(self, x):
        return self.layers[0].mlp.gate(x)


def test_linear_gate_routes_with_config_top_k():
    torch.manual_seed(0)
    model = LinearGateMoE().train()
    assert [layer for layer, _ in find_routers(model)] == [0]
    stats = RouterStats(model)
    x = torch.randn(3, 5, 16)
    logits = model(x)
    counts, prob_sums, _, _ = by_hand([logits.reshape(-1, N_EXPERTS)])
    assert torch.equal(stats.window.assignments, counts)
    torch.testing.assert_close(stats.window.prob_sum, prob_sums, atol=1e-6, rtol=0)


def reduce_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(tiny_model(0).train())
        stats = RouterStats(model)
        ids, mask, _ = padded_batch(10 + rank, lengths=(7, 12) if rank else (5, 9, 3))
        stats.set_token_mask(mask)
        model(input_ids=ids, attention_mask=mask)
        stats.all_reduce()
        torch.save({"window": stats.window.__dict__, "metrics": stats.compute()}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_all_reduce_sums_counts_over_two_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(reduce_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    model = tiny_model(0).train()
    stats = RouterStats(model)
    for rank, lengths in ((0, (5, 9, 3)), (1, (7, 12))):  # the same data, in one process
        ids, mask, _ = padded_batch(10 + rank, lengths=lengths)
        stats.set_token_mask(mask)
        model(input_ids=ids, attention_mask=mask)
    for rank in (0, 1):
        reduced = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(reduced["window"]["assignments"], stats.window.assignments)
        assert torch.equal(reduced["window"]["tokens"], stats.window.tokens)
        assert int(stats.window.tokens[0]) == 5 + 9 + 3 + 7 + 12
        torch.testing.assert_close(reduced["window"]["prob_sum"], stats.window.prob_sum, atol=1e-6, rtol=0)
        assert reduced["metrics"] == pytest.approx(stats.compute(), abs=1e-6)


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"input_ids": self.rows[i]}


def collate(features):
    """Right-pad to the longest row; padding is masked out of attention and labels."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), PAD)
    mask = torch.zeros(len(features), width, dtype=torch.long)
    for i, f in enumerate(features):
        ids[i, : len(f["input_ids"])] = f["input_ids"]
        mask[i, : len(f["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def recorder_callback():
    """Stands in for a reporting integration: sees each log's dict the way TensorBoard/W&B callbacks do."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def __init__(self):
            self.logs = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append(dict(logs))

    return Recorder()


def make_trainer(tmp_path, merge_in_log: bool):
    from transformers import Trainer, TrainingArguments

    class MergingTrainer(Trainer):
        """The ACCTrainer contract: mask before each forward, router metrics merged into training logs."""

        def compute_loss(self, model, inputs, *args, **kwargs):
            router_callback.set_token_mask(inputs.get("attention_mask"))
            real_tokens.append(int(inputs["attention_mask"].sum()))
            return super().compute_loss(model, inputs, *args, **kwargs)

        def log(self, logs, *args, **kwargs):
            if self.model.training:
                logs.update(router_callback.metrics())
            super().log(logs, *args, **kwargs)

    real_tokens = []  # per training step (one micro-batch each), as the trainer saw them
    gen = torch.Generator().manual_seed(5)
    rows = [torch.randint(1, 8000, (int(n),), generator=gen) for n in torch.randint(4, 16, (8,), generator=gen)]
    model = tiny_model(0)
    router_callback, recorder = RouterStatsCallback(model), recorder_callback()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=2,
        logging_steps=1,
        save_steps=2,
        report_to="none",
        use_cpu=True,
        learning_rate=1e-3,
        disable_tqdm=True,
    )
    cls = MergingTrainer if merge_in_log else Trainer
    trainer = cls(model=model, args=args, train_dataset=ListDataset(rows), data_collator=collate, callbacks=[recorder])
    trainer.add_callback(router_callback)
    return trainer, router_callback, recorder, real_tokens


@pytest.mark.parametrize("merge_in_log", [True, False])
def test_callback_logs_and_saves_with_a_real_trainer(tmp_path, merge_in_log):
    trainer, callback, recorder, real_tokens = make_trainer(tmp_path, merge_in_log)
    trainer.train()

    train_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(train_logs) == 4
    for log in train_logs:
        assert {"router/max_over_mean", "router/cv", "router/entropy", "router/dead_experts"} <= log.keys()
        assert "router/layer1/max_load" in log and log["router/max_over_mean"] >= 1.0
    if merge_in_log:  # the mask was set: each window counts exactly that step's real tokens
        assert [log["router/tokens"] for log in train_logs] == real_tokens
        # integrations registered before the router callback received the scalars too
        assert all("router/cv" in log for log in recorder.logs if "loss" in log)

    for step in (2, 4):
        folder = tmp_path / f"checkpoint-{step}"
        record = json.loads((folder / "router_stats.json").read_text())
        assert record["step"] == step and len(record["cumulative"]["load_matrix"]) == 2
        if merge_in_log:
            assert record["cumulative"]["tokens"] == sum(real_tokens[:step])
        assert (folder / "router_load.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    summary = callback.summary()
    assert summary["through_step"] == 4 and set(summary["layers"]) == {0, 1}
    if merge_in_log:
        assert summary["tokens"] == sum(real_tokens)
    load = torch.tensor(summary["load_matrix"], dtype=torch.float64)
    torch.testing.assert_close(load.sum(1), torch.ones(2, dtype=torch.float64))


def test_callback_without_routers_does_nothing(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        callback = RouterStatsCallback(nn.Sequential(nn.Linear(4, 4)))
    assert "no MoE routers" in caplog.text
    assert callback.metrics() == {}


def test_plot_router_heatmap(tmp_path):
    matplotlib_image = pytest.importorskip("matplotlib.image")
    path = tmp_path / "heat.png"
    plot_router_heatmap(torch.full((3, 8), 1 / 8), path, "uniform", layers=[1, 3, 5])
    assert matplotlib_image.imread(path).ndim == 3
