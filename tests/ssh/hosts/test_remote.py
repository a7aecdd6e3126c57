"""Servers on other hosts: real OpenSSH on loopback, the hosts are local user accounts
(tests/support/ssh_hosts.py), each running this checkout's vllmtui; stand-in servers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import replace

import yaml

from tests.support.helpers import wait_for
from tests.support.ssh_hosts import HostsEnv, standin_fields
from vllmtui.hosts.fleet import Hosts

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _states(hosts: Hosts, host: str) -> dict[str, str]:
    reading = hosts.read(names=[host], gpus=False)[host]
    assert reading.reachable, reading.problem
    return {s.name: s.state for s in reading.statuses}


def test_hosts_lists_every_host_with_reachability(hosts_env: HostsEnv, run_cli: Cli, cli_env: dict[str, str]) -> None:
    cli_env.update(hosts_env.env())
    hosts_env.hosts_yaml(extra={"nowhere": {"ssh": "127.0.0.1:1", "ssh_options": {"ConnectTimeout": "2"}}})
    hosts_env.dirs["host-a"].write_profile("own")
    out = run_cli("hosts", "--json")
    assert out.returncode == 1, out.stderr  # one host is unreachable
    rows = {h["name"]: h for h in json.loads(out.stdout)["hosts"]}
    assert list(rows) == ["local", "host-a", "host-b", "nowhere"]
    for name in ("local", "host-a", "host-b"):
        assert rows[name]["state"] == "ok", rows[name]
        assert rows[name]["version"] == "0.1.0"
    assert [p["name"] for p in rows["host-a"]["profiles"]] == ["own"]
    assert rows["nowhere"]["state"] == "unreachable" and rows["nowhere"]["problem"]
    text = run_cli("hosts").stdout
    assert "host-a" in text and "unreachable" in text and "1 own, 0 sent" in text


def test_start_status_logs_stop_on_a_host(hosts_env: HostsEnv, run_cli: Cli, cli_env: dict[str, str],
                                          write_profile: Callable[..., object]) -> None:
    cli_env.update(hosts_env.env())
    host_a = hosts_env.dirs["host-a"]
    host_a.write_profile("own")
    write_profile("mine", **standin_fields())  # the laptop's: sent at start
    started = run_cli("start", "own", "--host", "host-a", "--wait", "--timeout", "60")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "profile own: host-a's own" in started.stdout and "is ready" in started.stdout
    started = run_cli("start", "--host=host-a", "mine", "--wait", "--timeout", "60")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "profile mine: this machine's" in started.stdout and "sent to host-a" in started.stdout
    # the state is the host's: its own tmux server (of the test user) runs both
    sessions = host_a.tmux("ls", "-F", "#{session_name}").stdout.split()
    assert {"vllmtui-own", "vllmtui-mine"} <= set(sessions)
    status = json.loads(run_cli("status", "--host", "host-a", "--json", check=True).stdout)
    assert {s["name"]: s["state"] for s in status["servers"]} == {"own": "ready", "mine": "ready"}
    assert {p["name"]: p["sent"] for p in status["profiles"]} == {"own": False, "mine": True}
    assert "sent here by another machine" in run_cli("status", "--host", "host-a").stdout
    logs = run_cli("logs", "own", "--host", "host-a", "-n", "20", check=True).stdout
    assert "Starting vLLM API server" in logs or "Application startup complete" in logs, logs
    assert run_cli("status", "--json").stdout.count('"ready"') == 0  # nothing runs HERE
    with Hosts(hosts_env.settings) as hosts:
        assert _states(hosts, "host-a") == {"own": "ready", "mine": "ready"}
        assert _states(hosts, "host-b") == {}
        stopped = run_cli("stop", "own", "mine", "--host", "host-a")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert set(_states(hosts, "host-a").values()) == {"stopped"}


def test_a_profiles_box_is_its_default_host(hosts_env: HostsEnv, run_cli: Cli, cli_env: dict[str, str],
                                            write_profile: Callable[..., object]) -> None:
    cli_env.update(hosts_env.env())
    write_profile("boxed", **standin_fields(box="host-b"))
    started = run_cli("start", "boxed", "--wait", "--timeout", "60")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "sent to host-b" in started.stdout
    assert "vllmtui-boxed" in hosts_env.dirs["host-b"].tmux("ls").stdout
    assert run_cli("stop", "boxed").returncode == 0  # the box again
    assert "vllmtui-boxed" not in hosts_env.dirs["host-b"].tmux("ls").stdout


def test_a_second_vllmtui_sees_the_same_servers(hosts_env: HostsEnv, tmp_path: object) -> None:
    hosts_env.dirs["host-b"].write_profile("shared")
    second = replace(hosts_env.settings, config_dir=hosts_env.settings.config_dir.parent / "config-2")
    second.config_dir.mkdir()
    (second.config_dir / "hosts.yaml").write_text((hosts_env.settings.config_dir / "hosts.yaml").read_text())
    with Hosts(hosts_env.settings) as one, Hosts(second) as two:
        done = one.run("host-b", ["start", "shared", "--wait", "--timeout", "60"])
        assert done.returncode == 0, done.stdout + done.stderr
        assert _states(two, "host-b") == {"shared": "ready"}
        assert two.run("host-b", ["stop", "shared"]).returncode == 0
        assert _states(one, "host-b") == {"shared": "stopped"}


def test_attach_argv_and_a_real_attach_and_detach(hosts_env: HostsEnv, tmux: object,
                                                  settings: object) -> None:
    from vllmtui.core.tmux import Tmux

    assert isinstance(tmux, Tmux)
    hosts_env.dirs["host-a"].write_profile("console")
    with Hosts(hosts_env.settings) as hosts:
        assert hosts.run("host-a", ["start", "console", "--wait", "--timeout", "60"]).returncode == 0
        argv = hosts.attach_argv("host-a", "console")
        assert argv[0] == "ssh" and "-t" in argv and argv[-1].endswith("attach console")
        # a real terminal: a pane of the laptop's tmux runs the ssh -t attach
        tmux.new_session("laptop", argv)
        wait_for(lambda: "vLLM" in "\n".join(tmux.capture("laptop")), 20, what="the remote console in the pane")
        subprocess.run(["tmux", "-L", str(tmux.socket), "send-keys", "-t", "laptop", "C-b", "d"], check=True)
        wait_for(lambda: tmux.session("laptop") is None or tmux.session("laptop").dead,  # type: ignore[union-attr]
                 20, what="ssh to end after the detach")
        assert _states(hosts, "host-a") == {"console": "ready"}  # detaching stopped nothing


def test_bad_host_names_are_refused_with_the_fix(hosts_env: HostsEnv, run_cli: Cli, cli_env: dict[str, str],
                                                 write_profile: Callable[..., object]) -> None:
    cli_env.update(hosts_env.env())
    out = run_cli("status", "--host", "hots-a")
    assert out.returncode == 2 and "no host named 'hots-a' (did you mean host-a?)" in out.stderr
    assert "Traceback" not in out.stderr
    path = write_profile("misplaced", **standin_fields(host="host-a"))
    out = run_cli("start", "misplaced")
    assert out.returncode == 2, out.stdout
    assert f"{path}:" in out.stderr and "write `box: host-a`" in out.stderr
    path = write_profile("lost", **standin_fields(box="host-z"))
    out = run_cli("start", "lost")
    assert out.returncode == 2 and f"{path}:" in out.stderr and "box: no host named 'host-z'" in out.stderr
    out = run_cli("hosts", "--host", "host-a")
    assert out.returncode == 2 and "leave out --host" in out.stderr
    hosts_env.settings.config_dir.joinpath("hosts.yaml").write_text(yaml.safe_dump({"hosts": ["host-a"]}))
    out = run_cli("status", "--host", "host-a")
    assert out.returncode == 2 and "hosts.yaml:1: write a `hosts:` mapping" in out.stderr
