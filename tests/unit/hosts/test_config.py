"""hosts.yaml: every mistake is one line naming the file, the line, the field and the fix;
the pieces of the host protocol that need no ssh."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from vllmtui.cli.remote import _rest
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.hosts.config import DEFAULT_VLLMTUI, LOCAL, HostConfig, load_hosts, pick
from vllmtui.hosts.fleet import reading_from
from vllmtui.hosts.ssh import explain, ssh_argv
from vllmtui.servers.failures import Failure
from vllmtui.servers.status import ServerStatus


def _settings(tmp_path: Path, text: str | None) -> Settings:
    config = tmp_path / "config"
    config.mkdir()
    if text is not None:
        (config / "hosts.yaml").write_text(text)
    return replace(Settings(), config_dir=config)


def test_local_is_always_there(tmp_path: Path) -> None:
    assert list(load_hosts(_settings(tmp_path, None))) == [LOCAL]


def test_hosts_with_defaults_and_short_forms(tmp_path: Path) -> None:
    hosts = load_hosts(_settings(tmp_path, "hosts:\n  gpu1: {ssh: gpu1}\n  gpu2: alice@gpu2.lan:2222\n"
                                           "  gpu3: {ssh: gpu3, vllmtui: ~/bin/vllmtui, profiles: local}\n"))
    assert list(hosts) == [LOCAL, "gpu1", "gpu2", "gpu3"]
    assert hosts["gpu1"].vllmtui == DEFAULT_VLLMTUI and hosts["gpu1"].profiles == "host"
    assert (hosts["gpu2"].ssh, hosts["gpu2"].port) == ("alice@gpu2.lan", 2222)
    assert hosts["gpu3"].profiles == "local"
    argv = ssh_argv(hosts["gpu2"], tmp_path)
    for option in ("ControlMaster=auto", "ControlPersist=60", "BatchMode=yes", "ServerAliveInterval=2"):
        assert option in argv
    assert argv[-1] == "alice@gpu2.lan" and argv[argv.index("-p") + 1] == "2222"


@pytest.mark.parametrize(("text", "message"), [
    ("- gpu1\n", "hosts.yaml:1: write a `hosts:` mapping of NAME: {ssh: ALIAS}"),
    ("hots:\n  gpu1: {ssh: gpu1}\n", "hosts.yaml:1: unknown key 'hots' (did you mean hosts?)"),
    ("hosts:\n  gpu1:\n    ssh: gpu1\n    vllmtiu: x\n", "hosts.yaml:4: hosts.gpu1.vllmtiu: unknown field (did you mean vllmtui?)"),
    ("hosts:\n  gpu1: {vllmtui: x}\n", "hosts.yaml:2: hosts.gpu1.ssh: is required"),
    ("hosts:\n  gpu1: {ssh: '-oProxyCommand=x'}\n", "hosts.gpu1.ssh: must be an ~/.ssh/config alias"),
    ("hosts:\n  gpu1: {ssh: g, profiles: laptop}\n", "hosts.gpu1.profiles: must be `host`"),
    ("hosts:\n  local: {ssh: g}\n", "hosts.yaml:2: hosts.local: `local` is this machine"),
    ("hosts:\n  gpu1: 3\n", "hosts.yaml:2: hosts.gpu1: write `gpu1: {ssh: ALIAS}`"),
    ("hosts:\n  gpu1: {ssh: g, ssh_options: {ControlPath: x}}\n", "ControlPath is set by vllmtui"),
    ("hosts:\n  gpu1: {ssh: g}\n  gpu1: {ssh: h}\n", "gpu1"),
])
def test_bad_hosts_yaml_names_file_line_field_and_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        load_hosts(_settings(tmp_path, text))
    assert message in str(exc.value)
    assert str(tmp_path) in str(exc.value)


def test_an_unknown_host_suggests_one(tmp_path: Path) -> None:
    hosts = load_hosts(_settings(tmp_path, "hosts:\n  gpu1: {ssh: gpu1}\n"))
    with pytest.raises(UsageError, match=r"--host: no host named 'gpu2' \(did you mean gpu1\?\)"):
        pick(hosts, "gpu2")


def test_status_round_trips_through_json() -> None:
    status = ServerStatus("qwen", "crashed", detail="OOM", session="vllmtui-qwen", host="0.0.0.0", port=8000,
                          pid=12, started=100.0, run_dir=Path("/r/x"), exit_status=1,
                          failure=Failure("oom", "CUDA out of memory", "lower max_model_len"), taken_at=160.0)
    back = ServerStatus.from_json(status.to_json())
    assert back.to_json() == status.to_json()
    assert back.uptime == 60.0 and back.failure == status.failure


def test_a_reading_of_another_version_names_the_skew_and_the_fix() -> None:
    reading = reading_from("gpu1", {"ok": True, "vllmtui": "0.0.9", "servers": [{"state": "x"}]}, 0.1)
    assert reading.reachable and reading.state == "skew"
    assert "vllmtui 0.0.9 there" in str(reading.problem) and "`vllmtui hosts install gpu1`" in str(reading.problem)
    assert "not understood" in str(reading.problem)  # a server without a name


def test_explain_says_what_to_do() -> None:
    host = HostConfig("gpu1", "gpu1")
    assert "hosts install gpu1" in explain("sh: 1: /x/vllmtui: not found", 127, host)
    assert "too old" in explain("vllmtui: error: argument COMMAND: invalid choice: 'hosts'", 2, host)
    assert explain("ssh: connect to host gpu1 port 22: Connection refused", 255, host) == (
        "ssh gpu1: connect to host gpu1 port 22: Connection refused")


def test_the_host_option_is_taken_out_of_the_passed_arguments() -> None:
    argv = ["--state-dir", "/s", "start", "qwen", "--host", "gpu1", "--wait", "--host=gpu1"]
    assert _rest(argv, "start") == ["qwen", "--wait"]
    assert argparse  # the parser keeps --host on every command (tests/tmux/cli)



def test_a_port_out_of_range_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="hosts.a.ssh: port 99999 is not a TCP port"):
        load_hosts(_settings(tmp_path, "hosts:\n  a: {ssh: 'u@h:99999'}\n"))
