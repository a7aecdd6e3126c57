"""Removing a model (or some of its revisions) from a Hugging Face cache, with the library's
own strategy (`HFCacheInfo.delete_revisions`): blobs another revision still links to stay.

`plan_removal` says what would go and how many bytes that frees (the confirmation's text);
`remove` refuses while something uses the files (the running servers its caller names, any
process that has one of them open or mapped), then deletes and checks that it is gone.
Running servers are the caller's to find (`servers.model_use.servers_using`): this layer
knows no tmux.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vllmtui.core import procs
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.humanize import fmt_bytes
from vllmtui.models.cache import CachedModel, CachedRevision, CacheReport

if TYPE_CHECKING:
    from huggingface_hub import DeleteCacheStrategy


@dataclass(frozen=True)
class Removal:
    """What removing `model` (all of it, or `revisions`) would delete, and the bytes freed."""

    model: CachedModel
    revisions: tuple[CachedRevision, ...]
    whole_repo: bool
    freed_bytes: int
    strategy: DeleteCacheStrategy = field(repr=False, compare=False)

    @property
    def what(self) -> str:
        """`Qwen/X` or `Qwen/X revision abc1234 (main)`."""
        if self.whole_repo:
            return self.model.repo_id
        return f"{self.model.repo_id} revision {', '.join(r.label for r in self.revisions)}"

    def question(self) -> str:
        """The confirmation, naming what goes, from where, and the space it frees."""
        count = len(self.revisions)
        scope = f"all {count} revisions" if self.whole_repo and count > 1 else (
            "its only revision" if self.whole_repo else f"{count} of {len(self.model.revisions)} revisions")
        return (f"remove {self.what} ({scope}) from {self.model.cache_dir}?"
                f" This frees {fmt_bytes(self.freed_bytes)}.")

    def paths(self) -> list[Path]:
        """What the deletion unlinks: whole repo folders, snapshots, refs, then blobs."""
        s = self.strategy
        return sorted(s.repos) + sorted(s.snapshots) + sorted(s.refs) + sorted(s.blobs)


@dataclass(frozen=True)
class RemovalResult:
    """A removal that happened: what went, the bytes freed, and what could not be removed."""

    repo_id: str
    revisions: tuple[str, ...]
    freed_bytes: int
    left: tuple[Path, ...] = ()

    def summary(self) -> str:
        """One line for the user."""
        text = f"removed {self.repo_id} ({', '.join(self.revisions)}): {fmt_bytes(self.freed_bytes)} freed"
        if self.left:
            text += f"; {len(self.left)} path(s) could not be removed, e.g. {self.left[0]}"
        return text


def plan_removal(report: CacheReport, repo_id: str, revision: str | None = None,
                 cache_dir: Path | None = None) -> Removal:
    """What `vllmtui models rm REPO_ID [--revision R]` would delete. UsageError (changing
    nothing) for a model not in the cache, a local directory, or a revision not cached."""
    model = _find(report, repo_id, cache_dir)
    if revision is None:
        chosen = model.revisions
    else:
        chosen = tuple(r for r in model.revisions if r.matches(revision) or r.commit == revision)
        if not chosen:
            cached = ", ".join(r.label for r in model.revisions) or "none"
            raise UsageError(f"{repo_id} has no revision {revision!r} in {model.cache_dir}"
                             f" (cached: {cached}); nothing removed")
    from huggingface_hub import CacheNotFound, scan_cache_dir

    assert model.cache_dir is not None  # a hub model's
    try:
        with _quiet():
            strategy = scan_cache_dir(model.cache_dir).delete_revisions(*(r.commit for r in chosen))
    except (CacheNotFound, OSError, ValueError) as exc:
        raise UsageError(f"{model.cache_dir}: cannot read the Hugging Face cache ({exc}); nothing removed"
                         ) from None
    whole = len(chosen) == len(model.revisions)
    return Removal(model, chosen, whole, strategy.expected_freed_size, strategy)


def _find(report: CacheReport, repo_id: str, cache_dir: Path | None) -> CachedModel:
    found = [m for m in report.models if m.repo_id == repo_id]
    hub = [m for m in found if m.kind == "hub" and (cache_dir is None or m.cache_dir == cache_dir)]
    if len(hub) > 1:
        places = ", ".join(str(m.cache_dir) for m in hub)
        raise UsageError(f"{repo_id} is in {len(hub)} caches ({places}): pick one with --cache-dir DIR")
    if hub:
        return hub[0]
    if found:
        raise UsageError(f"{repo_id} is a local directory, not a Hugging Face cache entry: vllmtui removes"
                         " only what is in the cache; delete the directory yourself if you mean to")
    from difflib import get_close_matches

    ids = [m.repo_id for m in report.models if m.kind == "hub"]
    close = get_close_matches(repo_id, ids, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    where = cache_dir or report.cache_dir
    raise UsageError(f"no model {repo_id!r} in the Hugging Face cache {where}{hint};"
                     " `vllmtui models` lists what is there")


def holders(removal: Removal) -> list[procs.ProcInfo]:
    """The processes that have a file of the removal open or mapped (a running vLLM that
    still reads its weights, a copy in progress)."""
    return procs.holding(_real_files(removal))


def _real_files(removal: Removal) -> set[str]:
    s = removal.strategy
    files = {os.path.realpath(p) for p in s.blobs}
    for top in (*s.repos, *s.snapshots):
        for root, _dirs, names in os.walk(top):
            files.update(os.path.realpath(os.path.join(root, n)) for n in names)
    return files


def refuse_busy(removal: Removal, busy: Sequence[str]) -> None:
    """UsageError naming the running servers (`name (port N)`) that use the files, and the
    fix; nothing when `busy` is empty."""
    if busy:
        names = ", ".join(busy)
        first = busy[0].split(" ")[0]
        raise UsageError(f"{removal.what} is in use by the running server{'s' if len(busy) > 1 else ''}"
                         f" {names}: stop it first (`vllmtui stop {first}`, or x in the TUI);"
                         " nothing removed")


def remove(removal: Removal, busy: Sequence[str] = ()) -> RemovalResult:
    """Delete what `removal` names. Refuses (UsageError, nothing removed) while `busy` (the
    running servers that use the model, named by the caller) is not empty, while a process
    holds one of its files, or when this user may not delete them."""
    what = removal.what
    refuse_busy(removal, busy)
    held = holders(removal)
    if held:
        names = ", ".join(f"pid {p.pid} ({p.command[:60]})" for p in held[:3])
        raise UsageError(f"{what}: its files are open in {names}: end those first; nothing removed")
    for path in removal.paths():
        parent = path.parent
        if os.path.lexists(path) and not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{what}: no permission to delete in {parent}: run as the user who owns the"
                             " cache; nothing removed")
    with _quiet():
        removal.strategy.execute()
    left = tuple(p for p in removal.paths() if os.path.lexists(p))
    result = RemovalResult(removal.model.repo_id, tuple(r.label for r in removal.revisions),
                           removal.freed_bytes, left)
    if left and len(left) == len(removal.paths()):
        raise VllmtuiError(f"{what}: nothing could be removed (first: {left[0]})")
    return result


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """huggingface_hub logs a failed deletion with a traceback: `remove` reports what is left."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
