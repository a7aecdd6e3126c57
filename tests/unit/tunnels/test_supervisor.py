"""The tunnel supervisor reads ssh's output: failures diagnosed, chatter dropped."""

from __future__ import annotations

import pytest

from vllmtui.tunnels.supervisor import diagnose, keep_line


@pytest.mark.parametrize(
    ("line", "key", "permanent"),
    [
        ("root@127.0.0.1: Permission denied (publickey).", "auth", True),
        ("Host key verification failed.", "hostkey", True),
        ("Error: remote port forwarding failed for listen port 9000", "remote-forward", False),
        ("bind [127.0.0.1]:9000: Address already in use", "local-port", False),
        ("ssh: connect to host 10.0.0.1 port 22: No route to host", "unreachable", False),
        ("Timeout, server gpu not responding.", "timeout", False),
        ("Connection to 127.0.0.1 closed by remote host.", "closed", False),
        ("command-line line 0: Bad configuration option: foo", "config", True),
    ],
)
def test_diagnose_ssh_output(line: str, key: str, permanent: bool) -> None:
    found = diagnose(["debug1: Connecting to gpu", line])
    assert found is not None and (found.key, found.permanent) == (key, permanent)


def test_supervisor_keeps_telling_lines_and_drops_chatter() -> None:
    assert keep_line('Authenticated to gpu ([10.0.0.1]:22) using "publickey".')
    assert keep_line("debug1: remote forward success for: listen 9000, connect 127.0.0.1:8000")
    assert not keep_line("debug1: channel 2: new direct-tcpip [direct-tcpip]")
    assert not keep_line("debug2: channel 0: rcvd adjust 65536")
