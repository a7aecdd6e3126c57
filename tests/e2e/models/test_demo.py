"""Demo models: generated with the vLLM runtime's own python (it has `tokenizers`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.helpers import CONFIGS
from vllmtui.models.demo import ensure_demo_model


def test_from_config_keeps_the_architecture_and_decodes_every_id(vllm_runtime: Path, tmp_path: Path) -> None:
    dest = ensure_demo_model(tmp_path / "q7", python=str(vllm_runtime), base_config=CONFIGS / "Qwen2.5-7B.json")
    config = json.loads((dest / "config.json").read_text())
    published = json.loads((CONFIGS / "Qwen2.5-7B.json").read_text())
    for key in ("architectures", "hidden_size", "num_hidden_layers", "num_key_value_heads", "vocab_size"):
        assert config[key] == published[key]
    code = (
        "import sys, json; from tokenizers import Tokenizer\n"
        f"t = Tokenizer.from_file({str(dest / 'tokenizer.json')!r})\n"
        "print(json.dumps([t.get_vocab_size(), t.decode([5000, 152063]), t.token_to_id('<tool_call>')]))\n"
    )
    size, text, tool_id = json.loads(subprocess.run([str(vllm_runtime), "-c", code], check=True,
                                                    capture_output=True, text=True).stdout)
    # random weights sample ids across all 152,064: each decodes to visible text
    assert size == 152064 and text == " w5000 w152063" and tool_id is not None


def test_tiny_shape_is_generated_once(vllm_runtime: Path, tmp_path: Path) -> None:
    dest = ensure_demo_model(tmp_path / "tiny", "tiny", python=str(vllm_runtime))
    stamp = (dest / "tokenizer.json").stat().st_mtime_ns
    assert json.loads((dest / "config.json").read_text())["num_key_value_heads"] == 1
    assert ensure_demo_model(dest, "tiny", python=str(vllm_runtime)) == dest
    assert (dest / "tokenizer.json").stat().st_mtime_ns == stamp
    chat = json.loads((dest / "tokenizer_config.json").read_text())["chat_template"]
    assert "<tool_call>" in chat and "tools" in chat
