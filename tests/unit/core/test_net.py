"""The one rule for turning a bind address into an address a local client connects to."""

from __future__ import annotations

import pytest

from vllmtui.core.net import base_url, bracketed, client_host


@pytest.mark.parametrize(
    ("bind", "client"),
    [
        (None, "127.0.0.1"),
        ("", "127.0.0.1"),
        ("*", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("::", "::1"),  # ssh's IPv6 listeners take no IPv4; ::1 also reaches a dual-stack server
        ("127.0.0.1", "127.0.0.1"),
        ("10.1.2.3", "10.1.2.3"),
        ("::1", "::1"),
        ("gpu-box", "gpu-box"),
    ],
)
def test_client_host(bind: str | None, client: str) -> None:
    assert client_host(bind) == client


def test_base_url_brackets_ipv6() -> None:
    assert base_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert base_url("::", 8000) == "http://[::1]:8000"
    assert base_url("fe80::1", 80) == "http://[fe80::1]:80"
    assert bracketed("[::1]") == "[::1]" and bracketed("box") == "box"
