"""`RemoteTail`: a server's log on another host, followed over that host's ssh connection
(the host reads its own file: `hosts serve`'s `log` request), with the interface of the
local follower (`start`, `more`, `offset`)."""

from __future__ import annotations

from typing import Any

from vllmtui.core.errors import VllmtuiError
from vllmtui.hosts.fleet import Hosts


class RemoteTail:
    """Reads `run_dir`'s log on `host` from its end, then what is appended, by offset."""

    def __init__(self, hosts: Hosts, host: str, run_dir: str, lines: int = 2000):
        self.hosts = hosts
        self.host = host
        self.run_dir = run_dir
        self.lines = lines
        self.offset = 0
        self.error: str | None = None
        """Why the last read got nothing (the host unreachable, ...); None when it worked."""

    def _ask(self, offset: int | None) -> dict[str, Any] | None:
        try:
            answer = self.hosts.ask(self.host, {"op": "log", "run_dir": self.run_dir, "offset": offset,
                                                "lines": self.lines}, channel="log")
        except VllmtuiError as exc:
            self.error = str(exc)
            return None
        if not answer.get("ok"):
            self.error = f"{self.host}: {answer.get('error') or 'the log could not be read'}"
            return None
        self.error = None
        return answer

    def start(self) -> tuple[list[str], int]:
        answer = self._ask(None)
        if answer is None:
            return [], self.offset
        self.offset = int(answer.get("offset") or 0)
        return [str(line) for line in answer.get("lines") or []], self.offset

    def more(self) -> tuple[list[str], bool]:
        """(new lines, reset): reset when the host found the file replaced."""
        answer = self._ask(self.offset)
        if answer is None:
            return [], False
        self.offset = int(answer.get("offset") or self.offset)
        return [str(line) for line in answer.get("lines") or []], bool(answer.get("reset"))
