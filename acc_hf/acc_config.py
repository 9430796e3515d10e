"""`ACCConfig`: TRL's `SFTConfig` with the defaults ACC training needs, plus a few ACC fields.

ACC samples are long prompt-completion pairs (question + compiled context -> reasoning + answer). The defaults:

* completion-only loss (the context is input, not something to imitate); for a `messages` dataset (the agent-SFT
  baseline, `acc agent-sft`) assistant-only loss instead, so that tool outputs carry no loss;
* BFD packing into rows of `max_length` = 131072 tokens (`dataset_builder.budget.MAX_LENGTH`, acc compile's default), padding-free (no pad tokens, no attention mask);
* a sample longer than `max_length` is dropped before packing and counted, never truncated (truncation would cut its
  answer or its question), so `packing_strategy` must stay "bfd" ("bfd_split" and "wrapped" cut samples);
* batch 1 per device + gradient accumulation: on sdpa the block-diagonal mask is dense in the row length, so one
  packed row per micro-batch is the fast layout (see DESIGN.md, measured facts).

Everything else is SFTConfig / TrainingArguments, so recipes are plain TRL YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments
from trl import SFTConfig

from acc_hf.kernels import ATTN_BACKENDS
from dataset_builder.budget import MAX_LENGTH

ROPE_TYPES = ("yarn", "linear", "dynamic")
# transformers 5.23 renamed gradient checkpointing to activation checkpointing; before, only the old name is read.
_NATIVE_ACTIVATION_CHECKPOINTING = "activation_checkpointing" in TrainingArguments.__dataclass_fields__


@dataclass
class ACCConfig(SFTConfig):
    r"""
    Configuration of [`ACCTrainer`]: [`trl.SFTConfig`] with ACC defaults and the fields below.

    Parameters:
        only_verified (`bool`, defaults to `True`):
            Train only on ACC records whose answer passed its domain verifier (`verified` column).
        acc_configs (`list[str]`, *optional*):
            ACC dataset configs (domains) to train on, e.g. `["search", "sql"]`. `None` or `["all"]`: every domain.
            `acc train` loads these configs of the dataset; the trainer keeps only rows of these domains.
        log_per_domain (`bool`, defaults to `False`):
            Log loss and token accuracy per domain (`domain/<name>/loss`, `domain/<name>/token_accuracy`).
        attn_backend (`str`, defaults to `"auto"`):
            `"auto"` takes, on CUDA, the first of `"flash_attention_3"`, `"flash_attention_2"` (the flash-attn
            package), `"torch_varlen"` (PyTorch's own FlashAttention varlen kernel, torch >= 2.10: no package to
            build), `"flex_attention"` (document mask) that runs here, else `"sdpa"`; on CPU `"sdpa"`. Any of them,
            or `"eager"`, can be forced; one this machine cannot run is refused up front with the reason.
        use_liger_kernel (`bool`, defaults to `False`):
            Liger's layer kernels (RMSNorm, RoPE, SwiGLU). Needs CUDA and liger-kernel: checked up front with a clear
            error. The loss always runs through TRL's fused LM head (Triton tiles on CUDA).
        rope_scaling_type (`str`, *optional*):
            RoPE scaling to extend the model's window, e.g. `"yarn"`; with `rope_scaling_factor`.
        rope_scaling_factor (`float`, *optional*):
            Window extension factor (YaRN: 4.0 takes a 32k model to 128k).
        rope_original_max_position_embeddings (`int`, *optional*):
            The window the model was pretrained with; defaults to its config's `max_position_embeddings`.
        router_stats (`bool`, defaults to `True`):
            Log MoE router telemetry (`router/...`: per-layer load, imbalance, entropy, dead experts).
        router_heatmap (`bool`, defaults to `True`):
            Save a layers x experts load heatmap (`router_load.png`) in every checkpoint.
        model_card_license (`str`, defaults to `"apache-2.0"`):
            License written in the model card.
    """

    # ACC defaults (overriding SFTConfig / TrainingArguments)
    max_length: int | None = field(
        default=MAX_LENGTH,
        metadata={"help": "Packed row length. ACC samples longer than this are dropped and counted, never truncated."},
    )
    packing: bool = field(default=True, metadata={"help": "Pack samples into rows of `max_length` (BFD)."})
    packing_strategy: str = field(
        default="bfd",
        metadata={"help": "Must be 'bfd': ACC samples are never split or cut.", "choices": ["bfd"]},
    )
    padding_free: bool = field(default=True, metadata={"help": "Flatten batches; no pad tokens, no attention mask."})
    completion_only_loss: bool | None = field(
        default=True, metadata={"help": "Loss on the completion (reasoning + answer) only."}
    )
    assistant_only_loss: bool | None = field(
        default=None,
        metadata={
            "help": "Loss on assistant turns only. None (default): on for a conversational `messages` dataset (the "
            "agent-SFT baseline of `acc agent-sft`: tool outputs, user and system turns carry no loss), off for "
            "prompt/completion (ACC, where completion_only_loss applies)."
        },
    )
    per_device_train_batch_size: int = field(
        default=1, metadata={"help": "Packed rows per device per micro-batch (1 is fastest with sdpa)."}
    )
    # transformers 5.23 renamed gradient checkpointing; TRL still defaults the old name to True, which warns.
    activation_checkpointing: bool | None = field(
        default=True, metadata={"help": "Recompute activations in backward (needed at 128k tokens)."}
    )
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of activation_checkpointing."}
    )

    # ACC data
    only_verified: bool = field(default=True, metadata={"help": "Train only on records whose answer was verified."})
    acc_configs: list[str] | None = field(
        default=None, metadata={"help": "ACC configs (domains) to train on, e.g. search sql. Default: all."}
    )
    log_per_domain: bool = field(default=False, metadata={"help": "Log loss and token accuracy per domain."})

    # Kernels and long context
    attn_backend: str = field(
        default="auto",
        metadata={
            "help": "Attention: auto (on CUDA: FA3, FA2, torch_varlen, flex_attention, whichever runs first; sdpa on "
            "CPU), or forced.",
            "choices": ATTN_BACKENDS,
        },
    )
    rope_scaling_type: str | None = field(
        default=None, metadata={"help": "RoPE scaling to extend the window, e.g. yarn.", "choices": list(ROPE_TYPES)}
    )
    rope_scaling_factor: float | None = field(default=None, metadata={"help": "RoPE window extension factor."})
    rope_original_max_position_embeddings: int | None = field(
        default=None, metadata={"help": "Pretraining window (default: the model config's max_position_embeddings)."}
    )

    # Telemetry and card
    router_stats: bool = field(default=True, metadata={"help": "Log MoE router telemetry (router/...)."})
    router_heatmap: bool = field(default=True, metadata={"help": "Save router_load.png in each checkpoint."})
    model_card_license: str = field(default="apache-2.0", metadata={"help": "License for the model card."})

    def __post_init__(self):
        if not _NATIVE_ACTIVATION_CHECKPOINTING and self.gradient_checkpointing is None:
            self.gradient_checkpointing = bool(self.activation_checkpointing)  # transformers < 5.23 reads only this
        super().__post_init__()
        if self.packing and self.packing_strategy != "bfd":
            raise ValueError(
                f"packing_strategy={self.packing_strategy!r} cuts ACC samples; ACCConfig packs with 'bfd' and drops "
                "over-length samples instead"
            )
        if self.attn_backend not in ATTN_BACKENDS:
            raise ValueError(f"attn_backend must be one of {ATTN_BACKENDS}, got {self.attn_backend!r}")
        if (self.rope_scaling_type is None) != (self.rope_scaling_factor is None):
            raise ValueError("set rope_scaling_type and rope_scaling_factor together (e.g. yarn and 4.0)")
        if self.rope_scaling_type is not None:
            if self.rope_scaling_type not in ROPE_TYPES:
                raise ValueError(f"rope_scaling_type must be one of {ROPE_TYPES}, got {self.rope_scaling_type!r}")
            if self.rope_scaling_factor <= 1.0:
                raise ValueError(
                    f"rope_scaling_factor must be > 1 to extend the window, got {self.rope_scaling_factor}"
                )
        if self.chat_template_path and self.chat_template_path.startswith("trl:"):
            self.chat_template_path = trl_chat_template(self.chat_template_path[len("trl:") :])
        if self.acc_configs is not None and not isinstance(self.acc_configs, list):
            self.acc_configs = [self.acc_configs]

    @property
    def acc_domains(self) -> list[str] | None:
        """The domains to keep, or None for all."""
        if not self.acc_configs or "all" in self.acc_configs:
            return None
        return list(self.acc_configs)


def trl_chat_template(name: str) -> str:
    """The path of a chat template shipped with TRL (`trl:qwen3_training` -> .../trl/chat_templates/
    qwen3_training.jinja), for `chat_template_path` in a recipe whatever the install location."""
    from pathlib import Path

    import trl

    folder = Path(trl.__file__).parent / "chat_templates"
    path = folder / f"{name}.jinja"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*_training.jinja"))
        raise ValueError(f"chat_template_path trl:{name}: TRL has no such template; training templates: {known}")
    return str(path)


def rope_parameters(args: ACCConfig, config) -> dict | None:
    """The `rope_parameters` (transformers 5) that extend `config`'s window as `args` asks, or None.

    YaRN with factor f over an original window W serves positions up to f * W; `max_position_embeddings` is raised
    to that so the trainer's window check and generation agree.
    """
    if args.rope_scaling_type is None:
        return None
    current = dict(getattr(config, "rope_parameters", None) or {})
    original = args.rope_original_max_position_embeddings or config.max_position_embeddings
    params = {
        "rope_type": args.rope_scaling_type,
        "factor": float(args.rope_scaling_factor),
        "rope_theta": current.get("rope_theta", getattr(config, "rope_theta", 10000.0)),
    }
    if args.rope_scaling_type == "yarn":
        params["original_max_position_embeddings"] = int(original)
    return params


def apply_rope_scaling(args: ACCConfig, config) -> bool:
    """Set RoPE scaling on `config` in place (before the model is built); True when something changed."""
    params = rope_parameters(args, config)
    if params is None:
        return False
    original = args.rope_original_max_position_embeddings or config.max_position_embeddings
    config.rope_parameters = params
    config.max_position_embeddings = int(original * args.rope_scaling_factor)
    return True
