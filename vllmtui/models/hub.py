"""A model repo on the Hugging Face Hub: its files (listed with `huggingface_hub`), which of
them vLLM needs for a load format, and what the hub's errors mean for the user.

vLLM reads the top-level files of a snapshot only: `config.json`, the tokenizer's files, and
the weights of ONE format (vLLM 0.32's `DefaultModelLoader._prepare_weights`: `auto` takes
Mistral's `consolidated*.safetensors` when the repo has them, else the first of `*.safetensors`,
`*.bin`, `*.pt` present). Everything else (README, images, other formats' weights, `original/`,
`onnx/`) is left on the hub.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllmtui.core.errors import UsageError, VllmtuiError

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TOKEN_ENV = "HF_TOKEN"
TRUE_WORDS = frozenset({"1", "ON", "YES", "TRUE"})  # huggingface_hub's ENV_VARS_TRUE_VALUES
# what vLLM and transformers read besides weights: config, tokenizer, chat template, custom code
SMALL_SUFFIXES = (".json", ".txt", ".model", ".tiktoken", ".jinja", ".py", ".vocab")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf",
                   ".onnx", ".onnx_data", ".ot", ".tflite", ".mlmodel", ".pb", ".npz", ".pkl")
# vLLM's filter_files_not_needed_for_inference
NOT_FOR_INFERENCE = frozenset({"training_args.bin", "optimizer.bin", "optimizer.pt", "scheduler.pt",
                               "scaler.pt"})
INDEX_FILES = {"safetensors": "model.safetensors.index.json",
               "mistral": "consolidated.safetensors.index.json"}
SAFETENSORS_FORMATS = frozenset({"safetensors", "fastsafetensors", "instanttensor", "runai_streamer",
                                 "runai_streamer_sharded"})
_REPO_RE = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


class PullError(VllmtuiError):
    """A download that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class HubEnv:
    """Where the hub and the cache are, as huggingface_hub would read them from `environ`
    (vllmtui's environment overlaid with a profile's `env:`)."""

    endpoint: str
    cache_dir: Path
    offline: bool

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> HubEnv:
        """HF_ENDPOINT, HF_HUB_CACHE (or HUGGINGFACE_HUB_CACHE, HF_HOME/hub), HF_HUB_OFFLINE."""
        env = os.environ if environ is None else environ
        endpoint = (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
        if not cache:
            home = env.get("HF_HOME") or os.path.join(
                env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
            cache = os.path.join(home, "hub")
        offline = str(env.get("HF_HUB_OFFLINE", "")).upper() in TRUE_WORDS
        return cls(endpoint, Path(cache).expanduser(), offline)


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo at a commit: its path, size and blob id (the sha256 of an LFS file,
    else its git blob id: the name huggingface_hub stores it under)."""

    path: str
    size: int
    etag: str | None = None


@dataclass(frozen=True)
class RepoListing:
    """A repo's files at one commit."""

    repo: str
    revision: str  # as asked (a branch, a tag or a commit)
    commit: str
    files: tuple[RepoFile, ...]
    gated: bool = False


@dataclass(frozen=True)
class FileChoice:
    """The files vLLM needs for one load format: small files first, then the weights."""

    files: tuple[RepoFile, ...]
    weights: str  # what the weights are, for people: "safetensors", "none (dummy)", ...
    skipped: tuple[str, ...] = ()
    index: str | None = None  # the weights' index file, when the repo has one
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def skipped_text(self) -> str:
        """`4 .bin, 1 .pth, README.md, 2 in original/` (at most a line)."""
        return summarize(self.skipped)


def is_repo_id(model: str) -> bool:
    """Whether `model` reads as a hub repo id (`org/name`, or a legacy `name`) rather than a
    path or a demo model. A name that is also a local directory is a directory."""
    if model.startswith(("demo:", "/", "./", "../", "~")) or Path(model).expanduser().exists():
        return False
    return bool(_REPO_RE.fullmatch(model)) and "--" not in model and ".." not in model


def summarize(paths: Iterable[str], most: int = 6) -> str:
    """Paths grouped for a line: files in folders by folder, weights by suffix, others by name."""
    groups: dict[str, int] = {}
    for path in paths:
        if "/" in path:
            key = f"in {path.split('/', 1)[0]}/"
        else:
            suffix = os.path.splitext(path)[1]
            key = suffix if suffix in WEIGHT_SUFFIXES else path
        groups[key] = groups.get(key, 0) + 1
    parts = [f"{n} {k}" if (n > 1 or k.startswith((".", "in "))) else k for k, n in groups.items()]
    return ", ".join(parts[:most]) + (f", ... ({len(parts) - most} more)" if len(parts) > most else "")


# ---------------------------------------------------------------- choosing files


def _weights_of(top: list[RepoFile], load_format: str) -> tuple[str, list[RepoFile], str | None]:
    """(what, weight files, index file name) for a load format, as vLLM 0.32 picks them."""
    names = {f.path for f in top}

    def matching(*suffixes: str, prefix: str = "") -> list[RepoFile]:
        return [f for f in top if f.path.endswith(suffixes) and f.path.startswith(prefix)
                and f.path not in NOT_FOR_INFERENCE]

    fmt = load_format
    if fmt == "auto":
        fmt = "mistral" if matching(".safetensors", prefix="consolidated") else "hf"
    if fmt == "mistral":
        return "consolidated safetensors (Mistral format)", matching(".safetensors", prefix="consolidated"), \
            INDEX_FILES["mistral"] if INDEX_FILES["mistral"] in names else None
    if fmt in SAFETENSORS_FORMATS:
        return "safetensors", matching(".safetensors"), _index(names)
    patterns = {"hf": (".safetensors", ".bin", ".pt"), "bitsandbytes": (".safetensors", ".bin", ".pt"),
                "pt": (".pt",), "npcache": (".bin", ".pt")}[fmt]
    for suffix in patterns:
        found = matching(suffix)
        if found:
            what = suffix.lstrip(".") + (" (PyTorch)" if suffix != ".safetensors" else "")
            return what, found, _index(names) if suffix == ".safetensors" else None
    return "none found", [], None


def _index(names: set[str]) -> str | None:
    return INDEX_FILES["safetensors"] if INDEX_FILES["safetensors"] in names else None


def select_files(files: Iterable[RepoFile], load_format: str | None = None) -> FileChoice:
    """The files of a repo that vLLM reads with `load_format` (None: auto). Small files come
    first (config.json, then the weights' index, then the rest by size), so the planner can
    read them while the weights still download."""
    everything = list(files)
    top = [f for f in everything if "/" not in f.path]
    small = [f for f in top if f.path.endswith(SMALL_SUFFIXES)]
    fmt = (load_format or "auto").lower()
    notes: list[str] = []
    weights: list[RepoFile]
    if fmt == "dummy":
        what, weights, index = "none (load_format dummy: random weights)", [], None
    elif fmt in {"auto", "hf", "bitsandbytes", "pt", "npcache", "mistral"} | SAFETENSORS_FORMATS:
        what, weights, index = _weights_of(top, fmt)
        if not weights:
            notes.append(f"the repo has no weights vLLM loads with load_format {fmt}")
    else:  # gguf, sharded_state, tensorizer, ...: vllmtui cannot tell which files they read
        what, index = f"all top-level files (load_format {fmt})", None
        weights = [f for f in top if f not in small]
        notes.append(f"load_format {fmt}: every top-level file is fetched")
    if index is not None and not any(f.path == index for f in small):
        index = None

    def order(f: RepoFile) -> tuple[int, int, str]:
        rank = 0 if f.path == "config.json" else 1 if f.path == index else 2
        return rank, f.size, f.path

    chosen = sorted(small, key=order) + sorted(weights, key=lambda f: (f.size, f.path))
    chosen_paths = {f.path for f in chosen}
    skipped = tuple(f.path for f in everything if f.path not in chosen_paths)
    return FileChoice(tuple(chosen), what, skipped, index, tuple(notes))


def narrow_to_index(choice: FileChoice, index_data: Mapping[str, Any]) -> FileChoice:
    """The choice without the weight files the index does not list (vLLM loads only those:
    a repo with both sharded and consolidated safetensors would otherwise be fetched twice)."""
    weight_map = index_data.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        return choice
    listed = {str(v) for v in weight_map.values()}
    keep = tuple(f for f in choice.files if not f.path.endswith(".safetensors") or f.path in listed)
    dropped = tuple(f.path for f in choice.files if f not in keep)
    if not dropped:
        return choice
    return FileChoice(keep, choice.weights, choice.skipped + dropped, choice.index, choice.notes)


# ---------------------------------------------------------------- listing


_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,254}$")
_VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_revision(revision: str | None) -> None:
    """A branch, tag or commit as git names them: no `..`, no leading `/`, no spaces (the
    cache keeps `refs/<revision>` as a file: a revision never names a path outside it)."""
    if revision is None:
        return
    if not _REVISION_RE.fullmatch(revision) or ".." in revision or revision.endswith(("/", ".lock")):
        raise UsageError(f"--revision {revision!r} is not a branch, tag or commit name: use e.g. main,"
                         " v1.0 or a 40-character commit hash")


def token_from(name: str | None, required: bool = False) -> str | None:
    """The token in environment variable `name` (None: huggingface_hub's own lookup, HF_TOKEN
    or a stored login). Never printed, never stored. `required`: an unset variable is an error
    (the user named it)."""
    if not name:
        return None
    if not _VARIABLE_RE.fullmatch(name):
        raise UsageError(f"--token-env {name!r} is not an environment variable name: give the name"
                         " of the variable that holds the token, e.g. --token-env HF_TOKEN")
    value = os.environ.get(name, "").strip()
    if not value:
        if required:
            raise UsageError(f"environment variable {name} is not set: export {name}=hf_... (a token"
                             " from https://huggingface.co/settings/tokens), or leave --token-env out")
        return None
    if "\n" in value or " " in value:
        raise UsageError(f"environment variable {name} does not hold one token"
                         " (it has spaces or line breaks)")
    return value


def list_repo(repo: str, revision: str | None, hub: HubEnv, token: str | None,
              token_hint: str = DEFAULT_TOKEN_ENV) -> RepoListing:
    """The repo's files at `revision` (default main) with their sizes: one API call
    (`HfApi.model_info(files_metadata=True)`). Raises PullError saying what went wrong."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=hub.endpoint).model_info(repo, revision=revision, files_metadata=True,
                                                        token=token)
    except Exception as exc:  # noqa: BLE001 - every hub error becomes a message
        raise PullError(explain(exc, repo, revision, hub, token is not None, token_hint)) from None
    files = tuple(
        RepoFile(s.rfilename, int(s.lfs.size if s.lfs else s.size or 0),
                 s.lfs.sha256 if s.lfs else s.blob_id)
        for s in info.siblings or ()
    )
    if not info.sha:
        raise PullError(f"{hub.endpoint} answered for {repo} without a commit: is HF_ENDPOINT a Hugging"
                        " Face hub?")
    return RepoListing(repo, revision or "main", info.sha, files, bool(info.gated))


def explain(exc: BaseException, repo: str, revision: str | None, hub: HubEnv, had_token: bool,
            token_hint: str = DEFAULT_TOKEN_ENV) -> str:
    """A hub error as a sentence naming the fix (the token is never part of it)."""
    from huggingface_hub import errors as hf_errors

    page = f"{hub.endpoint}/{repo}"
    if isinstance(exc, hf_errors.GatedRepoError):
        if had_token:
            return (f"{repo} is gated and the token in {token_hint} has no access to it: accept its"
                    f" terms at {page} with the account of that token (or use another token)")
        return (f"{repo} is gated: accept its terms at {page}, then give a token with access:"
                f" export {token_hint}=hf_... (vllmtui pull --token-env NAME, or a profile's"
                " hf_token_env, names another variable)")
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return f"{repo} has no revision {revision!r}: give a branch, tag or commit it has (revision:)"
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        private = "" if had_token else f" (a private repo needs a token: export {token_hint}=hf_...)"
        return f"no model repo {repo!r} on {hub.endpoint}{private}: check the name (model:)"
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set: nothing can be downloaded (unset it, or set offline: false)"
    if isinstance(exc, hf_errors.HfHubHTTPError):
        code = exc.response.status_code if exc.response is not None else "?"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{hub.endpoint} answered {code} for {repo}: {first}"
    if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)) \
            and exc.errno is not None:
        return f"cannot write the download ({exc.strerror}: {exc.filename or hub.cache_dir})"
    name = type(exc).__name__
    if "Connect" in name or "Timeout" in name or isinstance(exc, (ConnectionError, TimeoutError)):
        return (f"cannot reach {hub.endpoint} ({name}: {str(exc).strip() or 'no answer'}): check the"
                " network or proxy (HTTPS_PROXY), or HF_ENDPOINT")
    return f"downloading {repo} failed: {name}: {exc}"
