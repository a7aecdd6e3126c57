"""The model files on this machine at a glance: every model in the Hugging Face cache (and
the local directories profiles point at) with its size, revisions, when it was last read and
which profiles use it; the totals and the free disk space. `models.removal` removes them.

The cache is read by huggingface_hub itself (`scan_cache_dir`), never by a parser of ours:
its layout is the library's to change. Reading changes nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vllmtui.core.settings import Settings
from vllmtui.models.config import hf_cache_dir
from vllmtui.models.source import ModelSource, model_source
from vllmtui.profiles.model import LoadedProfile

if TYPE_CHECKING:
    from huggingface_hub import CachedRepoInfo, CachedRevisionInfo


@dataclass(frozen=True)
class CachedRevision:
    """One snapshot of a repo in the cache: its commit, the refs (branches, tags) that point at
    it, its size and the profiles that load it."""

    commit: str
    refs: tuple[str, ...]
    size_on_disk: int
    files: int
    last_modified: float
    path: Path
    profiles: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """`abc1234 (main)`: the short commit and its refs."""
        refs = f" ({', '.join(self.refs)})" if self.refs else ""
        return self.commit[:7] + refs

    def matches(self, revision: str | None) -> bool:
        """Whether `revision` (a branch, tag or commit, None for `main`) names this snapshot."""
        wanted = revision or "main"
        return wanted in self.refs or (len(wanted) >= 7 and self.commit.startswith(wanted))

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "refs": list(self.refs), "size_on_disk": self.size_on_disk,
                "files": self.files, "last_modified": self.last_modified, "path": str(self.path),
                "profiles": list(self.profiles)}


@dataclass(frozen=True)
class CachedModel:
    """A model on disk: a repo of a hub cache (`kind` hub) or a local directory (`local`)."""

    repo_id: str
    revisions: tuple[CachedRevision, ...]
    size_on_disk: int
    last_used: float | None
    """When its files were last read (their access time, as the filesystem keeps it)."""
    path: Path
    profiles: tuple[str, ...]
    kind: Literal["hub", "local"]
    cache_dir: Path | None = None
    incomplete_bytes: int = 0
    """Bytes of interrupted downloads (`*.incomplete` blobs) in this repo."""

    def to_json(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "kind": self.kind, "size_on_disk": self.size_on_disk,
                "last_used": self.last_used, "path": str(self.path), "profiles": list(self.profiles),
                "cache_dir": str(self.cache_dir) if self.cache_dir else None,
                "incomplete_bytes": self.incomplete_bytes,
                "revisions": [r.to_json() for r in self.revisions]}


@dataclass(frozen=True)
class NotCached:
    """A hub model that profiles use and no cache here holds (yet)."""

    repo_id: str
    profiles: tuple[str, ...]
    cache_dir: Path

    def to_json(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "profiles": list(self.profiles), "cache_dir": str(self.cache_dir)}


@dataclass(frozen=True)
class Disk:
    """Free and total bytes of the filesystem that holds `path`."""

    path: Path
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class CacheReport:
    """Everything the `models` listing (and the TUI's Models tab) shows, read at one moment."""

    models: tuple[CachedModel, ...]
    total_bytes: int
    free_bytes: int | None
    """Free space where the default cache is (None: it cannot be read)."""
    cache_dir: Path
    problems: tuple[str, ...] = ()
    not_cached: tuple[NotCached, ...] = ()
    cache_dirs: tuple[Path, ...] = ()
    """Every hub cache read: the default one, then those profiles name (`download-dir`, env)."""
    disks: tuple[Disk, ...] = ()

    def find(self, repo_id: str) -> CachedModel | None:
        """The model of that id (or local path) in the report, None if absent."""
        for model in self.models:
            if model.repo_id == repo_id:
                return model
        return None

    def to_json(self) -> dict[str, Any]:
        return {"cache_dir": str(self.cache_dir), "cache_dirs": [str(d) for d in self.cache_dirs],
                "total_bytes": self.total_bytes, "free_bytes": self.free_bytes,
                "disks": [{"path": str(d.path), "free_bytes": d.free_bytes, "total_bytes": d.total_bytes}
                          for d in self.disks],
                "models": [m.to_json() for m in self.models],
                "not_cached": [n.to_json() for n in self.not_cached], "problems": list(self.problems)}


def cache_report(settings: Settings, profiles: Iterable[LoadedProfile]) -> CacheReport:
    """Read the hub caches (the default one and those the profiles name) and the local model
    directories of `profiles`. Never raises for what it finds on disk: an unreadable cache
    or a corrupted entry is a line in `problems`."""
    sources = [(loaded.profile.name, model_source(loaded.profile, settings)) for loaded in profiles]
    default = hf_cache_dir()
    dirs = list(dict.fromkeys([default] + [s.cache_dir for _, s in sources if s.cache_dir is not None]))
    problems: list[str] = []
    models: list[CachedModel] = []
    for cache_dir in dirs:
        models += _scan(cache_dir, sources, problems)
    models = _inside_hub(models, sources)
    models += _local_models(sources, models, problems)
    held = {(m.repo_id, m.cache_dir) for m in models if m.kind == "hub"}
    missing: dict[tuple[str, Path], list[str]] = {}
    for name, source in sources:
        if source.kind == "hub" and source.cache_dir and (source.repo_id, source.cache_dir) not in held:
            missing.setdefault((source.repo_id, source.cache_dir), []).append(name)
    disks = _disks(dirs)
    return CacheReport(
        models=tuple(sorted(models, key=lambda m: (m.kind != "hub", m.repo_id.lower()))),
        total_bytes=sum(m.size_on_disk for m in models),
        free_bytes=disks[0].free_bytes if disks and disks[0].path == default else None,
        cache_dir=default,
        problems=tuple(problems),
        not_cached=tuple(NotCached(repo, tuple(names), where) for (repo, where), names in missing.items()),
        cache_dirs=tuple(dirs),
        disks=tuple(disks),
    )


def _scan(cache_dir: Path, sources: list[tuple[str, ModelSource]], problems: list[str]) -> list[CachedModel]:
    """The model repos of one hub cache, as huggingface_hub reads them."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return []  # nothing downloaded there yet
    except (ValueError, OSError) as exc:
        problems.append(f"{cache_dir}: cannot read the Hugging Face cache ({exc})")
        return []
    for warning in info.warnings:
        problems.append(f"{cache_dir}: skipped a damaged entry: {warning}"
                        " (delete that folder, or pull the model again)")
    incomplete: dict[Path, int] = {}
    for part in info.incomplete_files:
        repo_path = part.file_path.parent.parent
        incomplete[repo_path] = incomplete.get(repo_path, 0) + part.size_on_disk
    users = [(name, s) for name, s in sources if s.kind == "hub" and s.cache_dir is not None
             and _same_dir(s.cache_dir, cache_dir)]
    return [_model(repo, users, incomplete.get(repo.repo_path, 0), cache_dir)
            for repo in info.repos if repo.repo_type == "model"]


def _model(repo: CachedRepoInfo, users: list[tuple[str, ModelSource]], incomplete: int,
           cache_dir: Path) -> CachedModel:
    mine = [(name, s) for name, s in users if s.repo_id == repo.repo_id]
    revisions = tuple(sorted((_revision(rev, mine) for rev in repo.revisions),
                             key=lambda r: (-r.last_modified, r.commit)))
    return CachedModel(
        repo_id=repo.repo_id, revisions=revisions, size_on_disk=repo.size_on_disk,
        last_used=repo.last_accessed, path=repo.repo_path, profiles=tuple(name for name, _ in mine),
        kind="hub", cache_dir=cache_dir, incomplete_bytes=incomplete,
    )


def _revision(rev: CachedRevisionInfo, users: list[tuple[str, ModelSource]]) -> CachedRevision:
    shell = CachedRevision(rev.commit_hash, tuple(sorted(rev.refs)), rev.size_on_disk, rev.nb_files,
                           rev.last_modified, rev.snapshot_path)
    names = tuple(name for name, s in users if shell.matches(s.revision))
    return CachedRevision(shell.commit, shell.refs, shell.size_on_disk, shell.files, shell.last_modified,
                          shell.path, names)


def _local_models(sources: list[tuple[str, ModelSource]], hub: list[CachedModel],
                  problems: list[str]) -> list[CachedModel]:
    """The local directories (and generated demo models) profiles point at, one entry each;
    a directory inside a hub cache entry counts for that entry instead."""
    by_dir: dict[Path, list[str]] = {}
    for name, source in sources:
        if source.kind == "hub" or source.path is None or not source.path.is_dir():
            continue
        where = source.path.resolve()
        owner = next((m for m in hub if where.is_relative_to(m.path.resolve())), None)
        if owner is None:
            by_dir.setdefault(where, []).append(name)
    out = []
    for path, names in by_dir.items():
        size, last = _du(path, problems)
        out.append(CachedModel(str(path), (), size, last, path, tuple(names), "local"))
    return out


def _inside_hub(hub: list[CachedModel], sources: list[tuple[str, ModelSource]]) -> list[CachedModel]:
    """Hub entries with the profiles that point at one of their snapshot directories by path."""
    out = []
    for model in hub:
        root = model.path.resolve()
        extra = [name for name, s in sources if s.kind != "hub" and s.path is not None
                 and s.path.is_dir() and s.path.resolve().is_relative_to(root)]
        out.append(replace(model, profiles=model.profiles + tuple(extra)) if extra else model)
    return out


def _du(path: Path, problems: list[str]) -> tuple[int, float | None]:
    """Bytes of the regular files under `path` (links followed once, each file counted once)
    and the latest access time among them."""
    size, last, seen = 0, None, set()
    for root, _dirs, files in os.walk(path, onerror=lambda e: problems.append(f"{path}: {e.strerror}")):
        for file in files:
            try:
                info = os.stat(os.path.join(root, file))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            size += info.st_size
            last = info.st_atime if last is None else max(last, info.st_atime)
    return size, last


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _disks(dirs: list[Path]) -> list[Disk]:
    """Free space of each cache's filesystem (the nearest existing parent), one per device."""
    out: list[Disk] = []
    devices: set[int] = set()
    for path in dirs:
        here = next((p for p in (path, *path.parents) if p.exists()), None)
        if here is None:
            continue
        try:
            device = os.stat(here).st_dev
            usage = shutil.disk_usage(here)
        except OSError:
            continue
        if device not in devices:
            devices.add(device)
            out.append(Disk(path, usage.free, usage.total))
    return out
