"""Opening a server's session (servers/launcher.py) on a real tmux: the API key reaches vLLM
(the stand-in) and nothing else, whoever started the tmux server; a run directory exists only
for a launch that happened (the loser of a start race, a launch that failed halfway)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.helpers import free_port, wait_for
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux, TmuxError
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.fleet import Fleet

Cli = Callable[..., subprocess.CompletedProcess[str]]
KEY_VAR = "VLLMTUI_TEST_TEAM_KEY"


@pytest.fixture
def secret() -> str:
    return "sk-test-" + os.urandom(8).hex()


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:  # gone, or a kernel thread
        return b""


def holders(secret: str) -> Iterator[tuple[int, str, str]]:
    """(pid, where, command) of every process with the secret in its environment or argv."""
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        command = _read(f"/proc/{proc.pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")
        for where in ("environ", "cmdline"):
            if secret.encode() in _read(f"/proc/{proc.pid}/{where}"):
                yield proc.pid, where, command.strip()


def tmux_out(settings: Settings, *args: str) -> str:
    return subprocess.run(["tmux", "-L", str(settings.tmux_socket), *args],
                          capture_output=True, text=True).stdout


def environ_of(pid: int) -> dict[str, str]:
    pairs = [item.split(b"=", 1) for item in _read(f"/proc/{pid}/environ").split(b"\0") if b"=" in item]
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def log_pipes(settings: Settings) -> list[psutil.Process]:
    """The tmux server's pipe-pane processes (the `cat` that writes server.log)."""
    server = psutil.Process(int(tmux_out(settings, "display-message", "-p", "#{pid}").strip()))
    return [c for c in server.children() if c.name() == "cat"]


@pytest.fixture
def silent_ssh_port() -> Iterator[int]:
    """A port that accepts connections and never says a word: ssh waits there (the tunnel's
    supervisor and its ssh stay up for the test to look at)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def keyed_profile(standin_profile: Callable[..., Path], ssh_port: int) -> Path:
    tunnel = {"destination": "127.0.0.1", "direction": "local", "bind_port": free_port(),
              "ssh_options": {"Port": str(ssh_port), "ConnectTimeout": "60"}}
    return standin_profile("keyed", api_key_env=KEY_VAR, tunnels=[tunnel])


def supervisors(server: int) -> list[psutil.Process]:
    """The tunnel supervisors (and so their ssh) the tmux server runs, once ssh is up."""
    found = [p for p in psutil.Process(server).children()
             if "vllmtui.tunnels.supervisor" in " ".join(p.cmdline())]
    return found if found and all(p.children() for p in found) else []


def assert_nothing_else_holds(secret: str, settings: Settings, allowed: set[int]) -> None:
    found = [(pid, where, cmd) for pid, where, cmd in holders(secret) if pid not in allowed]
    assert found == [], found
    for file in settings.state_dir.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file


def test_the_key_reaches_vllm_only_when_vllmtui_starts_tmux(
    run_cli: Cli, cli_env: dict[str, str], settings: Settings,
    standin_profile: Callable[..., Path], secret: str, silent_ssh_port: int,
) -> None:
    keyed_profile(standin_profile, silent_ssh_port)
    cli_env[KEY_VAR] = secret  # the caller's environment: vllmtui brings up the tmux server
    proc = run_cli("start", "keyed", "--wait", "--timeout", "30")
    assert proc.returncode == 0, proc.stderr
    up = run_cli("tunnel", "up", "keyed", "--no-wait")
    assert up.returncode == 0, up.stderr
    status = Fleet(settings).status_by_name("keyed")
    assert status.state == "ready" and status.pid is not None and status.run_dir is not None
    vllm = environ_of(status.pid)
    # vLLM has its key (under vLLM's name only), the profile's env, PATH/HOME and tmux's TERM
    assert vllm["VLLM_API_KEY"] == secret and KEY_VAR not in vllm
    assert vllm["STANDIN_MODE"] == "ok" and vllm["PATH"] and vllm["HOME"]
    assert vllm["TMUX"] and vllm["TMUX_PANE"].startswith("%") and vllm["TERM"] != cli_env.get("TERM")
    # not in the tmux server's environment, nor in its global or the session's one
    assert secret not in tmux_out(settings, "show-environment", "-g")
    assert secret not in tmux_out(settings, "show-environment", "-t", "vllmtui-keyed")
    server = int(tmux_out(settings, "display-message", "-p", "#{pid}").strip())
    assert KEY_VAR not in environ_of(server) and secret.encode() not in _read(f"/proc/{server}/environ")
    (cat,) = log_pipes(settings)
    assert environ_of(cat.pid) == {}
    found: list[psutil.Process] = wait_for(lambda: supervisors(server), 10, what="the tunnel's ssh")  # type: ignore[assignment]
    (ssh,) = found[0].children()
    assert "HOME" in environ_of(ssh.pid) and ssh.name() == "ssh"
    # nowhere but in vLLM: no other process's environment or argv, no file, not the log
    assert_nothing_else_holds(secret, settings, {status.pid})
    assert "Application startup complete." in (status.run_dir / "server.log").read_text()


def test_a_tmux_server_holding_a_key_hands_it_to_no_pane(
    run_cli: Cli, cli_env: dict[str, str], settings: Settings,
    standin_profile: Callable[..., Path], secret: str, silent_ssh_port: int,
) -> None:
    keyed_profile(standin_profile, silent_ssh_port)
    # the user's own tmux server, started from a shell that exports the key: its global
    # environment has it (vllmtui cannot change that), the panes vllmtui opens must not
    subprocess.run(["tmux", "-L", str(settings.tmux_socket), "new-session", "-d", "-s", "mine",
                    "sleep", "300"], env={**cli_env, KEY_VAR: secret}, check=True)
    assert f"{KEY_VAR}={secret}" in tmux_out(settings, "show-environment", "-g")
    cli_env[KEY_VAR] = secret
    assert run_cli("start", "keyed", "--wait", "--timeout", "30").returncode == 0
    assert run_cli("tunnel", "up", "keyed", "--no-wait").returncode == 0
    status = Fleet(settings).status_by_name("keyed")
    assert status.pid is not None
    server = int(tmux_out(settings, "display-message", "-p", "#{pid}").strip())
    mine = int(tmux_out(settings, "display-message", "-p", "-t", "mine:", "#{pane_pid}").strip())
    (cat,) = log_pipes(settings)
    assert environ_of(cat.pid) == {}
    wait_for(lambda: supervisors(server), 10, what="the tunnel's ssh")
    # the user's tmux server and the user's own pane hold it; of vllmtui's panes only vLLM
    assert_nothing_else_holds(secret, settings, {status.pid, server, mine})


def test_the_loser_of_a_start_race_leaves_no_run(
    settings: Settings, standin_profile: Callable[..., Path], run_cli: Cli,
) -> None:
    loaded = load_profile_file(standin_profile("race", delay=1))
    results: list[object] = []
    barrier = threading.Barrier(4)

    def go() -> None:
        fleet = Fleet(settings)
        barrier.wait()
        try:
            results.append(fleet.start(loaded))
        except VllmtuiError as exc:
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (won,) = [r for r in results if not isinstance(r, Exception)]
    # exactly one run directory: the winner's, which status and logs show
    assert [p.name for p in (settings.runs_dir / "race").iterdir()] == [won.run_dir.name]  # type: ignore[attr-defined]
    Fleet(settings).wait_ready(loaded, 30)
    status = json.loads(run_cli("status", "race", "--json", check=True).stdout)
    assert status["servers"][0]["run_dir"] == str(won.run_dir)  # type: ignore[attr-defined]
    assert "Application startup complete." in run_cli("logs", "race", check=True).stdout


def test_a_launch_that_fails_halfway_leaves_no_session_and_no_run(
    settings: Settings, standin_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = load_profile_file(standin_profile("half"))
    fleet = Fleet(settings)

    def broken_pipe(name: str, path: str) -> None:
        raise TmuxError("tmux pipe-pane: refused")

    monkeypatch.setattr(fleet.tmux, "pipe_to_file", broken_pipe)
    with pytest.raises(TmuxError, match="pipe-pane: refused"):
        fleet.start(loaded)
    assert fleet.tmux.session("vllmtui-half") is None
    assert not (settings.runs_dir / "half").exists()
    # nothing is left for the next start: it works
    monkeypatch.undo()
    result = Fleet(settings).start(loaded)
    assert [p.name for p in (settings.runs_dir / "half").iterdir()] == [result.run_dir.name]


def test_a_pane_that_never_starts_says_why_and_leaves_no_run(
    settings: Settings, standin_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vllmtui.servers import launcher

    loaded = load_profile_file(standin_profile("nostart"))
    # the pane's launcher dies before it opens its fifo
    monkeypatch.setattr(launcher, "LAUNCHER", 'echo "no shell here" >&2; exit 3')
    monkeypatch.setattr(launcher, "PANE_START_TIMEOUT", 1.0)
    with pytest.raises(VllmtuiError, match=r"the server's pane ended before vLLM started \(exit status 3\): no shell here"):
        Fleet(settings).start(loaded)
    assert Tmux(settings.tmux_socket).session("vllmtui-nostart") is None
    assert not (settings.runs_dir / "nostart").exists()
