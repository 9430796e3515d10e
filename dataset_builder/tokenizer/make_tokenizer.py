"""Train the small default tokenizer that ships with acc-hf (no Hub needed).

A byte-level BPE with a Qwen-style chat template, trained on the Python standard library (code + English docstrings),
a fair stand-in for the mix of prose, code and tables in ACC contexts. Used to count tokens when no `--tokenizer` is
given and as the vocabulary of the tiny test/demo models. Regenerate with:

    python -m dataset_builder.tokenizer.make_tokenizer            # vocabulary + config
    python -m dataset_builder.tokenizer.make_tokenizer --config   # only tokenizer_config.json (chat template)
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

HERE = Path(__file__).parent
VOCAB_SIZE = 8192
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]

# Qwen3-like: the assistant turn keeps its <think> block (the completion carries it explicitly). With `tools` (JSON
# schemas) the system turn lists them; assistant `tool_calls` render as `<tool_call>` JSON blocks and `tool` messages
# as `<tool_response>` blocks in a user turn, as Qwen2.5/Qwen3 do. `{% generation %}` marks assistant output (its
# `<|im_end|>` included) for TRL's assistant-only loss. Messages without tools or tool calls render exactly as the
# plain ChatML template did before tools were added (tests/dataset_builder/test_agent_sft.py checks the bytes).
# transformers renders with trim_blocks: a newline right after a `%}` tag is dropped, hence the `{{ '\\n' }}`.
CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n\n{% endif %}"
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
    "{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}"
    "{{ '\\n' }}</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' and tools and loop.first %}"
    "{% elif message['role'] == 'assistant' %}<|im_start|>assistant\n{% generation %}"
    "{% if message['tool_calls'] %}{{ message['content'] or '' }}"
    "{% for tc in message['tool_calls'] %}"
    "{% set fn = tc['function'] if tc['function'] is defined else tc %}"
    "{% if not loop.first or message['content'] %}{{ '\\n' }}{% endif %}"
    '<tool_call>\n{"name": "{{ fn[\'name\'] }}", "arguments": '
    "{% if fn['arguments'] is string %}{{ fn['arguments'] }}{% else %}{{ fn['arguments'] | tojson }}{% endif %}"
    "}\n</tool_call>{% endfor %}"
    "{% else %}{{ message['content'] }}{% endif %}"
    "<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% elif message['role'] == 'tool' %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}<|im_start|>user{% endif %}"
    "{{ '\\n' }}<tool_response>\n{{ message['content'] }}\n</tool_response>"
    "{% if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}<|im_end|>\n{% endif %}"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The template before tools (kept to test that plain conversations still render to the same bytes).
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_config(tokenizer_dir: Path = HERE) -> None:
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 131072,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
    }
    (tokenizer_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def corpus_files() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py"))
    return files[:400]


def main() -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(p) for p in corpus_files()], trainer)
    tok.save(str(HERE / "tokenizer.json"))
    write_config()
    print(f"vocab {tok.get_vocab_size()} -> {HERE}")


if __name__ == "__main__":
    import sys

    write_config() if "--config" in sys.argv[1:] else main()
