"""A real Hugging Face hub cache laid out in a test's folder, the way huggingface_hub writes
one (`models--org--name/{blobs,refs,snapshots}`): each file's bytes once in `blobs/` (named by
its sha256 when it is a weight, an LFS file, else by its git blob id), the snapshot's entries
relative symlinks into `blobs/`, `refs/<branch>` holding the commit. huggingface_hub itself
reads it (scan_cache_dir, snapshot_download with local_files_only), so no network is used."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from vllmtui.models.cache import CachedModel, CachedRevision, CacheReport, Disk, NotCached

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")

TINY_CONFIG = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64}'


def blob_id(name: str, content: bytes) -> str:
    """The name huggingface_hub stores a file's blob under."""
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def commit_of(repo_id: str, revision: str, files: dict[str, bytes]) -> str:
    """A stable 40-hex commit id for a test revision."""
    digest = hashlib.sha1(repo_id.encode() + b"@" + revision.encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    return digest.hexdigest()


def repo_dir(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def add_revision(cache: Path, repo_id: str, files: dict[str, bytes], ref: str | None = "main",
                 commit: str | None = None) -> Path:
    """Put one revision of `repo_id` holding `files` in the cache; `ref` (a branch) points at
    it unless None. Returns the snapshot folder."""
    repo = repo_dir(cache, repo_id)
    commit = commit or commit_of(repo_id, ref or "detached", files)
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        blob = repo / "blobs" / blob_id(name, content)
        if not blob.exists():
            blob.write_bytes(content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    snapshot.mkdir(parents=True, exist_ok=True)
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def tiny_model(weights: int = 4096, shards: int = 1, tokenizer: bool = True) -> dict[str, bytes]:
    """The files of a small model: config.json, a tokenizer and `shards` safetensors files
    of `weights` bytes each (with an index when there is more than one)."""
    files = {"config.json": TINY_CONFIG}
    if tokenizer:
        files["tokenizer.json"] = b'{"version": "1.0", "model": {"type": "BPE"}}'
        files["tokenizer_config.json"] = b'{"model_max_length": 2048}'
    if shards == 1:
        files["model.safetensors"] = b"\x01" * weights
        return files
    names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    for i, name in enumerate(names):
        files[name] = bytes([i + 1]) * weights
    weight_map = ", ".join(f'"layer.{i}": "{name}"' for i, name in enumerate(names))
    files["model.safetensors.index.json"] = b'{"metadata": {}, "weight_map": {%s}}' % weight_map.encode()
    return files


def set_used(path: Path, when: float) -> None:
    """Set the access (and modification) time of every file under `path`, links followed."""
    for root, _dirs, names in os.walk(path):
        for name in names:
            os.utime(os.path.join(root, name), (when, when))


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache of the test's own, where huggingface_hub (and vLLM) will look:
    $HF_HUB_CACHE points at it, and HF_HUB_OFFLINE is unset. Import it into a test module."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLMTUI_OFFLINE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    return cache


def sample_report() -> CacheReport:
    """A fixed reading of the model files: two cache entries (one with two revisions), a local
    directory, a model not pulled yet; last used days ago (stable on screen for a minute)."""
    hub = Path("/srv/hf/hub")
    day = 86400.0
    now = time.time()
    qwen = hub / "models--Qwen--Qwen3-8B"
    revs = (CachedRevision("9c925d64d72725edaf899c6cb9c377fd0709d9c5", ("main",), 16_400_000_000, 9,
                           now - 2 * day, qwen / "snapshots/9c925d6", ("qwen3-8b", "qwen3-8b-long")),
            CachedRevision("b968826d9c46dd6066d109eabc6255188de91218", ("v1.1",), 2_100_000_000, 9,
                           now - 40 * day, qwen / "snapshots/b968826"))
    models = (
        CachedModel("Qwen/Qwen3-8B", revs, 18_500_000_000, now - 2 * day - 3 * 3600, qwen,
                    ("qwen3-8b", "qwen3-8b-long"), "hub", hub),
        CachedModel("meta-llama/Llama-3.2-1B", (CachedRevision(
            "4e20de362430cd3b72f300e6b0f18e50e7166e08", ("main",), 2_470_000_000, 7, now - 9 * day,
            hub / "models--meta-llama--Llama-3.2-1B/snapshots/4e20de3"),), 2_470_000_000, now - 9 * day,
            hub / "models--meta-llama--Llama-3.2-1B", (), "hub", hub, incomplete_bytes=310_000_000),
        CachedModel("/data/models/my-finetune", (), 4_900_000_000, now - 3600, Path("/data/models/my-finetune"),
                    ("finetune",), "local"),
    )
    return CacheReport(models, sum(m.size_on_disk for m in models), 812_000_000_000, hub,
                       not_cached=(NotCached("openai/gpt-oss-20b", ("gpt-oss-20b",), hub),),
                       cache_dirs=(hub,), disks=(Disk(hub, 812_000_000_000, 1_800_000_000_000),))
