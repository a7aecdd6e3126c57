"""The one way a screen or panel runs blocking work: a Textual thread worker whose failure
becomes a `WorkerFailed` message (the App turns it into a notification) instead of ending the
app. Domain calls already return readings that say what failed; this catches the rest."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from textual import work
from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker

P = ParamSpec("P")
N = TypeVar("N", bound=DOMNode)


@dataclass
class WorkerFailed(Message):
    """A worker raised: `what` it was doing and the error, for one notification."""

    what: str
    error: str


def worker(
    what: str, *, group: str, exclusive: bool = False
) -> Callable[[Callable[Concatenate[N, P], None]], Callable[Concatenate[N, P], Worker[None]]]:
    """Decorate a method to run in a thread worker of its node (`exclusive`: a new call
    cancels the one running in `group`). An exception is posted as `WorkerFailed(what, ...)`."""

    def decorate(method: Callable[Concatenate[N, P], None]) -> Callable[Concatenate[N, P], Worker[None]]:
        @functools.wraps(method)
        def guarded(node: N, /, *args: P.args, **kwargs: P.kwargs) -> None:
            try:
                method(node, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - one notification, never a dead app
                node.post_message(WorkerFailed(what, f"{type(exc).__name__}: {exc}"))

        # description: else Textual describes each worker by the repr of its arguments (a
        # Selection of 50 profiles: ~2 ms a key press)
        return work(guarded, thread=True, exclusive=exclusive, group=group, name=what, description=what,
                    exit_on_error=False)

    return decorate
