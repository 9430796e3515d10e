"""`ACCTrainer`: TRL's `SFTTrainer` for long-context ACC training of MoE models.

What TRL 1.16 already does and is used as is: BFD packing, padding-free batches with precomputed FlashAttention
varlen boundaries, completion-only labels, the fused LM head (no full logits), and the MoE aux loss added as a
per-micro-batch mean (`coef * aux / accumulation_steps`, added after the cross-entropy is scaled by the world size,
so neither world size nor accumulation scales it; transformers' own `Trainer` + model loss multiplies it by both).

What this class adds:

* ACC records go in directly: only verified rows of the chosen domains are kept; prompt/completion are trained on;
  the agent-SFT view (`acc agent-sft`: `messages` + `tools`) with assistant-only loss.
* Samples longer than `max_length` are dropped before packing, counted, logged and written to the state and card
  (TRL would truncate them, cutting their answer or their question).
* Kernel selection at run time (`acc_hf.kernels`), with Liger checked up front and the path taken logged.
* One way to build the model: given its name (or `tiny:`), the trainer builds it, TRL's way, from
  `model_init_kwargs` with the chosen attention and RoPE scaling; a model instance is checked against them.
* The `use_cache` trap: the cache is switched off in the config and every padding-free batch is checked to carry
  no attention_mask and position_ids that restart per sample; impossible configurations raise (Ulysses with sdpa on
  packed rows, a model window shorter than `max_length`, attention kernels without packed-sequence support).
* MoE router telemetry (`acc_hf.router_stats.RouterStatsCallback`) and optional per-domain loss / token accuracy.
* A model card (`acc_hf.model_card`) with data counts, training settings, router summary and evaluation results.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import SFTTrainer
from trl.data_utils import pack_dataset
from trl.trainer.utils import global_then_local_main_first

from acc_hf.acc_config import ACCConfig, apply_rope_scaling, rope_parameters
from acc_hf.kernels import check_packed_batch, drop_varlen_keys, score_label_positions_only_on_cpu, select_kernels
from acc_hf.model_card import write_model_card
from acc_hf.moe import find_routers
from acc_hf.router_stats import RouterStatsCallback, plot_router_heatmap
from dataset_builder.schema import DOMAINS

logger = logging.getLogger(__name__)

# attention implementations for which transformers keeps packed samples apart (mask from position_ids, or varlen)
PACKED_SAFE_ATTENTION = ("eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3", "torch_varlen")


@dataclass
class ACCCollator:
    """TRL's collator plus the per-token `domain_ids` column (flattened or padded like `input_ids`, -1 on padding),
    and, under Ulysses sequence parallelism, without the 1-D varlen boundaries its data loader cannot shard."""

    inner: Any
    padding_free: bool
    sequence_parallel: bool = False

    def __call__(self, examples: list[dict]) -> dict:
        domains = None
        if examples and "domain_ids" in examples[0]:
            domains = [torch.tensor(ex["domain_ids"], dtype=torch.long) for ex in examples]
            examples = [{k: v for k, v in ex.items() if k != "domain_ids"} for ex in examples]
        batch = self.inner(examples)
        if domains is not None:
            rows = [torch.cat(domains)] if self.padding_free else domains
            width = batch["input_ids"].shape[1]
            batch["domain_ids"] = torch.stack([torch.nn.functional.pad(r, (0, width - len(r)), value=-1) for r in rows])
        if self.sequence_parallel:
            drop_varlen_keys(batch)
        return batch


class _DataStatsCallback(TrainerCallback):
    """Puts the data counts (over-length drops included) into `trainer_state.json`'s log history at train start."""

    def __init__(self, trainer: ACCTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        flat = {
            f"acc/{split}/{key}": value
            for split, stats in self.trainer.data_stats.items()
            for key, value in stats.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        if flat and not any(set(flat) <= set(entry) for entry in state.log_history):
            state.log_history.append({"step": state.global_step, **flat})


class ACCTrainer(SFTTrainer):
    """`SFTTrainer` for ACC data and long-context MoE training; see the module docstring."""

    _tag_names = ["trl", "sft", "acc"]
    _name = "ACC"

    def __init__(
        self,
        model,
        args: ACCConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        **kwargs,
    ):
        if args is None:
            args = ACCConfig(output_dir="acc-model")
        if not isinstance(args, ACCConfig):
            raise TypeError(f"ACCTrainer needs an ACCConfig, got {type(args).__name__}")
        # Up front, before any model or data is loaded: Liger without a GPU, FA2 without flash-attn.
        self.kernel_plan = select_kernels(args.attn_backend, args.use_liger_kernel, args.use_cpu)
        score_label_positions_only_on_cpu()
        self.data_stats: dict[str, dict] = {}
        self.dataset_names: list[str] = []
        self._domain_names: list[str] = list(DOMAINS)
        self._domain_totals: dict[str, torch.Tensor] = {}
        self._capture_outputs = False
        self._captured = None
        # The one place a model is built: from its name, with the chosen attention and RoPE scaling in the
        # `from_pretrained` kwargs (TRL builds it from `args.model_init_kwargs`), or from a tiny config for `tiny:`.
        built_by_trl = isinstance(model, str) and not model.startswith("tiny:")
        if isinstance(model, str):
            init_kwargs = model_init_kwargs(model, args, self.kernel_plan)
            if built_by_trl:
                args.model_init_kwargs = init_kwargs
            else:
                model = build_tiny_model(model, args, init_kwargs)
                if processing_class is None:
                    from acc_hf.tiny import tiny_tokenizer

                    processing_class = tiny_tokenizer()
        if not built_by_trl:
            self._prepare_model(model, args)
        resolve_loss_masks(args, train_dataset)
        super().__init__(
            model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        if built_by_trl:
            self._prepare_model(self.model, args)

        if self.aux_loss_enabled and (self.label_smoother is not None or self.compute_loss_func is not None):
            raise ValueError(
                "label_smoothing_factor / compute_loss_func make TRL 1.16 compute the loss from full logits and leave "
                "the MoE aux loss out; unset them, or set router_aux_loss_coef: 0.0 to train without it knowingly"
            )
        parallelism = self.accelerator.parallelism_config
        self.sequence_parallel = bool(parallelism is not None and getattr(parallelism, "sp_enabled", False))
        attn = getattr(_text_config(self.model), "_attn_implementation", None) or self.kernel_plan.attn_implementation
        self.attn_implementation = attn
        if self.padding_free and attn not in PACKED_SAFE_ATTENTION:
            raise ValueError(
                f"attention implementation {attn!r} has no packed-sequence support in transformers: packed samples "
                f"would attend to each other. Use one of {PACKED_SAFE_ATTENTION}."
            )
        if self.sequence_parallel and self.padding_free and not attn.startswith("flash_attention"):
            raise ValueError(
                f"Ulysses sequence parallelism with {attn!r} attends across packed samples (it sees only "
                "position_ids); use attn_backend flash_attention_2 (and sp_attn_implementation flash_attention_2)."
            )
        if self.sequence_parallel and self.padding_free and self.data_collator.pad_to_multiple_of is None:
            self.data_collator.pad_to_multiple_of = parallelism.sp_size  # Ulysses shards rows into sp_size chunks
        self.data_collator = ACCCollator(self.data_collator, self.padding_free, self.sequence_parallel)

        self.router_callback = None
        if args.router_stats and find_routers(self.model):
            self.router_callback = RouterStatsCallback(self.model, heatmap=args.router_heatmap)
            self.add_callback(self.router_callback)
        self.add_callback(_DataStatsCallback(self))
        # The fused forward's outputs (per-token log-probs, top-1 hits) feed the per-domain metrics.
        self.model.register_forward_hook(self._capture_hook)
        logger.info(self.kernel_plan.describe())
        if self.aux_loss_enabled:
            logger.info(
                "MoE aux loss: coef %s, a per-micro-batch mean (not scaled by world size or accumulation)",
                self.router_aux_loss_coef,
            )

    # ---- model ----------------------------------------------------------------------------------------------------

    def _prepare_model(self, model, args: ACCConfig) -> None:
        config = _text_config(model)
        # A KV cache disables packed-sequence masking: samples would attend to each other silently.
        for cfg in {id(model.config): model.config, id(config): config}.values():
            cfg.use_cache = False
        if getattr(config, "_attn_implementation", None) != self.kernel_plan.attn_implementation:
            model.set_attn_implementation(self.kernel_plan.attn_implementation)
        wanted = rope_parameters(args, config)
        if wanted is not None and (config.rope_parameters or {}).get("rope_type") != wanted["rope_type"]:
            raise ValueError(
                f"rope_scaling_type={args.rope_scaling_type!r} is set but the model was built without it: pass the "
                "model name to ACCTrainer (as `acc train` does), which builds it with RoPE scaled"
            )
        window = getattr(config, "max_position_embeddings", None)
        if args.max_length and window and args.max_length > window:
            raise ValueError(
                f"max_length={args.max_length} exceeds the model's window of {window} positions; extend it with "
                f"rope_scaling_type: yarn and rope_scaling_factor: {math.ceil(args.max_length / window)} "
                f"(or lower max_length)"
            )

    # ---- data -----------------------------------------------------------------------------------------------------

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"ACCTrainer needs a map-style datasets.Dataset for {dataset_name} (it counts the samples it drops); "
                f"got {type(dataset).__name__}. Load without streaming."
            )
        map_kwargs = {"num_proc": args.dataset_num_proc}
        with global_then_local_main_first():
            dataset, stats = self._select_acc_rows(dataset, args, map_kwargs)
        # Tokenize and build completion-only labels with TRL, without truncating and without packing yet.
        prep_args = copy.copy(args)
        prep_args.max_length = None
        prep_args.shuffle_dataset = False
        dataset = super()._prepare_dataset(dataset, processing_class, prep_args, False, formatting_func, dataset_name)
        with global_then_local_main_first():
            dataset = self._drop_over_length(dataset, args.max_length, stats, dataset_name)
            keep = ["input_ids", "labels"]
            if args.log_per_domain and "domain" in dataset.column_names:
                names = self._domain_names
                names += [d for d in sorted(set(dataset["domain"])) if d not in names]
                index = {name: i for i, name in enumerate(names)}
                dataset = dataset.map(
                    lambda ex: {"domain_ids": [index[ex["domain"]]] * len(ex["input_ids"])},
                    desc=f"Adding domain ids to {dataset_name} dataset",
                    **map_kwargs,
                )
                keep.append("domain_ids")
            dataset = dataset.select_columns(keep)
            if packing:
                if args.shuffle_dataset:
                    dataset = dataset.shuffle(seed=args.seed)
                dataset = pack_dataset(
                    dataset, args.max_length, "bfd", {**map_kwargs, "desc": f"Packing {dataset_name}"}
                )
                stats["packed_rows"] = len(dataset)
                stats["fill"] = stats["tokens"] / max(1, len(dataset) * args.max_length)
            if args.shuffle_dataset:
                dataset = dataset.shuffle(seed=args.seed)
        self.data_stats[dataset_name] = stats
        return dataset

    def _select_acc_rows(self, dataset: Dataset, args: ACCConfig, map_kwargs: dict) -> tuple[Dataset, dict]:
        columns = dataset.column_names
        stats: dict[str, Any] = {"rows": len(dataset), "dropped_unverified": 0, "dropped_other_domains": 0}
        if args.only_verified and "verified" in columns:
            dataset = dataset.filter(lambda v: bool(v), input_columns="verified", desc="Keeping verified", **map_kwargs)
            stats["dropped_unverified"] = stats["rows"] - len(dataset)
        domains = args.acc_domains
        if domains is not None:
            if "domain" not in columns:
                raise ValueError(
                    f"acc_configs={args.acc_configs} selects domains but the dataset has no 'domain' column"
                )
            before = len(dataset)
            wanted = set(domains)
            dataset = dataset.filter(
                lambda d: d in wanted, input_columns="domain", desc="Keeping domains", **map_kwargs
            )
            stats["dropped_other_domains"] = before - len(dataset)
        if "prompt" in columns and "completion" in columns:  # ACC / prompt-completion: drop the heavy raw columns
            dataset = dataset.select_columns([c for c in ("prompt", "completion", "domain") if c in columns])
        elif "messages" in columns:  # agent SFT (`acc agent-sft`): the conversation and its tools' JSON schemas
            dataset = dataset.select_columns([c for c in ("messages", "tools", "domain") if c in columns])
        if len(dataset) == 0:
            raise ValueError(f"no training rows left after filtering (verified / acc_configs): {stats}")
        return dataset, stats

    def _drop_over_length(self, dataset: Dataset, max_length: int | None, stats: dict, name: str) -> Dataset:
        lengths = pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_numpy()
        too_long = lengths > max_length if max_length else np.zeros(len(lengths), dtype=bool)
        n_drop = int(too_long.sum())
        stats.update(
            max_length=max_length,
            dropped_over_length=n_drop,
            longest_dropped=int(lengths[too_long].max()) if n_drop else 0,
            samples=int(len(lengths) - n_drop),
            tokens=int(lengths[~too_long].sum()),
        )
        if n_drop:
            logger.warning(
                "%s: dropped %d of %d samples longer than max_length=%d tokens (longest %d); ACC samples are never "
                "truncated (that would cut their question or answer). Raise max_length to keep them.",
                name, n_drop, len(lengths), max_length, stats["longest_dropped"],
            )  # fmt: skip
            if "domain" in dataset.column_names:
                stats["dropped_over_length_per_domain"] = dict(
                    sorted(Counter(np.asarray(dataset["domain"], dtype=object)[too_long]).items())
                )
            dataset = dataset.select(np.flatnonzero(~too_long))
        if "domain" in dataset.column_names:
            stats["per_domain"] = dict(sorted(Counter(dataset["domain"]).items()))  # the samples trained on
        if len(dataset) == 0:
            raise ValueError(f"{name}: every sample is longer than max_length={max_length}; nothing to train on")
        return dataset

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "domain_ids" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "domain_ids"]

    # ---- loss and metrics -----------------------------------------------------------------------------------------

    def _capture_hook(self, module, args, output):
        if self._capture_outputs and self._captured is None:  # the fused forward, not a later logits recompute
            self._captured = output

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        domain_ids = inputs.pop("domain_ids", None)
        if self.padding_free:
            check_packed_batch(inputs, self.attn_implementation, self.sequence_parallel)
        if self.router_callback is not None:
            mask = inputs.get("attention_mask")
            self.router_callback.set_token_mask(None if mask is None else mask.bool())
        self._capture_outputs = domain_ids is not None
        try:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            outputs, self._captured = self._captured, None
        finally:
            self._capture_outputs = False
            self._captured = None
        if domain_ids is not None and outputs is not None and getattr(outputs, "log_probs", None) is not None:
            self._record_domains(domain_ids, outputs, "train" if self.model.training else "eval")
        return result

    @torch.no_grad()
    def _record_domains(self, domain_ids: torch.Tensor, outputs, mode: str) -> None:
        log_probs, mask, top1 = outputs.log_probs, outputs.label_mask, outputs.is_top1
        # The fused head scores position t against label t+1 (or pre-shifted labels under sequence parallelism).
        domains = domain_ids[:, 1:] if domain_ids.shape[1] == log_probs.shape[1] + 1 else domain_ids
        domains = domains.to(log_probs.device)
        sums = torch.zeros(len(self._domain_names), 3, device=log_probs.device, dtype=torch.float64)
        for i in range(len(self._domain_names)):
            sel = mask & (domains == i)
            sums[i, 0] = (-log_probs.double() * sel).sum()
            sums[i, 1] = sel.sum()
            sums[i, 2] = (top1.double() * sel).sum() if top1 is not None else 0.0
        sums = self.accelerator.reduce(sums, reduction="sum").cpu()  # every process's sums, nothing dropped
        self._domain_totals[mode] = self._domain_totals.get(mode, torch.zeros_like(sums)) + sums

    def _domain_metrics(self, mode: str) -> dict[str, float]:
        totals = self._domain_totals.pop(mode, None)
        if totals is None:
            return {}
        prefix = "eval_" if mode == "eval" else ""
        out = {}
        for name, (nll, count, correct) in zip(self._domain_names, totals.tolist()):
            if count > 0:
                out[f"{prefix}domain/{name}/loss"] = nll / count
                out[f"{prefix}domain/{name}/token_accuracy"] = correct / count
                out[f"{prefix}domain/{name}/tokens"] = int(count)
        return out

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        if mode == "train" and self.router_callback is not None:
            logs.update(self.router_callback.metrics())  # a collective: Trainer.log runs on every process
        logs.update(self._domain_metrics(mode))
        super().log(logs, start_time)

    # ---- saving ---------------------------------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        # A saved checkpoint is for inference: the KV cache back on, and no router logits (TRL turned them on for
        # the aux loss; generation with padding + a cache fails on them). Training goes on with its own settings.
        configs = {id(c): c for c in (self.model.config, _text_config(self.model))}.values()
        saved = [(c, c.use_cache, getattr(c, "output_router_logits", None)) for c in configs]
        for config, _, router_logits in saved:
            config.use_cache = True
            if router_logits is not None:
                config.output_router_logits = False
        try:
            super()._save(output_dir, state_dict)
        finally:
            for config, use_cache, router_logits in saved:
                config.use_cache = use_cache
                if router_logits is not None:
                    config.output_router_logits = router_logits

    # ---- model card -----------------------------------------------------------------------------------------------

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None, **kwargs):
        if not self.is_world_process_zero():
            return
        out = Path(self.args.output_dir)
        config = _text_config(self.model)
        base_model = getattr(self.model.config, "_name_or_path", "") or None  # a local path stays out of the metadata
        datasets = list(self.dataset_names) + ([dataset_name] if dataset_name else [])
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        tags = list(dict.fromkeys([*tags, *self._tag_names, "moe", "long-context"]))
        router, heatmap = None, None
        if self.router_callback is not None:
            summary = self.router_callback.summary()
            if summary.get("tokens"):
                router = {k: v for k, v in summary.items() if k not in ("layers", "load_matrix")}
                if self.args.router_heatmap:
                    out.mkdir(parents=True, exist_ok=True)
                    title = f"MoE router load, steps 1-{summary['through_step']}"
                    plot_router_heatmap(
                        summary["load_matrix"], out / "router_load.png", title, self.router_callback.stats.layers
                    )
                    heatmap = "router_load.png"
        write_model_card(
            out,
            model_name=model_name or out.resolve().name,
            repo_id=self.args.hub_model_id or model_name or out.resolve().name,
            base_model=base_model,
            datasets=list(dict.fromkeys(datasets)),
            acc_configs=self.args.acc_configs,
            license=self.args.model_card_license,
            tags=tags,
            data=self.data_stats,
            training=self._training_summary(config),
            kernels=self.kernel_plan.describe(),
            router=router,
            heatmap=heatmap,
            adapter=_adapter_summary(self.model),
        )

    def _training_summary(self, config) -> dict[str, Any]:
        a = self.args
        summary = {
            "steps": self.state.global_step,
            "epochs": a.num_train_epochs if a.max_steps <= 0 else f"max_steps={a.max_steps}",
            "learning rate": f"{a.learning_rate:g} ({_value(a.lr_scheduler_type)}, warmup {a.warmup_steps:g})",
            "optimizer": f"{_value(a.optim)}, weight decay {a.weight_decay:g}",
            "packed row length (max_length)": a.max_length,
            "rows per device x accumulation x processes": (
                f"{a.per_device_train_batch_size} x {a.gradient_accumulation_steps} x {self.accelerator.num_processes}"
            ),
            "packing / padding-free": f"{'bfd' if a.packing else 'no'} / {self.padding_free}",
            "loss": f"completion-only={self.completion_only_loss}, assistant-only={a.assistant_only_loss}, "
            f"{a.loss_type}, fused LM head",
            "MoE aux loss coef": self.router_aux_loss_coef if self.aux_loss_enabled else 0.0,
            "precision": "bf16" if a.bf16 else "fp16" if a.fp16 else "fp32",
            "gradient checkpointing / activation offloading": f"{a.gradient_checkpointing} / {a.activation_offloading}",
            "attention": self.attn_implementation,
            "rope": (config.rope_parameters or {}).get("rope_type", "default"),
            "seed": a.seed,
        }
        if a.rope_scaling_type:
            summary["rope"] = f"{a.rope_scaling_type} x{a.rope_scaling_factor}"
        return summary


def resolve_loss_masks(args: ACCConfig, dataset) -> None:
    """`assistant_only_loss: None` -> on for a conversational `messages` dataset (agent SFT: tool outputs, user and
    system turns carry no loss), off for prompt/completion (ACC: completion-only loss). TRL then masks with the chat
    template's `{% generation %}` blocks, swapping in its training template for the model families it knows."""
    columns = getattr(dataset, "column_names", None) or []
    messages = "messages" in columns and "prompt" not in columns
    if args.assistant_only_loss is None:
        args.assistant_only_loss = messages
    elif messages and not args.assistant_only_loss:
        logger.warning(
            "assistant_only_loss is false on a `messages` dataset: tool outputs, user and system turns are trained on "
            "too (the agent-SFT baseline masks them; leave assistant_only_loss unset)"
        )


def _value(option) -> str:
    return str(getattr(option, "value", option))  # enums of TrainingArguments print as their value


def _adapter_summary(model) -> dict | None:
    """What the card says about a PEFT adapter (method, rank, alpha, target modules, trainable parameters)."""
    config = (getattr(model, "peft_config", None) or {}).get(getattr(model, "active_adapter", "default"))
    if config is None:
        return None
    trainable, total = model.get_nb_trainable_parameters()
    modules, parameters = (getattr(config, key, None) or [] for key in ("target_modules", "target_parameters"))
    targets = sorted([modules] if isinstance(modules, str) else modules) + sorted(parameters)  # parameters: MoE experts
    return {
        "method": "LoRA" if _value(config.peft_type) == "LORA" else _value(config.peft_type),
        "r": getattr(config, "r", None),
        "alpha": getattr(config, "lora_alpha", None),
        "target_modules": targets,
        "trainable": int(trainable),
        "total": int(total),
    }


def _text_config(model):
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    return model.config.get_text_config()


def model_init_kwargs(name: str, args: ACCConfig, plan) -> dict:
    """`args.model_init_kwargs` plus what ACC training decides at build time: the attention implementation of the
    kernel plan, and RoPE scaling as `args` asks (config attributes passed as kwargs override the checkpoint's)."""
    kwargs = dict(args.model_init_kwargs or {})
    asked = kwargs.get("attn_implementation")
    if asked is not None and asked != plan.attn_implementation:
        raise ValueError(
            f"model_init_kwargs asks for attn_implementation={asked!r} but attn_backend={args.attn_backend!r} chose "
            f"{plan.attn_implementation!r}: set attn_backend: {asked} instead (it is checked against this machine)"
        )
    kwargs["attn_implementation"] = plan.attn_implementation
    if args.rope_scaling_type is not None and not name.startswith("tiny:"):
        from transformers import AutoConfig

        remote = {key: kwargs[key] for key in ("revision", "trust_remote_code") if kwargs.get(key) is not None}
        config = AutoConfig.from_pretrained(name, **remote).get_text_config()
        original = args.rope_original_max_position_embeddings or config.max_position_embeddings
        kwargs["rope_parameters"] = rope_parameters(args, config)
        kwargs["max_position_embeddings"] = int(original * args.rope_scaling_factor)
    return kwargs


def build_tiny_model(name: str, args: ACCConfig, init_kwargs: dict):
    """The tiny Qwen3-MoE of `acc_hf.tiny` for ``tiny:`` (``tiny:seed=N`` for another initialization), built from its
    config with the same build-time settings as a named checkpoint: attention implementation, dtype, RoPE scaling."""
    from transformers import AutoModelForCausalLM

    from acc_hf.tiny import tiny_config

    options = dict(item.split("=", 1) for item in name[len("tiny:") :].split(",") if item)
    unknown = set(options) - {"seed"}
    if unknown:
        raise ValueError(f"{name!r}: unknown tiny: option(s) {sorted(unknown)}; the only one is seed (tiny:seed=3)")
    config = tiny_config()
    apply_rope_scaling(args, config)
    dtype = init_kwargs.get("dtype")
    dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    torch.manual_seed(int(options.get("seed", 0)))
    return AutoModelForCausalLM.from_config(
        config,
        attn_implementation=init_kwargs["attn_implementation"],
        **({"dtype": dtype} if isinstance(dtype, torch.dtype) else {}),
    )
