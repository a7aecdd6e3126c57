"""Tunnel specs, the ssh command, config loading, state derivation, the laptop command,
OSC 52 and the panel: the pure parts (the real-sshd tests are in test_tunnels_ssh.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from textual.app import App, ComposeResult

from vllmtui.core.errors import ProfileError, UsageError
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import SessionInfo
from vllmtui.profiles.loading import parse_profile
from vllmtui.profiles.model import LoadedProfile
from vllmtui.profiles.tunnel_spec import Tunnel, TunnelSpec, split_destination
from vllmtui.tunnels.manager import (
    Tunnels,
    configured,
    laptop_command,
    osc52,
    port_conflicts,
    profile_tunnels,
    resolve_spec,
)
from vllmtui.tunnels.state import LogReading, Probe, TunnelStatus, derive_tunnel_state, read_log
from vllmtui.tunnels.supervisor import diagnose, keep_line
from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel, tunnel_marks, tunnels_text


def loaded(text: str, name: str = "srv") -> LoadedProfile:
    path = Path(f"/profiles/{name}.yaml")
    profile, warnings = parse_profile(text, path)
    return LoadedProfile(profile, path, warnings)


def local(**fields: object) -> Tunnel:
    base: dict[str, object] = {"destination": "box", "bind_port": 18000, "target_port": 8000}
    base.update(fields)
    return resolve_spec(TunnelSpec.model_validate(base), "t", None, "tunnels.yaml")


# ---------------------------------------------------------------- specs


def test_profile_tunnel_defaults_to_the_profiles_server() -> None:
    lp = loaded("model: m\nhost: 0.0.0.0\nport: 8123\napi_key_env: K\n"
                "tunnels:\n  - {destination: gw, direction: remote}\n"
                "  - {destination: box, bind_port: 18123}\n")
    first, second = profile_tunnels(lp)
    assert (first.name, first.target_host, first.target_port) == ("srv", "127.0.0.1", 8123)
    assert first.bind_port == 8123  # remote: the same port on the destination
    assert (second.name, second.bind_port, second.target_port) == ("srv-2", 18123, 8123)


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


def test_user_tunnels_file_problems_have_file_line_and_suggestions(settings: Settings) -> None:
    settings.config_dir.mkdir(parents=True)
    file = settings.config_dir / "tunnels.yaml"
    file.write_text(yaml.safe_dump({"tunnels": [
        {"name": "a", "destination": "box", "bind_port": 9001, "target_port": 8000},
        {"name": "b", "destination": "box", "bind_port": 9002, "targte_port": 8000},
        {"name": "c", "destination": "box", "bind_port": 9003},
        {"name": "d", "destination": "box", "bind_port": 9004, "profile": "srvv"},
        {"name": "e", "destination": "box", "bind_port": 8000, "profile": "srv"},
    ]}, sort_keys=False))
    tunnels, problems = configured(settings, [loaded("model: m\nport: 8000\n")])
    assert [t.name for t in tunnels] == ["a", "e"]
    assert "tunnel e: port 8000 is the server port of profile 'srv'" in "\n".join(problems)
    text = "\n".join(problems)
    assert f"{file}:" in text and "(did you mean target_port?)" in text
    assert "tunnel c: target_port is required" in text
    assert "no profile named 'srvv' (did you mean srv?)" in text


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


def test_local_tunnel_ports_never_take_a_server_port() -> None:
    profiles = [loaded("model: m\nport: 8000\n")]
    assert "server port of profile 'srv'" in port_conflicts(local(bind_port=8000), profiles, {})[0]
    assert "running server other" in port_conflicts(local(bind_port=8500), [], {8500: "other"})[0]
    assert port_conflicts(local(bind_port=8000, direction="remote"), profiles, {}) == []


# ---------------------------------------------------------------- ssh output and state


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


def session(dead: bool = False, status: int | None = None) -> SessionInfo:
    return SessionInfo("vllmtui-tunnel-t", 0.0, False, 123, dead, status, None, "python",
                       {"kind": "tunnel"})


def test_derive_state() -> None:
    tunnel = local()
    fresh = LogReading(attempt=1, ssh_running=True)
    authed = LogReading(1, True, lines=('Authenticated to box using "publickey".',))
    retry = LogReading(3, False, True, 4.0, lines=("ssh: connect to host b port 22:"
                                                   " Connection refused",))
    assert derive_tunnel_state(None, tunnel, fresh, False, None) == ("down", "")
    assert derive_tunnel_state(session(), tunnel, fresh, True, Probe("refused"))[0] == "connecting"
    assert "authenticated" in derive_tunnel_state(session(), tunnel, authed, True, None)[1]
    assert derive_tunnel_state(session(), tunnel, authed, True, Probe("ok"))[0] == "up"
    state, detail = derive_tunnel_state(session(), tunnel, authed, True, Probe("broken", "x"))
    assert state == "target-down" and "127.0.0.1:8000" in detail
    state, detail = derive_tunnel_state(session(), tunnel, retry, False, None)
    assert state == "failed" and "refused" in detail and "retrying in 4 s (attempt 3)" in detail
    gave_up = LogReading(1, False, gave_up="auth failed: ...")
    assert derive_tunnel_state(session(True, 3), tunnel, gave_up, False, None) == (
        "failed", "auth failed: ...")
    remote = local(direction="remote")
    assert derive_tunnel_state(session(), remote, authed, True, None)[0] == "connecting"
    confirmed = LogReading(1, True, lines=("debug1: remote forward success for: listen 1",))
    assert derive_tunnel_state(session(), remote, confirmed, True, Probe("ok"))[0] == "up"


def test_read_log_takes_the_latest_attempt(tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    log.write_text(
        "T vllmtui: ssh started (attempt 1, pid 10)\n"
        "T ssh: ssh: connect to host b port 22: Connection refused\n"
        "T vllmtui: ssh exited (status 255) after 0.1 s\nT vllmtui: retry in 1 s\n"
        "T vllmtui: ssh started (attempt 2, pid 11)\nT ssh: debug1: Connecting to b\n"
    )
    reading = read_log(log)
    assert (reading.attempt, reading.ssh_running, reading.retrying) == (2, True, False)
    assert reading.diagnosis is not None and reading.diagnosis.key == "refused"  # the last one
    with log.open("a") as fh:  # a new `up`: what came before no longer counts
        fh.write("T vllmtui: up requested: ssh -N ...\n")
    assert read_log(log) == LogReading()
    assert read_log(tmp_path / "missing.log") == LogReading()


# ---------------------------------------------------------------- laptop command, OSC 52


def test_laptop_command_from_ssh_connection() -> None:
    env = {"SSH_CONNECTION": "192.168.1.20 51234 10.0.0.5 2222"}
    cmd = laptop_command("0.0.0.0", 8000, env=env, user="alice")
    assert cmd.text == "ssh -N -L 8000:127.0.0.1:8000 -p 2222 alice@10.0.0.5"
    assert cmd.url == "http://127.0.0.1:8000" and cmd.note == ""
    cmd = laptop_command("127.0.0.1", 8000, 9000, {"SSH_CONNECTION": "a 1 10.0.0.5 22"}, "bob")
    assert cmd.text == "ssh -N -L 9000:127.0.0.1:8000 bob@10.0.0.5"
    assert "SSH_CONNECTION" in laptop_command("127.0.0.1", 8000, env={}, user="bob").note


def test_osc52_puts_the_text_on_the_clipboard() -> None:
    text = "ssh -N -L 8000:127.0.0.1:8000 alice@10.0.0.5"
    plain = osc52(text, in_tmux=False)
    assert plain.startswith("\x1b]52;c;") and plain.endswith("\x07")
    assert base64.b64decode(plain[7:-1]).decode() == text
    wrapped = osc52(text, in_tmux=True)
    assert wrapped.startswith(plain) and "\x1bPtmux;\x1b\x1b]52;c;" in wrapped
    assert wrapped.endswith("\x1b\\")


# ---------------------------------------------------------------- the panel


def statuses() -> list[TunnelStatus]:
    up = resolve_spec(TunnelSpec(destination="gw", direction="remote"), "srv",
                      loaded("model: m\nport: 8000\n").profile, "p.yaml")
    return [
        TunnelStatus("srv", "up", "forward confirmed by the destination", up),
        TunnelStatus("web", "failed", "auth failed: the server refused every key", local()),
    ]


def test_panel_text_and_row_marks() -> None:
    laptop = laptop_command("127.0.0.1", 8000, env={"SSH_CONNECTION": "a 1 10.0.0.5 22"},
                            user="alice")
    text = tunnels_text(statuses(), laptop).plain
    assert "srv" in text and "gw 127.0.0.1:8000 -> this host 127.0.0.1:8000" in text
    assert "auth failed" in text and "ssh -N -L 8000:127.0.0.1:8000 alice@10.0.0.5" in text
    assert tunnel_marks(statuses()) == {"srv": "⇄ up"}
    assert "no tunnels configured" in tunnels_text([]).plain


async def test_panel_renders_snapshots_it_is_given() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield TunnelsPanel(id="tunnels")

    app = Host()
    async with app.run_test() as pilot:
        panel = app.query_one(TunnelsPanel)
        panel.show(statuses())
        await pilot.pause()
        assert [s.name for s in panel.statuses] == ["srv", "web"]
        assert "auth failed" in str(panel.render())


def test_toggling_a_profile_without_tunnels_says_how_to_add_one(
    settings: Settings, write_profile: Callable[..., Path],
) -> None:
    write_profile("srv", model="m", port=8000)
    with pytest.raises(UsageError, match="profile 'srv' has no tunnel: add a `tunnels:` entry"):
        Tunnels(settings).toggle("srv")
    with pytest.raises(UsageError, match="no tunnel named 'nope'"):
        Tunnels(settings).toggle("nope")
