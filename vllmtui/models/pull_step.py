"""The first step of a server whose model is not in the cache yet: pull it, then exec vLLM.

`vllmtui start` runs it in the server's tmux pane (so a detach, a logout or a closed TUI
leave the download going):

    python -m vllmtui.models.pull_step --repo ORG/NAME [--revision R] --cache-dir DIR
        [--load-format F] [--token-hint NAME] [--offline-after] -- vllm serve ...

It reads the token from HF_TOKEN (the launcher put the profile's `hf_token_env` there; never
argv, never a file), writes its progress to `$VLLMTUI_PULL_PROGRESS` (the run's `pull.json`,
which the server's status shows), prints a line every few seconds to the pane (its log),
and on success execs the command after `--` in its place (same process: the pane, signals and
the stop work as for vLLM itself), with HF_HUB_OFFLINE=1 when `--offline-after` (vLLM then
reads exactly the pulled files and never the network). On failure it says why on stderr and
exits 1 (130 when interrupted): the server shows as crashed with that line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from vllmtui.core.errors import VllmtuiError
from vllmtui.models.progress import ProgressFile, Snapshot, fmt_pair
from vllmtui.models.pull import PullResult, plan_pull, pull
from vllmtui.models.source import arg_value
from vllmtui.profiles.model import Profile

PROGRESS_ENV = "VLLMTUI_PULL_PROGRESS"
"""Where the pull step writes its progress (set by the launcher to the run's pull.json)."""
PRINT_EVERY = 5.0
"""Seconds between two progress lines in a log (a terminal's line is redrawn in place)."""


class Console:
    """Progress for people: on a terminal one line redrawn in place (the total, the rate,
    the time left, the current file), elsewhere (a log) a line every PRINT_EVERY s."""

    def __init__(self, out: TextIO, tty: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.clock = clock
        self._last = -1e9
        self._width = 0

    def show(self, snap: Snapshot, forced: bool = False) -> None:
        now = self.clock()
        every = 0.2 if self.tty else PRINT_EVERY
        if not forced and now - self._last < every:
            return
        if not self.tty and forced and snap.file is None:
            return  # a file ended: the next one's start says so
        self._last = now
        text = snap.line()
        if snap.file:
            text += f" | {snap.file_line()}"
        if self.tty:
            pad = max(0, self._width - len(text))
            self.out.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def end(self) -> None:
        if self.tty and self._width:
            self.out.write("\n")
            self.out.flush()
            self._width = 0


def load_format(profile: Profile) -> str | None:
    """The load format a profile's vLLM uses (its field, or `args: {load-format: F}`)."""
    value = profile.load_format or arg_value(profile.args, "load-format")
    return None if value is None else str(value)


def summary(result: PullResult, seconds: float) -> str:
    """`pulled org/name (main = 1a2b3c4) 15.2 GB in 2m10s: 5 files fetched, 2 were there`."""
    from vllmtui.core.humanize import fmt_duration

    plan = result.plan
    total = plan.choice.total_bytes
    kept = len(plan.choice.files) - len(result.fetched_files)
    had = f", {kept} already in the cache" if kept else ""
    return (f"pulled {plan.listing.repo} ({plan.listing.revision} = {plan.listing.commit[:12]})"
            f" {fmt_pair(total, total)} in {fmt_duration(seconds)}: {len(result.fetched_files)}"
            f" file(s) fetched{had}; weights: {plan.choice.weights}; into {result.snapshot}")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    then: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, then = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog="python -m vllmtui.models.pull_step",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--revision")
    parser.add_argument("--cache-dir", required=True, type=Path)
    parser.add_argument("--load-format")
    parser.add_argument("--token-hint", help="the variable a message tells the user to set")
    parser.add_argument("--offline-after", action="store_true")
    parser.add_argument("--tokenizer-repo", help="the profile's `tokenizer:` when it is another repo")
    parser.add_argument("--tokenizer-revision")
    return parser.parse_args(argv), then


def run(args: argparse.Namespace, progress: ProgressFile | None, console: Console) -> PullResult:
    """The pull, its progress written to `progress` and shown on `console`."""
    if progress is not None:
        progress.write(Snapshot("checking", args.repo, args.revision or "main", updated=time.time()), True)

    def tell(snap: Snapshot, forced: bool) -> None:
        if progress is not None:
            progress.write(snap, forced)
        console.show(snap, forced)

    result: PullResult | None = None
    # the model, then (when the profile names another repo's tokenizer) that tokenizer's files
    for repo, revision, fmt in ((args.repo, args.revision, args.load_format),
                                (args.tokenizer_repo, args.tokenizer_revision, "dummy")):
        if repo is None:
            continue
        plan = plan_pull(repo, revision, args.cache_dir, fmt, token_hint=args.token_hint)
        print(f"vllmtui: pulling {repo} ({plan.listing.revision} = {plan.listing.commit[:12]}):"
              f" {len(plan.choice.files)} file(s), weights: {plan.choice.weights}"
              + (f"; left on the hub: {plan.choice.skipped_text()}" if plan.choice.skipped else ""),
              file=console.out, flush=True)
        done = pull(plan, tell)
        result = result or done
    assert result is not None
    return result


def main(argv: list[str] | None = None) -> int:
    args, then = parse(sys.argv[1:] if argv is None else argv)
    target = os.environ.get(PROGRESS_ENV)
    progress = ProgressFile(Path(target)) if target else None
    console = Console(sys.stdout)
    begin = time.monotonic()

    def failed(message: str) -> None:
        console.end()
        if progress is not None:
            progress.write(Snapshot("failed", args.repo, args.revision or "main", error=message,
                                    updated=time.time()), True)
        print(f"vllmtui: pull failed: {message}", file=sys.stderr, flush=True)

    try:
        result = run(args, progress, console)
    except VllmtuiError as exc:
        failed(str(exc))
        return 1
    except KeyboardInterrupt:
        failed("interrupted (the next start or `vllmtui pull` resumes it)")
        return 130
    console.end()
    print("vllmtui: " + summary(result, time.monotonic() - begin), flush=True)
    if progress is not None:
        done = Snapshot("done", args.repo, result.plan.listing.revision, result.plan.choice.total_bytes,
                        result.plan.choice.total_bytes, len(result.plan.choice.files),
                        len(result.plan.choice.files), commit=result.plan.listing.commit,
                        updated=time.time())
        progress.write(done, True)
    if not then:
        return 0
    if args.offline_after:
        os.environ["HF_HUB_OFFLINE"] = "1"
    sys.stdout.flush()
    try:
        os.execvp(then[0], then)
    except OSError as exc:
        print(f"vllmtui: cannot run {then[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    sys.exit(main())
