"""Tunnels: profile tunnels, the user's tunnels file, port conflicts, the laptop command
and OSC 52 (the real-sshd tests are in tests/ssh/tunnels/test_manager.py)."""

from __future__ import annotations

import base64

import yaml

from tests.support.tunnels import loaded, local
from vllmtui.core.settings import Settings
from vllmtui.tunnels.config import configured, port_conflicts, profile_tunnels
from vllmtui.tunnels.manager import laptop_command, osc52


def test_profile_tunnel_defaults_to_the_profiles_server() -> None:
    lp = loaded("model: m\nhost: 0.0.0.0\nport: 8123\napi_key_env: K\n"
                "tunnels:\n  - {destination: gw, direction: remote}\n"
                "  - {destination: box, bind_port: 18123}\n")
    first, second = profile_tunnels(lp)
    assert (first.name, first.target_host, first.target_port) == ("srv", "127.0.0.1", 8123)
    assert first.bind_port == 8123  # remote: the same port on the destination
    assert (second.name, second.bind_port, second.target_port) == ("srv-2", 18123, 8123)


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


def test_a_hostile_user_tunnels_file_is_a_problem_not_a_traceback(settings: Settings) -> None:
    settings.config_dir.mkdir(parents=True)
    file = settings.config_dir / "tunnels.yaml"
    for raw, message in ((b"tunnels: [\xff]\n", ":1: not UTF-8 text"),
                         (b"tunnels:\n  - &a [*a]\n", ":2: an alias refers to the value that contains it"),
                         (b"tunnels: []\ntunnels: []\n", ":2: tunnels: given twice (lines 1 and 2)")):
        file.write_bytes(raw)
        tunnels, problems = configured(settings, [])
        assert tunnels == [] and any(p.startswith(f"{file}{message}") for p in problems), problems


def test_local_tunnel_ports_never_take_a_server_port() -> None:
    profiles = [loaded("model: m\nport: 8000\n")]
    assert "server port of profile 'srv'" in port_conflicts(local(bind_port=8000), profiles, {})[0]
    assert "running server other" in port_conflicts(local(bind_port=8500), [], {8500: "other"})[0]
    assert port_conflicts(local(bind_port=8000, direction="remote"), profiles, {}) == []


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
