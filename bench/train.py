"""Training throughput and LM-head memory of ACCTrainer, measured side by side in one run on the same data.

    python bench/train.py [--samples 96] [--max-length 2048] [--lm-seq-len 8192] [--vocab 151936]

Prints JSON lines:

1. `throughput` (one line per layout): the tiny Qwen3-MoE trained for one epoch over the same samples (random token
   ids, lengths log-uniform between max_length/16 and max_length like ACC's 2k-128k budgets scaled down, the last 15%
   of each sample as its completion), with
   * `packed`: BFD packing into padding-free rows of max_length, 1 row per micro-batch + gradient accumulation 4
     (the layout ACCConfig defaults to: with sdpa the block-diagonal mask is dense in the row length);
   * `padded`: the same samples in random batches of 4, padded to the longest of the batch (TRL's default collator).
   Real tokens per second exclude the first optimizer step (one-time warm-up); the padding fraction is the share of
   pad positions in the batches the model ran on.
2. `lm_head_memory` (one line per loss): one forward + backward at `--lm-seq-len` tokens with a `--vocab` vocabulary
   (Qwen3's 151936) through TRL's fused LM head (tiles, logits never materialized) and through plain logits
   (transformers' loss on the full [tokens, vocab] logits). Peak memory above the model and inputs: on CUDA
   `torch.cuda.max_memory_allocated`; on CPU the peak resident set size of a fresh process per variant (ru_maxrss
   minus the RSS before the step). On CPU the sequence length is lowered, and said so, when the plain-logits variant
   would not fit in half of the available memory.
3. `long_context` (one line per row length and activation-checkpointing setting): one optimizer step of the tiny
   Qwen3-MoE through ACCTrainer on a single packed row of `--long-lengths` tokens (4 samples of a quarter of the row
   each, position ids restarting per sample, the last 15% of each sample its completion), in a fresh process per
   variant: seconds, tokens/s, peak memory above the trainer's state before the step (CUDA: max allocated; CPU: peak
   RSS), and the router's token count (each token once, checkpointing or not). On CPU, sdpa gets the block-diagonal
   mask as a dense T x T bool tensor and makes an fp32 copy of it in every attention call (4 GiB at 32k), which
   backward keeps per layer unless activation checkpointing recomputes it: memory grows about as T^2 (the summary's
   exponent between lengths: 1 = linear, 2 = quadratic). Defaults 8k, 16k, 32k; without checkpointing only up to 16k
   on CPU (`--long-no-ckpt-max`; 32k without it peaked at 9.4 GiB). This part takes about 1.5 minutes on 2 idle CPU
   cores (`make bench` about 4 in all). `--attn-backends` and `--liger` add kernel choices side by side, each
   against the first (tokens/s and memory ratios, loss difference); kernels this machine cannot run are skipped with
   the reason, and a variant that fails (out of memory) is reported as an error line.
4. `summary`: the ratios.

`--gpu-table` (`make gpu-check`, CUDA only) runs instead one ACCTrainer step (the second of two) per row length
(32k, 64k, 128k) and kernel choice (`--kernels`: sdpa, flex_attention, torch_varlen, flash_attention_2 where
installed, Liger off / on) on a Qwen3-MoE sized for one GPU (`GPU_MODEL`, random weights), and prints one markdown
table: tokens/s, peak memory, MFU (model FLOPs / the GPU's dense bf16 peak) and ratios to the first kernel.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ---- throughput: packed vs padded ------------------------------------------------------------------------------------


def length_mix(n: int, max_length: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    low = math.log(max(32, max_length // 16))
    return [int(math.exp(rng.uniform(low, math.log(max_length)))) for _ in range(n)]


def token_samples(lengths: list[int], vocab: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for n in lengths:
        completion = max(1, int(0.15 * n))
        rows.append(
            {
                "input_ids": [rng.randrange(16, vocab) for _ in range(n)],
                "completion_mask": [0] * (n - completion) + [1] * completion,
            }
        )
    return rows


def run_layout(name: str, rows: list[dict], out_dir: str, max_length: int, packed: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from acc_hf import ACCConfig, ACCTrainer
    from acc_hf.tiny import tiny_model, tiny_tokenizer

    class Counting(ACCTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            real = int(inputs["attention_mask"].sum()) if "attention_mask" in inputs else inputs["input_ids"].numel()
            step = self.state.global_step
            tokens[step] = tokens.get(step, 0) + real
            positions[step] = positions.get(step, 0) + inputs["input_ids"].numel()
            return super().training_step(model, inputs, num_items_in_batch)

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds[state.global_step - 1] = time.perf_counter() - self.start

    tokens, positions, seconds = {}, {}, {}
    on_gpu = torch.cuda.is_available()
    args = ACCConfig(
        output_dir=out_dir,
        max_length=max_length,
        packing=packed,
        padding_free=packed,
        per_device_train_batch_size=1 if packed else 4,
        gradient_accumulation_steps=4 if packed else 1,
        num_train_epochs=1,
        learning_rate=1e-3,
        bf16=on_gpu,
        use_cpu=not on_gpu,
        activation_checkpointing=False,
        router_stats=False,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    model = tiny_model(seed=0)
    trainer = Counting(model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tiny_tokenizer())
    trainer.add_callback(StepTimer())
    trainer.train()
    steps = sorted(seconds)[1:]  # the first step carries one-time costs
    measured_tokens = sum(tokens[s] for s in steps)
    return {
        "bench": "throughput",
        "layout": name,
        "device": "cuda" if on_gpu else "cpu",
        "attention": trainer.attn_implementation,
        "rows_per_micro_batch": args.per_device_train_batch_size,
        "grad_accum": args.gradient_accumulation_steps,
        "optimizer_steps": len(seconds),
        "real_tokens": sum(tokens.values()),
        "positions": sum(positions.values()),
        "padding_fraction": round(1 - sum(tokens.values()) / sum(positions.values()), 4),
        "row_fill": round(trainer.data_stats["train"].get("fill") or 0.0, 4) if packed else None,
        "tokens_per_s": round(measured_tokens / sum(seconds[s] for s in steps), 1),
    }


# ---- LM-head memory: fused vs plain logits ---------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def lm_head_step(variant: str, seq_len: int, vocab: int, queue) -> None:
    import torch
    from transformers import Qwen3MoeForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from acc_hf.tiny import tiny_config

    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    torch.manual_seed(0)
    model = Qwen3MoeForCausalLM(tiny_config(vocab_size=vocab)).to(device, torch.bfloat16 if on_gpu else torch.float32)
    if variant == "fused":
        add_fused_lm_head(model, outputs=("log_probs",))
    ids = torch.randint(16, vocab, (1, seq_len), device=device)
    model.train()
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = rss_bytes()
    start = time.perf_counter()
    if variant == "fused":
        loss = model(input_ids=ids, labels=ids, fused_lm_head=True).loss
    else:
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    if on_gpu:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    queue.put({"seconds": time.perf_counter() - start, "peak_bytes": peak, "loss": loss.item()})


def in_fresh_process(target, *args, timeout: float | None = None) -> dict:
    """`target(*args, queue)` in a new process, so that its peak RSS is its own. The processes fork from a server
    that imported torch, transformers and TRL once (and ran no torch op, so forking is safe): each measurement starts
    in a fraction of a second instead of a full import. A process still running after `timeout` seconds is ended
    and reported as an error."""
    import queue as queue_module

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "transformers", "trl", "acc_hf.acc_trainer"])
    queue = ctx.Queue()
    proc = ctx.Process(target=_report_errors, args=(target, *args, queue))
    proc.start()
    start = time.monotonic()
    while True:  # a variant that dies (killed for memory) or runs out of time must not hang the benchmark
        try:
            result = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                result = {"error": f"the process died (exit code {proc.exitcode}; killed for memory?)"}
                break
            if timeout is not None and time.monotonic() - start > timeout:
                proc.kill()
                result = {"error": f"stopped after {timeout:.0f} s (the benchmark's deadline)"}
                break
    proc.join()
    return result


def _report_errors(target, *args) -> None:
    """Run `target(*args)`; an exception (CUDA out of memory, a kernel that does not support the model) is reported
    as that variant's result instead of stopping the benchmark."""
    queue = args[-1]
    try:
        target(*args)
    except Exception as err:  # noqa: BLE001 - reported, not swallowed
        queue.put({"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"})


# ---- long context: one step on one packed row ------------------------------------------------------------------------


def long_context_step(
    seq_len: int, checkpointing: bool, attn_backend: str, liger: bool, queue, model_size: str = "tiny", steps: int = 1
) -> None:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from acc_hf import ACCConfig, ACCTrainer
    from acc_hf.tiny import tiny_model, tiny_tokenizer

    class Measure(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if on_gpu:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() if on_gpu else rss_bytes()
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if on_gpu:
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() - self.base
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.base
            result.update(seconds=time.perf_counter() - self.start, peak_bytes=peak)  # the last step's

    on_gpu = torch.cuda.is_available()
    result = {}
    model = tiny_model(seed=0) if model_size == "tiny" else gpu_model()
    lengths = [seq_len // 4] * 3 + [seq_len - 3 * (seq_len // 4)]  # 4 samples fill the row
    rows = token_samples(lengths, len(tiny_tokenizer()), seed=seq_len)
    with tempfile.TemporaryDirectory() as tmp:
        args = ACCConfig(
            output_dir=tmp, max_length=seq_len, max_steps=steps, learning_rate=1e-3, bf16=on_gpu, use_cpu=not on_gpu,
            activation_checkpointing=checkpointing, attn_backend=attn_backend, use_liger_kernel=liger,
            router_stats=True, router_heatmap=False, report_to="none",
            save_strategy="no", logging_strategy="steps", logging_steps=1, disable_tqdm=True, dataloader_num_workers=0,
        )  # fmt: skip
        trainer = ACCTrainer(
            model, args=args, train_dataset=Dataset.from_list(rows * steps), processing_class=tiny_tokenizer()
        )
        trainer.add_callback(Measure())
        trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h][-1]
    result.update(
        rows=trainer.data_stats["train"]["packed_rows"], tokens=trainer.data_stats["train"]["tokens"] // steps,
        router_tokens=logged.get("router/tokens"), loss=logged["loss"], attention=trainer.attn_implementation,
    )  # fmt: skip
    queue.put(result)


def available_bytes() -> int:
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) * 1024


def cpu_seq_len(requested: int, vocab: int) -> tuple[int, str | None]:
    """Largest power-of-two length <= requested whose plain-logits step fits in 70% of the available memory
    (measured: about 3.0 fp32 copies of the [tokens, vocab] logits: logits, log-softmax, and their gradient)."""
    budget = 0.7 * available_bytes()
    need = lambda n: 3.05 * n * vocab * 4  # noqa: E731
    seq_len = requested
    while seq_len > 512 and need(seq_len) > budget:
        seq_len //= 2
    if seq_len == requested:
        return seq_len, None
    return seq_len, f"lowered from {requested}: plain logits would need ~{need(requested) / 2**30:.1f} GiB"


def kernel_name(kernel: tuple[str, bool], checkpointing: bool | None = None) -> str:
    backend, liger = kernel
    words = [backend] + (["liger"] if liger else [])
    if checkpointing is not None:
        words.append("ckpt" if checkpointing else "no ckpt")
    return " ".join(words)


def long_context(args) -> dict:
    """One ACCTrainer step per (length, kernels, checkpointing) variant, each in a fresh process; the summary part."""
    import torch

    from acc_hf.kernels import select_kernels

    on_gpu = torch.cuda.is_available()
    no_ckpt_max = None if on_gpu else args.long_no_ckpt_max
    kernels = []  # (attn_backend, liger)
    for backend in args.attn_backends.split(","):
        for liger in (value == "on" for value in args.liger.split(",")):
            try:
                select_kernels(backend, liger)  # the same up-front check ACCTrainer makes
                kernels.append((backend, liger))
            except ValueError as err:
                emit({"bench": "long_context", "attn_backend": backend, "liger": liger, "skipped": str(err)})
    long = {}  # (seq_len, kernel, checkpointing) -> measurement
    for seq_len in (int(n) for n in args.long_lengths.split(",")):
        for kernel in kernels:
            for ckpt in (False, True):
                if not ckpt and no_ckpt_max is not None and seq_len > no_ckpt_max:
                    continue
                m = in_fresh_process(long_context_step, seq_len, ckpt, *kernel)
                line = {"bench": "long_context", "seq_len": seq_len, "activation_checkpointing": ckpt,
                        "device": "cuda" if on_gpu else "cpu", "attn_backend": kernel[0], "liger": kernel[1]}  # fmt: skip
                if "error" in m:
                    emit({**line, "error": m["error"]})
                    continue
                long[seq_len, kernel, ckpt] = m
                emit({**line, "attention": m["attention"], "packed_rows": m["rows"],
                      "router_tokens": m["router_tokens"], "seconds": round(m["seconds"], 2),
                      "tokens_per_s": round(seq_len / m["seconds"], 1), "peak_gib": round(m["peak_bytes"] / 2**30, 3),
                      "bool_mask_gib": round(seq_len**2 / 2**30, 3), "loss": round(m["loss"], 4)})  # fmt: skip
    summary = {
        "long_context_peak_gib": {
            f"{n} {kernel_name(k, c)}": round(m["peak_bytes"] / 2**30, 2) for (n, k, c), m in long.items()
        },
        "long_context_memory_exponent": {},  # memory ~ T^e between consecutive lengths: e = 1 linear, 2 quadratic
    }
    for k in kernels:
        for c in (False, True):
            peaks = sorted((n, m["peak_bytes"]) for (n, k2, c2), m in long.items() if (k2, c2) == (k, c))
            if len(peaks) > 1:
                summary["long_context_memory_exponent"][kernel_name(k, c)] = [
                    round(math.log(b / a) / math.log(y / x), 2) for (x, a), (y, b) in zip(peaks, peaks[1:])
                ]
    if len(kernels) > 1:  # every other kernel choice against the first, at the same length and checkpointing
        ref = kernels[0]
        summary[f"long_context_vs_{kernel_name(ref)}"] = {
            f"{n} {kernel_name(k, c)}": {
                "tokens_per_s": round(long[n, ref, c]["seconds"] / m["seconds"], 2),
                "peak_memory": round(m["peak_bytes"] / long[n, ref, c]["peak_bytes"], 2),
                "loss_delta": round(m["loss"] - long[n, ref, c]["loss"], 4),
            }
            for (n, k, c), m in long.items()
            if k != ref and (n, ref, c) in long
        }
    return summary


# ---- GPU table: attention kernels x Liger on a GPU-sized Qwen3-MoE (`make gpu-check`) ---------------------------------

# Qwen3-30B-A3B's layer shapes (hidden 2048, 32 query / 4 K/V heads of 128, 128 experts of 768, top-8, 151,936-token
# vocabulary) with 8 layers and 64 experts: ~3.2B parameters, bf16 weights + AdamW states ~26 GiB, so that a 128k-token
# packed row with activation checkpointing fits one 80 GB GPU. Random weights: nothing is downloaded.
GPU_MODEL = dict(
    hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_hidden_layers=8, num_attention_heads=32,
    num_key_value_heads=4, head_dim=128, num_experts=64, num_experts_per_tok=8, decoder_sparse_step=1,
    norm_topk_prob=True, router_aux_loss_coef=0.001, vocab_size=151936, max_position_embeddings=131072,
    rope_theta=1_000_000.0, tie_word_embeddings=False, use_cache=False,
)  # fmt: skip
PEAK_BF16_FLOPS = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}  # dense bf16 tensor-core peaks (spec sheets)


def gpu_model():
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    torch.manual_seed(0)
    with torch.device("cuda"):
        return Qwen3MoeForCausalLM._from_config(Qwen3MoeConfig(**GPU_MODEL), dtype=torch.bfloat16)


def training_flops(config: dict, lengths: list[int]) -> float:
    """Model FLOPs of one training step (forward + backward = 3x forward; recomputation not counted) on a packed row
    of samples of `lengths`: 6 x tokens x active matmul parameters (attention projections, the top-k experts, the
    router, the LM head), plus causal attention, 6 x n^2 x heads x head_dim per layer for a sample of n tokens."""
    h, d, layers = config["hidden_size"], config["head_dim"], config["num_hidden_layers"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d
    attention = h * q + 2 * h * kv + q * h
    experts = config["num_experts_per_tok"] * 3 * h * config["moe_intermediate_size"] + h * config["num_experts"]
    dense = 6 * sum(lengths) * (layers * (attention + experts) + h * config["vocab_size"])
    return dense + sum(6 * n * n * q * layers for n in lengths)


def peak_flops(device_name: str) -> float | None:
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in device_name), None)


def gpu_table(args) -> int:
    """One ACCTrainer step (the second of two; the first compiles and warms up) per row length and kernel choice on
    the GPU-sized model, each in a fresh process; a markdown table with tokens/s, peak memory, MFU and ratios to the
    first kernel at the same length. Variants are skipped, with the reason, once `--deadline-s` is near."""
    import torch

    from acc_hf.kernels import check_liger_available, select_kernels

    if not torch.cuda.is_available():
        emit({"bench": "gpu_table", "skipped": "no CUDA device"})
        return 2
    device = torch.cuda.get_device_name()
    peak = peak_flops(device)
    kernels = []
    for item in args.kernels.split(","):
        backend, _, extra = item.partition("+")
        liger = extra == "liger"
        try:
            select_kernels(backend)
            if liger:
                check_liger_available()
            kernels.append((backend, liger))
        except ValueError as err:
            emit({"bench": "gpu_table", "kernels": item, "skipped": str(err)})
    started, rows = time.monotonic(), []
    for seq_len in (int(n) for n in args.long_lengths.split(",")):
        for kernel in kernels:
            left = args.deadline_s - (time.monotonic() - started)
            line = {"bench": "gpu_table", "device": device, "seq_len": seq_len, "kernels": kernel_name(kernel)}
            if left < 20:
                emit({**line, "skipped": f"deadline of {args.deadline_s} s reached"})
                continue
            m = in_fresh_process(long_context_step, seq_len, True, *kernel, "gpu", 2, timeout=left)
            if "error" in m:
                emit({**line, "error": m["error"]})
                rows.append((seq_len, kernel, None))
                continue
            lengths = [seq_len // 4] * 3 + [seq_len - 3 * (seq_len // 4)]
            tflops = training_flops(GPU_MODEL, lengths) / m["seconds"] / 1e12
            m.update(tflops=tflops, mfu=tflops * 1e12 / peak if peak else None)
            emit({**line, "attention": m["attention"], "seconds": round(m["seconds"], 3),
                  "tokens_per_s": round(seq_len / m["seconds"]), "peak_gib": round(m["peak_bytes"] / 2**30, 2),
                  "tflops": round(tflops, 1), "mfu": round(m["mfu"], 3) if peak else None,
                  "loss": round(m["loss"], 4)})  # fmt: skip
            rows.append((seq_len, kernel, m))
    print(markdown_table(rows, device))
    return 0


def markdown_table(rows: list[tuple], device: str) -> str:
    """Rows of (length, kernel, measurement or None); ratios against the first kernel measured at the same length."""
    lines = [
        f"GPU check on {device}: one training step of a packed row (4 samples), Qwen3-MoE 8 layers x 64 experts "
        "(top-8), bf16, activation checkpointing",
        "",
        "| tokens | kernels | tokens/s | peak GiB | MFU | tokens/s vs first | peak vs first | loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    first: dict[int, dict] = {}
    for seq_len, kernel, m in rows:
        if m is None:
            lines.append(f"| {seq_len} | {kernel_name(kernel)} | failed | | | | | |")
            continue
        ref = first.setdefault(seq_len, m)
        speed, memory = ref["seconds"] / m["seconds"], m["peak_bytes"] / ref["peak_bytes"]
        mfu = f"{m['mfu']:.3f}" if m.get("mfu") is not None else "-"
        lines.append(
            f"| {seq_len} | {kernel_name(kernel)} | {seq_len / m['seconds']:.0f} | {m['peak_bytes'] / 2**30:.1f} | "
            f"{mfu} | {speed:.2f}x | {memory:.2f}x | {m['loss']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--lm-seq-len", type=int, default=8192)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--long-lengths", default="8192,16384,32768", help="packed row lengths for long_context")
    parser.add_argument(
        "--long-no-ckpt-max",
        type=int,
        default=16384,
        help="on CPU, measure without activation checkpointing only up to this length (32k without it: ~9.4 GiB)",
    )
    parser.add_argument(
        "--attn-backends",
        default="auto",
        help="long_context: comma-separated attention backends to compare (auto, sdpa, eager, flex_attention, "
        "torch_varlen, flash_attention_2, flash_attention_3); a GPU's table: --gpu-table",
    )
    parser.add_argument(
        "--liger", default="off", help="long_context: comma-separated off,on: without / with Liger's layer kernels"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gpu-table", action="store_true", help="only the GPU table (GPU-sized Qwen3-MoE, --kernels x --long-lengths)"
    )
    parser.add_argument(
        "--kernels",
        default="sdpa,flex_attention,torch_varlen,flash_attention_2,torch_varlen+liger",
        help="GPU table: comma-separated attention backends, +liger for Liger's layer kernels; the first is the baseline",
    )
    parser.add_argument("--deadline-s", type=float, default=300.0, help="GPU table: start no variant after this")
    parser.add_argument(
        "--parts", default="throughput,lm_head,long_context", help="comma-separated: throughput, lm_head, long_context"
    )
    args = parser.parse_args(argv)
    if args.gpu_table:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if args.long_lengths == parser.get_default("long_lengths"):
            args.long_lengths = "32768,65536,131072"
        return gpu_table(args)
    parts = set(args.parts.split(","))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from acc_hf.tiny import tiny_tokenizer

    lengths = length_mix(args.samples, args.max_length, args.seed)
    rows = token_samples(lengths, len(tiny_tokenizer()), args.seed)
    emit({"bench": "data", "samples": len(rows), "tokens": sum(lengths), "max_length": args.max_length,
          "length_min": min(lengths), "length_median": sorted(lengths)[len(lengths) // 2], "length_max": max(lengths)})  # fmt: skip
    summary, results, memory = {"bench": "summary"}, {}, {}
    if "throughput" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            for name, packed in (("packed", True), ("padded", False)):
                results[name] = run_layout(name, rows, f"{tmp}/{name}", args.max_length, packed)
                emit(results[name])
        summary["packed_over_padded_tokens_per_s"] = round(
            results["packed"]["tokens_per_s"] / results["padded"]["tokens_per_s"], 2
        )
        summary["padding_fraction"] = {name: r["padding_fraction"] for name, r in results.items()}
    if "lm_head" in parts:
        on_gpu = torch.cuda.is_available()
        seq_len, note = (args.lm_seq_len, None) if on_gpu else cpu_seq_len(args.lm_seq_len, args.vocab)
        for variant in ("fused", "plain"):
            m = memory[variant] = in_fresh_process(lm_head_step, variant, seq_len, args.vocab)
            emit({"bench": "lm_head_memory", "loss_path": variant, "seq_len": seq_len, "vocab": args.vocab,
                  "device": "cuda" if on_gpu else "cpu", "peak_gib": round(m["peak_bytes"] / 2**30, 3),
                  "seconds": round(m["seconds"], 2), "loss": round(m["loss"], 4), "note": note})  # fmt: skip
        summary["plain_over_fused_peak_memory"] = round(
            memory["plain"]["peak_bytes"] / memory["fused"]["peak_bytes"], 2
        )
        summary["plain_over_fused_seconds"] = round(memory["plain"]["seconds"] / memory["fused"]["seconds"], 2)
        summary["lm_seq_len"] = seq_len
    if "long_context" in parts:
        summary.update(long_context(args))
    emit(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
