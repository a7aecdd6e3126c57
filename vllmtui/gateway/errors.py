"""What the gateway's parts share: the mark of the servers it started and the error a
request gets when its model cannot be served now."""

from __future__ import annotations

MANAGED = "gateway"
"""The `managed-by` mark on a server the gateway started (the only ones it sleeps, stops or swaps)."""


class GatewayUnavailable(Exception):
    """A request the gateway cannot serve now: the OpenAI-style error it answers with."""

    def __init__(self, status: int, message: str, code: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after
