"""Tunnel specs: validation, the ssh command, destinations, the session option."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.support.tunnels import loaded, local
from vllmtui.core.errors import ProfileError
from vllmtui.profiles.tunnel_spec import Tunnel, TunnelSpec, split_destination


def test_profile_tunnel_errors_name_file_line_and_field() -> None:
    with pytest.raises(ProfileError) as err:
        loaded("model: m\ntunnels:\n  - destination: box\n    bind_prot: 9000\n")
    assert any("srv.yaml:4: tunnels.0.bind_prot" in p for p in err.value.problems)
    with pytest.raises(ProfileError) as err:
        loaded("model: m\ntunnels:\n  - destination: box\n")
    assert any("bind_port is required for a local tunnel" in p for p in err.value.problems)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"ssh_options": {"BatchMode": "no"}}, "BatchMode is set by vllmtui"),
        ({"ssh_options": ["ExitOnForwardFailure=no"]}, "ExitOnForwardFailure is set by vllmtui"),
        ({"ssh_options": ["Compression"]}, "write ssh options as Key=value"),
        ({"destination": "-oProxyCommand=x"}, "no leading '-'"),
        ({"health_path": "health"}, "must start with '/'"),
        ({"name": "bad name"}, "letters, digits"),
    ],
)
def test_spec_rejects_what_would_break_a_tunnel(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        TunnelSpec.model_validate({"destination": "box", "bind_port": 1, **fields})


def test_ssh_command_never_prompts_and_fails_visibly() -> None:
    tunnel = local(destination="alice@gpu.example:2222",
                   ssh_options={"ServerAliveInterval": 5, "IdentityFile": "~/.ssh/k"},
                   ssh_config="/tmp/cfg")
    argv = tunnel.ssh_argv()
    assert argv[:3] == ["ssh", "-N", "-v"]
    assert argv[-4:] == ["-L", "127.0.0.1:18000:127.0.0.1:8000", "--", "alice@gpu.example"]
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    for required in ("BatchMode=yes", "ExitOnForwardFailure=yes", "ServerAliveCountMax=3",
                     "ControlPath=none", "ConnectTimeout=10"):
        assert required in pairs
    assert pairs.index("ServerAliveInterval=5") < pairs.index("BatchMode=yes")
    assert "ServerAliveInterval=15" not in pairs  # the user's value replaces the default
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-F") + 1] == "/tmp/cfg"
    remote = local(direction="remote", bind_address="0.0.0.0", target_host="::1")
    assert remote.ssh_argv()[-4:-2] == ["-R", "0.0.0.0:18000:[::1]:8000"]


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        ("gpu", ("gpu", None)),
        ("bob@gpu", ("bob@gpu", None)),
        ("bob@gpu:2200", ("bob@gpu", 2200)),
        ("ssh://bob@gpu:2200", ("bob@gpu", 2200)),
        ("bob@[fe80::1]:2200", ("bob@fe80::1", 2200)),
        ("fe80::1", ("fe80::1", None)),
    ],
)
def test_split_destination(dest: str, expected: tuple[str, int | None]) -> None:
    assert split_destination(dest) == expected


def test_tunnel_round_trips_through_its_session_option() -> None:
    tunnel = local(ssh_options={"IdentityFile": "/k"})
    assert Tunnel.from_json(tunnel.to_json()) == tunnel
    assert Tunnel.from_json("{not json") is None
