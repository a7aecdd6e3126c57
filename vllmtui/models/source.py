"""Where a profile's model files are: a Hugging Face repo in a hub cache (which cache, which
revision), a local directory, or a demo model vllmtui generates.

vLLM reads the hub cache that its environment names: `--download-dir` (a profile's
`args: {download-dir: DIR}`) first, then `HF_HUB_CACHE` / `HF_HOME` (the profile's `env:`,
else vllmtui's own environment, which the server inherits), else `~/.cache/huggingface/hub`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vllmtui.core.settings import Settings
from vllmtui.models import hub
from vllmtui.profiles.launch import DEMO_PREFIX, model_location
from vllmtui.profiles.model import Profile

Kind = Literal["hub", "local", "demo"]


@dataclass(frozen=True)
class ModelSource:
    """One profile's model on disk. `repo_id` is the Hugging Face id (hub) or the path as text."""

    kind: Kind
    repo_id: str
    revision: str | None = None
    cache_dir: Path | None = None  # the hub cache it is read from (hub only)
    path: Path | None = None  # the directory (local and demo)

    @property
    def revision_label(self) -> str:
        """The revision as a person would say it (`main` when none is given)."""
        return self.revision or "main"


def arg_value(args: dict[str, Any], flag: str) -> Any:
    """A vLLM flag's value in a profile's `args:` (written with '-' or '_'), else None."""
    for key in (flag, flag.replace("-", "_")):
        if args.get(key) not in (None, ""):
            return args[key]
    return None


def profile_cache_dir(profile: Profile) -> Path:
    """The hub cache a profile's vLLM reads (see the module's docstring)."""
    download_dir = arg_value(profile.args, "download-dir")
    if download_dir is not None:
        return Path(str(download_dir)).expanduser()
    return hub.HubEnv.from_environ({**os.environ, **profile.env}).cache_dir


def profile_revision(profile: Profile) -> str | None:
    """The revision a profile loads: its `revision:` field, or `args: {revision: R}`."""
    value = getattr(profile, "revision", None) or arg_value(profile.args, "revision")
    return None if value is None else str(value)


def model_source(profile: Profile, settings: Settings, model: str | None = None) -> ModelSource:
    """Where `profile`'s model (or `model`, e.g. its `tokenizer:`) is read from."""
    text = model if model is not None else profile.model
    if text.startswith(DEMO_PREFIX):
        _, path = model_location(profile, settings)
        return ModelSource("demo", text, path=path)
    expanded = Path(text).expanduser()
    if not hub.is_repo_id(text):
        return ModelSource("local", str(expanded), path=expanded)
    if model is None:
        revision = profile_revision(profile)
    else:
        value = arg_value(profile.args, "tokenizer-revision")
        revision = None if value is None else str(value)
    return ModelSource("hub", text, revision, profile_cache_dir(profile))
