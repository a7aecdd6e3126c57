"""Pulling before a start: when a profile's model is a hub repo that the cache lacks files of,
the server's pane first runs the pull step (`models.pull_step`), which downloads with its
progress in the run's `pull.json` and then execs vLLM. Its status reads that file: state
`starting`, phase `downloading`, detail `downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left`.

No pull step for a local directory, a demo model, a bare name without `org/`, a server that
runs offline (the offline check says what is missing instead), or a model whose files are all
in the cache (`load_format: dummy` needs only config.json and the tokenizer).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from vllmtui.core.settings import Settings
from vllmtui.models import offline
from vllmtui.models.progress import PROGRESS_FILE, Snapshot, read_progress, status_line
from vllmtui.models.pull_step import PROGRESS_ENV, load_format
from vllmtui.models.source import model_source
from vllmtui.profiles.launch import LaunchSpec
from vllmtui.profiles.model import Profile

PHASE = "downloading"
"""The start phase of a server whose pane is pulling its model."""


@dataclass(frozen=True)
class PullStep:
    """A start's pull: the argv that runs it before vLLM's, and what it pulls."""

    argv: tuple[str, ...]
    repo: str
    missing: tuple[str, ...]  # what the cache lacks ("" parts: not in the cache at all)


def pull_step(profile: Profile, settings: Settings, spec: LaunchSpec) -> PullStep | None:
    """The pull a start of `profile` runs first, or None when none is needed."""
    source = model_source(profile, settings)
    # a bare legacy name (`gpt2`) is left to vLLM: the hub's models are `org/name` now
    if source.kind != "hub" or "/" not in source.repo_id or offline.runs_offline(spec):
        return None
    every = offline.check_files(profile, settings)
    checks = [c for c in every if c.source.repo_id == profile.model]
    others = [c for c in every if c.source.repo_id != profile.model]  # the tokenizer of another repo
    if not checks or all(not c.missing and not c.absent for c in every):
        return None
    argv = [sys.executable, "-m", "vllmtui.models.pull_step", "--repo", source.repo_id,
            "--cache-dir", str(source.cache_dir)]
    if source.revision:
        argv += ["--revision", source.revision]
    fmt = load_format(profile)
    if fmt:
        argv += ["--load-format", fmt]
    if profile.hf_token_env:
        argv += ["--token-hint", profile.hf_token_env]
    for other in others:
        argv += ["--tokenizer-repo", other.source.repo_id]
        if other.source.revision:
            argv += ["--tokenizer-revision", other.source.revision]
    if profile.offline is None:
        argv.append("--offline-after")  # vLLM reads the pulled files, never the network
    return PullStep(tuple(argv), source.repo_id, checks[0].missing or (checks[0].absent,))


def wrap(spec: LaunchSpec, step: PullStep) -> LaunchSpec:
    """The launch spec whose pane pulls first, then execs vLLM (`pull_step ... -- vllm ...`)."""
    return replace(spec, argv=(*step.argv, "--", *spec.argv))


def progress_env(run_dir: Path) -> dict[str, str]:
    """The server variable that tells the pull step where its progress goes."""
    return {PROGRESS_ENV: str(run_dir / PROGRESS_FILE)}


def pull_progress(run_dir: Path | None) -> Snapshot | None:
    """The run's pull, when it had one."""
    return None if run_dir is None else read_progress(run_dir / PROGRESS_FILE)


def pulling_detail(run_dir: Path | None) -> str | None:
    """While the pane pulls (its progress says checking or downloading): the status detail."""
    snap = pull_progress(run_dir)
    if snap is None or snap.state not in ("checking", "downloading"):
        return None
    return status_line(snap)


def failed_detail(run_dir: Path | None) -> str | None:
    """Why the run's pull failed, when it did."""
    snap = pull_progress(run_dir)
    return snap.line() if snap is not None and snap.state == "failed" else None
