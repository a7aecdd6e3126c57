"""Pulling a model repo into the Hugging Face cache: only the files vLLM reads (`hub.select_files`),
with progress, after a free-space check, resuming an interrupted file.

The engine is huggingface_hub's: `HfApi.model_info` lists the files with their sizes, its
`get_hf_file_metadata` / `http_get` fetch one file (redirects, auth, retries, Range), and
`hf_hub_download` places it in the cache (snapshot symlink). huggingface_hub 2.4 keeps no
partial file between processes (its temporary name is unique to each download), so a pull
writes each file's bytes to `blobs/<etag>.incomplete` itself, continues it with a Range
request the next time, and hands the finished blob to `hf_hub_download`. `refs/<revision>`
is written last: a repo whose ref is there was pulled completely.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from vllmtui.core.errors import UsageError
from vllmtui.models import hub
from vllmtui.models.progress import Snapshot, Tracker

REGEX_COMMIT = frozenset("0123456789abcdef")
CHUNK = 1 << 20
"""Bytes huggingface_hub reads per step of a download (its default, 10 MB, is what a resume
would lose and how coarse the progress is)."""
INCOMPLETE = ".incomplete"


@dataclass(frozen=True)
class PullPlan:
    """What a pull will fetch: the listing, the files chosen, what is already there."""

    listing: hub.RepoListing
    choice: hub.FileChoice
    hub: hub.HubEnv
    cache_dir: Path
    token: str | None
    token_env: str
    present: frozenset[str] = frozenset()  # files complete in the cache already
    partial: dict[str, int] = field(default_factory=dict)  # file -> bytes of an interrupted pull

    @property
    def storage(self) -> Path:
        return self.cache_dir / ("models--" + self.listing.repo.replace("/", "--"))

    @property
    def needed_bytes(self) -> int:
        """Bytes still to download (complete files and partial bytes left out)."""
        return sum(max(0, f.size - self.partial.get(f.path, 0)) for f in self.choice.files
                   if f.path not in self.present)

    @property
    def done_bytes(self) -> int:
        return self.choice.total_bytes - self.needed_bytes


@dataclass(frozen=True)
class PullResult:
    """A finished pull: where the snapshot is and what was fetched."""

    plan: PullPlan
    snapshot: Path
    fetched_files: tuple[str, ...]
    fetched_bytes: int


def is_commit(revision: str | None) -> bool:
    return revision is not None and len(revision) == 40 and set(revision) <= REGEX_COMMIT


def plan_pull(repo: str, revision: str | None, cache_dir: Path, load_format: str | None,
              environ: dict[str, str] | None = None, token_env: str | None = None,
              token_hint: str | None = None) -> PullPlan:
    """List the repo and choose its files; raises PullError/UsageError saying what to fix.
    `token_env`: the variable holding the token (None: HF_TOKEN or a stored login);
    `token_hint`: the variable messages tell the user to set (default: that one)."""
    if not hub.is_repo_id(repo):
        raise UsageError(f"{repo!r} is not a Hugging Face repo id: give it as org/name"
                            " (e.g. Qwen/Qwen2.5-0.5B-Instruct)")
    hub.check_revision(revision)
    hub_env = hub.HubEnv.from_environ(environ)
    if hub_env.offline:
        raise UsageError("HF_HUB_OFFLINE is set: nothing can be downloaded (unset it, or set the"
                            " profile's offline: false)")
    source = token_env or hub.DEFAULT_TOKEN_ENV
    token = hub.token_from(source, required=token_env is not None and token_env != hub.DEFAULT_TOKEN_ENV)
    name = token_hint or source
    listing = hub.list_repo(repo, revision, hub_env, token, name)
    if listing.gated and token is None and _stored_token() is None:
        page = f"{hub_env.endpoint}/{repo}"
        raise UsageError(f"{repo} is gated and no token was given: accept its terms at {page}, then"
                            f" export {name}=hf_... (a token of that account) and pull again")
    choice = hub.select_files(listing.files, load_format)
    if not choice.files:
        raise hub.PullError(f"{repo} at {listing.revision} has no files vLLM reads")
    plan = PullPlan(listing, choice, hub_env, cache_dir, token, name)
    return _with_cache_state(plan)


def _stored_token() -> str | None:
    """A token huggingface_hub finds by itself (HF_TOKEN, a stored `hf auth login`)."""
    from huggingface_hub import get_token

    try:
        return get_token()
    except Exception:  # noqa: BLE001 - an unreadable token file is no token
        return None


def _with_cache_state(plan: PullPlan) -> PullPlan:
    """The plan with what the cache already holds (complete files, partial blobs)."""
    snapshot = plan.storage / "snapshots" / plan.listing.commit
    present, partial = set(), {}
    for f in plan.choice.files:
        blob = plan.storage / "blobs" / (f.etag or "-")
        if (snapshot / f.path).exists() or (f.etag and blob.is_file()):
            present.add(f.path)
        elif f.etag and (part := blob.with_name(blob.name + INCOMPLETE)).is_file():
            partial[f.path] = min(part.stat().st_size, f.size)
    return PullPlan(plan.listing, plan.choice, plan.hub, plan.cache_dir, plan.token, plan.token_env,
                    frozenset(present), partial)


def free_bytes(path: Path) -> tuple[int, Path]:
    """Free bytes on the file system `path` is (or will be) on, and the folder measured."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free, probe


def check_space(plan: PullPlan) -> None:
    """Refuse before the first byte when the files left do not fit on the cache's disk."""
    from vllmtui.models.progress import fmt_size

    need = plan.needed_bytes
    free, where = free_bytes(plan.cache_dir)
    if need > free:
        n, unit = fmt_size(need)
        f, funit = fmt_size(free)
        raise hub.PullError(
            f"{plan.listing.repo} needs {n} {unit} more but {where} has {f} {funit} free: free space"
            f" there, or pull into another cache (HF_HUB_CACHE=DIR, or the profile's"
            f" args: {{download-dir: DIR}})")


class _Bar:
    """The tqdm stand-in huggingface_hub's downloads report to (`tqdm_class`): it forwards
    the byte counts to a Tracker. (A class only in duck type: huggingface_hub instantiates
    any callable it is given with tqdm's keyword arguments.)"""

    def __init__(self, tracker: Tracker, tick: Callable[[], None], **kwargs: Any):
        self.tracker, self.tick = tracker, tick
        self.n = int(kwargs.get("initial") or 0)
        self.total = kwargs.get("total")

    def update(self, n: float | None = 1) -> None:
        count = int(n or 0)
        self.n += count
        self.tracker.advance(count)
        self.tick()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

    def refresh(self) -> None:
        return None

    def set_postfix_str(self, *args: object, **kwargs: object) -> None:
        return None

    def set_description(self, *args: object, **kwargs: object) -> None:
        return None

    set_description_str = set_description
    set_transfer_postfix_str = set_postfix_str


def pull(plan: PullPlan, on_progress: Callable[[Snapshot, bool], None] | None = None) -> PullResult:
    """Fetch the plan's files (small ones first: config.json and the weights' index arrive
    before the weights, so a planner can read them). `on_progress(snapshot, forced)` hears
    of every chunk (forced: a file began or ended). Raises PullError."""
    from huggingface_hub import constants

    check_space(plan)
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK)
    listing = plan.listing
    tracker = Tracker(listing.repo, listing.revision, plan.choice.total_bytes, len(plan.choice.files),
                      done_bytes=sum(f.size for f in plan.choice.files if f.path in plan.present))
    tracker.commit = listing.commit

    def tell(forced: bool = False) -> None:
        if on_progress is not None:
            on_progress(tracker.snapshot(), forced)

    files = list(plan.choice.files)
    fetched: list[str] = []
    try:
        while files:
            f = files.pop(0)
            if f.path in plan.present:
                tracker.skip_file()
                continue
            tracker.start_file(f.path, f.size)
            tell(True)
            _fetch(plan, f, tracker, tell)
            tracker.end_file(f.size)
            fetched.append(f.path)
            tell(True)
            if f.path == plan.choice.index:  # fetch only the shards the index lists
                files = _narrowed(plan, files)
        _write_ref(plan)
    except hub.PullError:
        raise
    except Exception as exc:  # noqa: BLE001 - every hub or disk error becomes a message
        raise hub.PullError(hub.explain(exc, listing.repo, listing.revision, plan.hub,
                                        plan.token is not None, plan.token_env)) from None
    snapshot = plan.storage / "snapshots" / listing.commit
    return PullResult(plan, snapshot, tuple(fetched), tracker.done_bytes - plan.done_bytes)


def _narrowed(plan: PullPlan, files: list[hub.RepoFile]) -> list[hub.RepoFile]:
    import json

    index = plan.storage / "snapshots" / plan.listing.commit / str(plan.choice.index)
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError):
        return files
    narrowed = hub.narrow_to_index(hub.FileChoice(tuple(files), plan.choice.weights), data)
    return list(narrowed.files)


def _fetch(plan: PullPlan, f: hub.RepoFile, tracker: Tracker, tell: Callable[[bool], None]) -> None:
    """One file into the cache: its bytes into `blobs/<etag>.incomplete` (continued where an
    earlier pull stopped), then `hf_hub_download` links the blob into the snapshot."""
    from filelock import FileLock
    from huggingface_hub import hf_hub_download, hf_hub_url
    from huggingface_hub.file_download import get_hf_file_metadata, http_get
    from huggingface_hub.utils._headers import build_hf_headers

    listing = plan.listing
    kwargs: dict[str, Any] = {"endpoint": plan.hub.endpoint, "token": plan.token}

    def bar(**bar_kwargs: Any) -> _Bar:
        return _Bar(tracker, lambda: tell(False), **bar_kwargs)

    url = hf_hub_url(listing.repo, f.path, revision=listing.commit, endpoint=plan.hub.endpoint)
    meta = get_hf_file_metadata(url, token=plan.token, endpoint=plan.hub.endpoint)
    etag = meta.etag or f.etag
    blob = plan.storage / "blobs" / str(etag)
    if meta.xet_file_data is None and etag and not blob.exists():
        from urllib.parse import urlparse

        headers = build_hf_headers(token=plan.token)
        if urlparse(meta.location).netloc != urlparse(url).netloc:
            headers.pop("authorization", None)  # a signed CDN url: no token there
        blob.parent.mkdir(parents=True, exist_ok=True)
        lock = plan.cache_dir / ".locks" / plan.storage.name / f"{etag}.vllmtui-pull.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock)):  # one pull at a time appends to a partial file
            if not blob.exists():  # (another pull may have finished it meanwhile)
                part = blob.with_name(blob.name + INCOMPLETE)
                with part.open("ab") as out:
                    resume = out.tell()
                    if resume > (meta.size or f.size):
                        out.truncate(0)
                        resume = 0
                    tracker.resumed(resume)
                    http_get(meta.location, cast(Any, out), resume_size=resume, headers=headers,
                             expected_size=meta.size, displayed_filename=f.path,
                             tqdm_class=cast(Any, bar))
                os.chmod(part, 0o644)
                os.replace(part, blob)
    # links the blob (or, for Xet storage, downloads it with its own engine)
    hf_hub_download(listing.repo, f.path, revision=listing.commit, cache_dir=plan.cache_dir,
                    tqdm_class=cast(Any, bar), **kwargs)


def _write_ref(plan: PullPlan) -> None:
    """`refs/<revision>` -> the commit, written atomically once every file is there."""
    revision = plan.listing.revision
    hub.check_revision(revision)  # the ref is a file named by it: never outside refs/
    if is_commit(revision):
        return
    ref = plan.storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
    tmp.write_text(plan.listing.commit)
    os.replace(tmp, ref)
