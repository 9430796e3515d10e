"""Train a model on ACC data with `ACCTrainer` from a TRL-style YAML recipe.

    acc train recipes/tiny_moe_cpu.yaml                                  # CPU, tiny Qwen3-MoE, minutes
    acc train recipes/tiny_moe_cpu.yaml --dataset_path my_acc --max_steps 50 --output_dir out/tiny
    acc train recipes/tiny_moe_cpu.yaml --model_name_or_path BASE_DIR --use_peft true --lora_r 8 --lora_alpha 16 \
        --lora_target_modules q_proj v_proj --lora_target_parameters mlp.experts.gate_up_proj --lora_dropout 0
    acc train recipes/qwen3_moe.yaml --accelerate-config recipes/accelerate/fsdp2.yaml
    accelerate launch --config_file recipes/accelerate/zero3_ulysses.yaml -m acc_hf.train --config recipes/qwen3_moe.yaml

A recipe sets fields of `ACCScriptArguments` (the data), `ACCConfig` (TRL SFTConfig + ACC fields) and TRL's
`ModelConfig` (model name, dtype, LoRA); `--key value` after the recipe overrides it. `model_name_or_path: tiny:`
builds the tiny Qwen3-MoE of `acc_hf.tiny` from its config (`tiny:seed=N` for another initialization).
The dataset is an ACC dataset directory (parquet + card with configs, as `acc compile` writes, or `save_to_disk`) or
a Hub repo id; `acc_configs` picks its configs (domains).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass
class ACCScriptArguments:
    """Where the ACC data comes from, and evaluation results to put on the model card."""

    dataset_path: str = field(
        default="outputs/demo/data",
        metadata={"help": "ACC dataset: a local directory (parquet + card, or save_to_disk) or a Hub repo id."},
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_eval_split: str | None = field(default=None, metadata={"help": "Split to evaluate on (optional)."})
    eval_results: str | None = field(
        default=None, metadata={"help": "JSON file of evaluation results for the model card's model-index."}
    )


def make_parser():
    from trl import ModelConfig, TrlParser

    from acc_hf.acc_config import ACCConfig

    return TrlParser((ACCScriptArguments, ACCConfig, ModelConfig), prog="acc-train")


def load_acc_dataset(path: str, configs: list[str] | None = None, split: str = "train"):
    """One split of an ACC dataset: the given configs (domains) concatenated, else its `all` (or default) config."""
    from datasets import DatasetDict, concatenate_datasets, load_from_disk

    from dataset_builder.load import acc_config_names, load_acc_split

    local = Path(path)
    if local.is_dir() and ((local / "state.json").is_file() or (local / "dataset_dict.json").is_file()):
        data = load_from_disk(str(local))
        return data[split] if isinstance(data, DatasetDict) else data
    if not local.exists() and not re.fullmatch(r"[\w.-]+/[\w.-]+", path):  # neither a directory nor a Hub id
        raise FileNotFoundError(
            f"ACC dataset not found at {path}: build one with `acc demo` or `acc compile ... --out {path}`, "
            "or pass --dataset_path DIR_OR_HUB_ID"
        )
    available = acc_config_names(path)
    wanted = [c for c in configs or [] if c != "all"]
    if wanted and all(c in available for c in wanted):
        return concatenate_datasets([load_acc_split(path, c, split=split) for c in wanted])
    # No per-domain configs: load everything; ACCTrainer keeps the rows of the wanted domains.
    return load_acc_split(path, "all" if "all" in available else None, split=split)


def model_init_kwargs(model_args, args) -> dict:
    """The `from_pretrained` kwargs of TRL's ModelConfig (TRL's sft script does the same); ACCTrainer adds the
    attention kernel and RoPE scaling and builds the model."""
    kwargs = {"revision": model_args.model_revision, "trust_remote_code": args.trust_remote_code}
    kwargs["dtype"] = model_args.dtype
    if model_args.attn_implementation is not None:  # must agree with attn_backend (ACCTrainer checks)
        kwargs["attn_implementation"] = model_args.attn_implementation
    return {**kwargs, **(args.model_init_kwargs or {})}


def length_notice(path: str, data, args) -> str | None:
    """What to say up front when the dataset was compiled for longer rows (`acc compile --max-length`, in its
    stats.json) than the recipe's `max_length`: how many of the rows to train on the trainer would drop."""
    stats = Path(path) / "stats.json"
    if not stats.is_file():
        try:  # a Hub dataset pushed by `acc push` carries its stats.json
            from huggingface_hub import hf_hub_download

            stats = Path(hf_hub_download(path, "stats.json", repo_type="dataset"))
        except Exception:  # noqa: BLE001 - not an acc dataset, offline, ...: nothing to compare with
            return None
    settings = json.loads(stats.read_text()).get("settings") or {}
    compiled_for = settings.get("max_length")
    if not compiled_for or not args.max_length or args.max_length >= compiled_for:
        return None
    columns = data.column_names
    rows = zip(data["meta"], data["verified"] if "verified" in columns else [True] * len(data), data["domain"])
    domains = set(args.acc_domains or []) or None
    lengths = [
        json.loads(meta).get("row_tokens", 0)
        for meta, verified, domain in rows
        if (verified or not args.only_verified) and (domains is None or domain in domains)
    ]
    over = sum(n > args.max_length for n in lengths)
    return (
        f"{path} was compiled for rows of up to {compiled_for} tokens (acc compile --max-length), but max_length is "
        f"{args.max_length}: {over} of the {len(lengths)} rows to train on are longer (by the compile tokenizer's "
        f"count) and will be dropped, never truncated. Train with --max_length {compiled_for}, or recompile with "
        f"--max-length {args.max_length}."
    )


def read_eval_results(path: str) -> list[dict]:
    data = json.loads(Path(path).read_text())
    return data["eval_results"] if isinstance(data, dict) else data


def train(script_args: ACCScriptArguments, args, model_args) -> int:
    from trl import get_peft_config, get_quantization_config

    from acc_hf.acc_trainer import ACCTrainer
    from acc_hf.model_card import write_model_card

    name = model_args.model_name_or_path
    if not name:
        raise ValueError("set model_name_or_path in the recipe (a Hub id, a local checkpoint, or tiny:)")
    train_data = load_acc_dataset(script_args.dataset_path, args.acc_configs, script_args.dataset_train_split)
    if notice := length_notice(script_args.dataset_path, train_data, args):
        logger.warning(notice)
    eval_data = None
    if script_args.dataset_eval_split:
        eval_data = load_acc_dataset(script_args.dataset_path, args.acc_configs, script_args.dataset_eval_split)
    eval_results = read_eval_results(script_args.eval_results) if script_args.eval_results else None
    peft_config = get_peft_config(model_args)
    if peft_config is not None and name.startswith("tiny:"):
        logger.warning(
            "LoRA on a tiny: model built from its config: the adapter names no base model to reload it onto; save the "
            "base first (python -m acc_hf.tiny DIR) and train with --model_name_or_path DIR to use "
            "AutoPeftModelForCausalLM on the result"
        )
    args.model_init_kwargs = model_init_kwargs(model_args, args)
    quantization = get_quantization_config(model_args)
    trainer = ACCTrainer(
        name,  # ACCTrainer picks the kernels and builds the model (TRL's way, from args.model_init_kwargs)
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        peft_config=peft_config,
        **({"quantization_config": quantization} if quantization is not None else {}),
    )
    trainer.dataset_names = [script_args.dataset_path]
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model(args.output_dir)
    trainer.create_model_card(model_name=args.hub_model_id or Path(args.output_dir).name)
    if eval_results is not None and trainer.is_world_process_zero():
        write_model_card(args.output_dir, eval_results=eval_results)
    if args.push_to_hub:
        trainer.push_to_hub(model_name=args.hub_model_id or Path(args.output_dir).name)
    trainer.accelerator.print(f"saved to {args.output_dir}")
    trainer.end()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("acc_hf").setLevel(logging.INFO)
    script_args, args, model_args = make_parser().parse_args_and_config(args=argv)
    return train(script_args, args, model_args)


# ---- `acc train` ----------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="YAML recipe (recipes/tiny_moe_cpu.yaml, recipes/qwen3_moe.yaml)")
    parser.add_argument(
        "--accelerate-config",
        metavar="YAML",
        help="run under `accelerate launch --config_file YAML` (e.g. recipes/accelerate/fsdp2.yaml)",
    )
    parser.add_argument(
        "overrides", nargs=argparse.REMAINDER, help="--field value pairs overriding the recipe (e.g. --max_steps 20)"
    )


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    overrides, accelerate_config = list(args.overrides), args.accelerate_config
    if "--accelerate-config" in overrides:  # given after the recipe, where the overrides start
        at = overrides.index("--accelerate-config")
        accelerate_config = overrides[at + 1]
        del overrides[at : at + 2]
    argv = ["--config", args.recipe, *overrides]
    if accelerate_config:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
        return subprocess.call([*command, "-m", "acc_hf.train", *argv])
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
