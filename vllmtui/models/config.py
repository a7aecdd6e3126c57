"""A model's `config.json` from disk: a local directory, a demo model, or the Hugging Face
cache that is already there. Never the network.

The planner needs two files: `config.json` (the architecture) and, when present,
`model.safetensors.index.json` (whose `metadata.total_size` is the exact checkpoint size).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmtui.core.errors import UsageError
from vllmtui.models import demo as demo_model
from vllmtui.profiles.launch import DEMO_PREFIX

INDEX_FILE = "model.safetensors.index.json"


@dataclass(frozen=True)
class ModelFiles:
    """What was found for one model: its config and (maybe) the checkpoint's total size."""

    model: str
    config: dict[str, Any]
    source: str  # where config.json came from, for people to read
    checkpoint_bytes: int | None = None  # model.safetensors.index.json metadata.total_size
    checkpoint_source: str | None = None


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub finds it (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def cached_snapshot(model_id: str, revision: str | None = None, cache: Path | None = None) -> Path | None:
    """The snapshot directory of `org/name` in the HF cache holding a config.json, if any:
    the revision's (or `main`'s) commit first, else the newest snapshot."""
    root = (cache or hf_cache_dir()) / ("models--" + model_id.replace("/", "--"))
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = root / "refs" / (revision or "main")
    if ref.is_file():
        commit = ref.read_text().strip()
        if (snapshots / commit / "config.json").is_file():
            return snapshots / commit
    if revision and (snapshots / revision / "config.json").is_file():
        return snapshots / revision
    found = [d for d in snapshots.iterdir() if (d / "config.json").is_file()]
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _checkpoint_size(directory: Path) -> tuple[int | None, str | None]:
    index = directory / INDEX_FILE
    if index.is_file():
        try:
            total = int(_read_json(index).get("metadata", {}).get("total_size") or 0)
        except (UsageError, TypeError, ValueError):
            total = 0
        if total > 0:
            return total, str(index)
    single = directory / "model.safetensors"
    if single.is_file():  # follows the HF cache's symlink to its blob
        return single.stat().st_size, str(single)
    return None, None


def from_directory(directory: Path, model: str | None = None) -> ModelFiles:
    """config.json (and the checkpoint size) of a local model directory."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise UsageError(f"{directory} has no config.json: is it a Hugging Face model directory?")
    size, size_source = _checkpoint_size(directory)
    return ModelFiles(model or str(directory), _read_json(config_path), str(config_path), size, size_source)


def find_model_files(
    model: str,
    models_dir: Path | None = None,
    revision: str | None = None,
    config_file: Path | None = None,
) -> ModelFiles:
    """Find a model's config on disk. `model` is what a profile's `model:` says: a local
    directory, `demo:SHAPE`, or a Hugging Face id (looked up in the local cache only).
    `config_file` overrides where config.json is read from."""
    if config_file is not None:
        path = Path(config_file).expanduser()
        if path.is_dir():
            return from_directory(path, model)
        size, size_source = _checkpoint_size(path.parent)
        return ModelFiles(model, _read_json(path), str(path), size, size_source)
    if model.startswith(DEMO_PREFIX):
        name = model[len(DEMO_PREFIX) :]
        directory = (models_dir / name) if models_dir else None
        if directory is not None and (directory / "config.json").is_file():
            return from_directory(directory, model)
        shape = demo_model.shape_of(name)
        return ModelFiles(model, demo_model.model_config(shape), f"built-in demo shape {shape!r}")
    local = Path(model).expanduser()
    if local.is_dir():
        return from_directory(local, model)
    if local.is_file() and local.name.endswith(".json"):
        return find_model_files(model, config_file=local)
    if model.startswith(("/", "./", "../", "~")):
        raise UsageError(f"model: {model} does not exist on this machine")
    snapshot = cached_snapshot(model, revision)
    if snapshot is not None:
        return from_directory(snapshot, model)
    raise UsageError(
        f"no config.json for {model!r}: it is not a local directory and not in the Hugging Face"
        f" cache ({hf_cache_dir()}). vllmtui never downloads: fetch just the config with"
        f" `huggingface-cli download {model} config.json` (add model.safetensors.index.json for"
        " the exact weight size), or pass --config /path/to/config.json"
    )
