"""Offline starts: when vLLM will run with `HF_HUB_OFFLINE=1`, every file it reads must be in
the cache already, or it fails minutes later (after its imports). `offline_problems` says so
at once, before a start: config.json, the tokenizer, the weights in the format the profile
loads (every shard its index lists), naming the profile file, the model, the missing files
and the fix.

The cache is read with huggingface_hub's own offline look-up (`snapshot_download` with
`local_files_only=True`, what vLLM does offline) and, where a pull recorded it, the repo's
cached file listing (`get_cached_repo_tree`), so "every file of the repo" is exact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.models import hub
from vllmtui.models.source import ModelSource, arg_value, model_source
from vllmtui.profiles.launch import LaunchSpec, Problem, resolve
from vllmtui.profiles.model import OFFLINE_VARIABLES, TRUE_WORDS, LoadedProfile, Profile

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tekken.json", "vocab.txt",
                   "spiece.model", "tiktoken.model")
TOKENIZER_TEXT = "a tokenizer (tokenizer.json, tokenizer.model or vocab.json)"
SHOWN = 6
"""How many missing files a message names before it says how many more."""


@dataclass(frozen=True)
class FileCheck:
    """What one model (or tokenizer) source lacks for an offline start."""

    source: ModelSource
    snapshot: Path | None
    missing: tuple[str, ...]
    absent: str = ""
    """Why there is no snapshot at all (not in the cache, revision not cached), else ""."""


def offline_value(spec: LaunchSpec) -> str | None:
    """HF_HUB_OFFLINE as vLLM will see it (the launch spec's, else vllmtui's environment that the
    server inherits), read the way huggingface_hub reads it."""
    def get(name: str) -> str | None:
        return spec.env[name] if name in spec.env else os.environ.get(name)

    return get(OFFLINE_VARIABLES[0]) or get(OFFLINE_VARIABLES[1])


def runs_offline(spec: LaunchSpec) -> bool:
    """Whether the server will run with the hub switched off."""
    value = offline_value(spec)
    return value is not None and value.upper() in TRUE_WORDS


def offline_reason(profile: Profile, settings: Settings) -> str:
    """Where the offline mode comes from, for people to read."""
    if profile.offline:
        return "`offline: true` in the profile"
    for name in OFFLINE_VARIABLES:
        if name in profile.env:
            return f"env.{name}={profile.env[name]} in the profile"
    if settings.offline:
        return f"the box is offline ({settings.offline_from or 'settings'})"
    return "HF_HUB_OFFLINE in vllmtui's environment, which the server inherits"


def check_files(profile: Profile, settings: Settings) -> list[FileCheck]:
    """The hub sources of a profile (its model, and its `tokenizer:` when that is another repo)
    and what each lacks for vLLM to start offline. Local and demo models: nothing to check."""
    source = model_source(profile, settings)
    tokenizer = arg_value(profile.args, "tokenizer")
    skip_tokenizer = bool(arg_value(profile.args, "skip-tokenizer-init"))
    own_tokenizer = not skip_tokenizer and (tokenizer is None or tokenizer == profile.model)
    checks = []
    if source.kind == "hub":
        checks.append(_check(source, profile, weights=True, tokenizer=own_tokenizer))
    if not skip_tokenizer and not own_tokenizer:
        other = model_source(profile, settings, str(tokenizer))  # at `tokenizer_revision`
        if other.kind == "hub":
            checks.append(_check(other, profile, weights=False, tokenizer=True))
    return checks


def _check(source: ModelSource, profile: Profile, weights: bool, tokenizer: bool) -> FileCheck:
    snapshot, absent = _snapshot(source)
    if snapshot is None:
        return FileCheck(source, None, (), absent)
    missing: list[str] = []
    config = "params.json" if arg_value(profile.args, "config-format") == "mistral" else "config.json"
    if weights and not (snapshot / config).is_file():
        missing.append(config)
    if tokenizer and not _has_tokenizer(snapshot):
        missing.append(TOKENIZER_TEXT)
    if weights:
        missing += _missing_weights(snapshot, profile.load_format, _listing(source))
    return FileCheck(source, snapshot, tuple(dict.fromkeys(missing)))


def _snapshot(source: ModelSource) -> tuple[Path | None, str]:
    """The snapshot folder vLLM would read offline, or why there is none."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(source.repo_id, revision=source.revision, cache_dir=source.cache_dir,
                                   local_files_only=True)
        return Path(folder), ""
    except IncompleteSnapshotError as exc:
        return Path(exc.snapshot_path), ""
    except LocalEntryNotFoundError:
        return None, f"no snapshot of revision {source.revision_label} is in the cache"
    except (HFValidationError, ValueError) as exc:
        return None, f"{source.repo_id!r} is not a Hugging Face id ({exc})"


def _listing(source: ModelSource) -> list[hub.RepoFile] | None:
    """The repo's files at that revision as a download recorded them (huggingface_hub's tree
    cache), when one did."""
    from huggingface_hub import get_cached_repo_tree

    try:
        tree = get_cached_repo_tree(source.repo_id, revision=source.revision, cache_dir=source.cache_dir)
    except Exception:  # noqa: BLE001 - no listing recorded: judge by the files that are there
        return None
    return [hub.RepoFile(f.path, int(f.size or 0)) for f in tree]


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES) or any(folder.glob("*.tiktoken"))


def _present(folder: Path) -> list[hub.RepoFile]:
    try:
        return [hub.RepoFile(p.name, 0) for p in folder.iterdir() if p.is_file()]
    except OSError:
        return []


def _missing_weights(folder: Path, load_format: str | None, listed: list[hub.RepoFile] | None) -> list[str]:
    """The weight files vLLM reads with `load_format` (chosen as `vllmtui pull` chooses them:
    `hub.select_files`) that the snapshot lacks, and the shards its index lists that are absent."""
    fmt = (load_format or "auto").lower()
    if fmt == "dummy":
        return []
    choice = hub.select_files(listed if listed is not None else _present(folder), fmt)
    if choice.weights.startswith("all top-level"):  # gguf, tensorizer, ...: files of their own
        return []
    small = {f.path for f in choice.files if f.path.endswith(hub.SMALL_SUFFIXES)}
    needed = [f.path for f in choice.files if f.path not in small]
    missing = [name for name in ([choice.index] if choice.index else []) if not (folder / name).is_file()]
    if choice.index and (folder / choice.index).is_file():
        shards = _index_shards(folder / choice.index)
        if shards:
            needed = [n for n in needed if not n.endswith(".safetensors") or n in shards] + shards
    missing += [n for n in dict.fromkeys(needed) if not (folder / n).is_file()]
    if not needed and not missing:
        missing.append(f"the weights (none found for load_format {fmt})")
    return missing


def _index_shards(index: Path) -> list[str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
    except (OSError, ValueError, AttributeError):
        return []
    return sorted({str(v) for v in weight_map.values()}) if isinstance(weight_map, dict) else []


def offline_problems(loaded: LoadedProfile, settings: Settings) -> list[Problem]:
    """The pre-start check (`servers.checks`): when the server will run offline, an error for
    each hub source that lacks a file vLLM needs. Nothing when it runs online (vLLM, or a pull
    before the start, fetches what is missing)."""
    try:
        spec = resolve(loaded.profile, settings)
    except UsageError:
        return []  # the runtime's problem: preflight says it
    if not runs_offline(spec):
        return []
    from huggingface_hub.file_download import repo_folder_name

    profile, problems = loaded.profile, []
    for check in check_files(profile, settings):
        if not check.missing and not check.absent:
            continue
        source = check.source
        assert source.cache_dir is not None
        entry = source.cache_dir / repo_folder_name(repo_id=source.repo_id, repo_type="model")
        key = "model" if source.repo_id == profile.model else "args.tokenizer"
        if check.absent:
            lacks = f"{check.absent} ({source.cache_dir})"
        else:
            shown = ", ".join(check.missing[:SHOWN])
            more = f" and {len(check.missing) - SHOWN} more" if len(check.missing) > SHOWN else ""
            lacks = f"the cache ({check.snapshot}) lacks {shown}{more}"
        problems.append(Problem(
            "error", key,
            f"{source.repo_id} (revision {source.revision_label}) runs offline"
            f" ({offline_reason(profile, settings)}) but {lacks}: on a machine with network run"
            f" `vllmtui pull {profile.name}`, or copy {entry} here from one that has it"
            " (or set `offline: false` to let vLLM download)",
            loaded.where(("model",) if key == "model" else ("args", "tokenizer"))))
    return problems
