"""`vllmtui pull PROFILE|ORG/NAME`: download a model's files (only those vLLM reads) into the
Hugging Face cache, with progress, after a free-space check; an interrupted pull resumes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vllmtui.cli.common import AddCommand
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.models import hub, offline
from vllmtui.models.progress import fmt_pair, fmt_size
from vllmtui.models.pull import PullPlan, free_bytes, plan_pull, pull
from vllmtui.models.pull_step import Console, load_format, summary
from vllmtui.models.source import model_source, profile_cache_dir, profile_revision
from vllmtui.profiles.loading import find_profile
from vllmtui.profiles.model import OFFLINE_VARIABLES, PROFILE_SUFFIXES


@dataclass(frozen=True)
class Target:
    """What `vllmtui pull` pulls (plan_pull's arguments)."""

    repo: str
    revision: str | None
    cache_dir: Path
    load_format: str | None
    environ: dict[str, str]
    token_env: str | None

    def plan(self) -> PullPlan:
        return plan_pull(self.repo, self.revision, self.cache_dir, self.load_format, self.environ,
                         self.token_env)


def _targets(args: argparse.Namespace, settings: Settings) -> list[Target]:
    """What the command names: the model, and a profile's tokenizer when another repo holds it
    (its small files only); empty: nothing to pull."""
    name: str = args.target
    environ = dict(os.environ)
    if "/" in name and not name.endswith(PROFILE_SUFFIXES):
        if not hub.is_repo_id(name):
            raise UsageError(f"{name!r} is neither a profile nor a Hugging Face repo id (org/name)")
        cache = Path(args.cache_dir) if args.cache_dir else hub.HubEnv.from_environ().cache_dir
        return [Target(name, args.revision, cache, args.load_format, environ, args.token_env)]
    try:
        loaded = find_profile(settings, name)
    except UsageError as exc:
        raise UsageError(f"{exc} (to pull a repo of the hub, give its org/name)") from None
    profile = loaded.profile
    source = model_source(profile, settings)
    if source.kind != "hub":
        what = "a demo model vllmtui generates" if source.kind == "demo" else "a local directory"
        print(f"nothing to pull: {profile.name}'s model is {what} ({source.path})")
        return []
    # the profile's `offline:` is vLLM's; pulling is what an offline profile needs done first
    environ.update({k: v for k, v in profile.env.items() if k not in OFFLINE_VARIABLES})
    cache = Path(args.cache_dir) if args.cache_dir else profile_cache_dir(profile)
    token_env = args.token_env or profile.hf_token_env
    targets = [Target(source.repo_id, args.revision or profile_revision(profile), cache,
                      args.load_format or load_format(profile), environ, token_env)]
    for check in offline.check_files(profile, settings):
        if check.source.repo_id != source.repo_id:  # `tokenizer:` names another repo
            targets.append(Target(check.source.repo_id, check.source.revision, cache, "dummy", environ,
                                  token_env))
    return targets


def describe(plan: PullPlan) -> list[str]:
    """What a pull fetches: the files with their sizes, what stays on the hub, the disk."""
    lines = [f"{plan.listing.repo} at {plan.listing.revision} (commit {plan.listing.commit[:12]}),"
             f" weights: {plan.choice.weights}"]
    for f in plan.choice.files:
        size, unit = fmt_size(f.size)
        state = " (in the cache)" if f.path in plan.present else (
            f" ({fmt_pair(plan.partial[f.path], f.size)} there: resumes)" if f.path in plan.partial else "")
        lines.append(f"  {size:>6} {unit:<2}  {f.path}{state}")
    if plan.choice.skipped:
        lines.append(f"  left on the hub: {plan.choice.skipped_text()}")
    lines.extend(f"  note: {n}" for n in plan.choice.notes)
    free, where = free_bytes(plan.cache_dir)
    need, unit = fmt_size(plan.needed_bytes)
    have, funit = fmt_size(free)
    lines.append(f"  to download: {need} {unit}; free on {where}: {have} {funit}; cache: {plan.cache_dir}")
    return lines


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    for target in _targets(args, settings):
        _pull_one(target, args.dry_run)
    return 0


def _pull_one(target: Target, dry_run: bool) -> None:
    plan = target.plan()
    repo = target.repo
    for line in describe(plan):
        print(line, flush=True)
    if dry_run:
        return
    if plan.needed_bytes == 0:
        pull(plan)  # links what is there, writes the ref
        print(f"{repo}: every file is in the cache already ({plan.storage})")
        return
    console = Console(sys.stdout)
    begin = time.monotonic()
    try:
        result = pull(plan, console.show)
    finally:
        console.end()
    print(summary(result, time.monotonic() - begin))


def add_parsers(add: AddCommand) -> None:
    """Register pull."""
    p = add("pull", cmd_pull, "download a model's files into the Hugging Face cache (with progress; resumes)")
    p.add_argument("target", metavar="PROFILE|ORG/NAME", help="a profile (its model) or a hub repo id")
    p.add_argument("--revision", help="branch, tag or commit (default: the profile's, else main)")
    p.add_argument("--token-env", metavar="NAME",
                   help="environment variable holding the token for a gated or private model"
                        " (default: the profile's hf_token_env, else HF_TOKEN or a stored login)")
    p.add_argument("--load-format", metavar="FORMAT",
                   help="which weights to fetch, as vLLM's --load-format (default: the profile's, else auto)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="the hub cache to pull into (default: the profile's download-dir / HF_HUB_CACHE)")
    p.add_argument("--dry-run", action="store_true", help="list what would be fetched; download nothing")
