"""Finding a model's config: the HF cache on disk, never the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.helpers import CONFIGS
from vllmtui.core.errors import UsageError
from vllmtui.models.config import find_model_files


def test_config_from_the_hf_cache_never_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text((CONFIGS / "Qwen2.5-7B.json").read_text())
    (tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "refs").mkdir()
    (tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert find_model_files("Qwen/Qwen2.5-7B-Instruct").source == str(snap / "config.json")
    with pytest.raises(UsageError) as err:
        find_model_files("meta-llama/Not-Downloaded")
    assert "huggingface-cli download meta-llama/Not-Downloaded config.json" in str(err.value)
    assert "--config" in str(err.value)
