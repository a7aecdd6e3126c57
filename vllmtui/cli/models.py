"""`vllmtui models [--json]`: every model on disk (the Hugging Face cache and the local model
directories profiles point at), and `vllmtui models rm REPO_ID [--revision R] [--yes]`: remove
one from the cache after a confirmation naming the space it frees, refused while a running
server uses it (docs/models.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vllmtui.cli.common import AddCommand
from vllmtui.core.settings import Settings
from vllmtui.models.cache import CacheReport, cache_report
from vllmtui.models.listing import not_cached_lines, report_rows, table, totals_text
from vllmtui.models.removal import plan_removal, refuse_busy, remove
from vllmtui.profiles.loading import discover
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.model_use import servers_using


def _report(settings: Settings) -> tuple[CacheReport, list[LoadedProfile]]:
    good, _broken = discover(settings)  # a broken profile is `vllmtui profiles`' to report
    return cache_report(settings, good), good


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    report, _ = _report(settings)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    if report.models:
        for line in table(report_rows(report, time.time())):
            print(line)
    else:
        print(f"no models in the Hugging Face cache {report.cache_dir}, and no profile points at a"
              " local model directory")
    for line in not_cached_lines(report):
        print(line)
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(totals_text(report))
    return 0


def _confirmed(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:  # no terminal to ask: no
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_models_rm(args: argparse.Namespace, settings: Settings) -> int:
    report, good = _report(settings)
    cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else None
    removal = plan_removal(report, args.repo_id, args.revision, cache_dir)
    busy = servers_using(removal, Fleet(settings).statuses(good))
    refuse_busy(removal, busy)
    if not args.yes and not _confirmed(removal.question()):
        print("nothing removed (answer y to remove it, or pass --yes)")
        return 1
    result = remove(removal, busy)
    print(result.summary())
    return 1 if result.left else 0


def add_parsers(add: AddCommand) -> None:
    """Register `vllmtui models` and `vllmtui models rm`."""
    p = add("models", cmd_models, "the model files on disk: the Hugging Face cache and local model"
            " directories, sizes, revisions, last used, the profiles using them; rm removes one")
    p.add_argument("--json", action="store_true", help="machine-readable")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    rm = sub.add_parser("rm", help="remove a model (or one revision) from the Hugging Face cache",
                        description="Remove a model, or one revision of it, from the Hugging Face cache"
                        " (blobs another revision uses stay). Asks first, naming the space it frees;"
                        " refused while a running server uses the files.")
    rm.set_defaults(handler=cmd_models_rm)
    rm.add_argument("repo_id", metavar="REPO_ID", help="the model's Hugging Face id (org/name)")
    rm.add_argument("--revision", metavar="R", help="only this revision (a branch, tag or commit)")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask")
    rm.add_argument("--cache-dir", metavar="DIR", help="the cache to remove it from (when in several)")
