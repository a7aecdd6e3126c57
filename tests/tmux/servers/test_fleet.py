"""Servers in a real tmux (isolated socket) running the STAND-IN server: start, status,
stop (graceful, escalation, forced), orphans, crashes, wedges, secrets, races."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.helpers import wait_for
from vllmtui.core import procs
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import load_profile_file
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.fleet import Fleet


@pytest.fixture
def fleet(settings: Settings) -> Fleet:
    return Fleet(settings)


def started(fleet: Fleet, path: Path) -> LoadedProfile:
    loaded = load_profile_file(path)
    fleet.start(loaded)
    return loaded


def test_start_wait_ready_records_the_run(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    loaded = started(fleet, standin_profile("srv", env={"HF_HOME": "/tmp/hf"}))
    phases: list[str] = []
    status = fleet.wait_ready(loaded, timeout=30, on_change=lambda s: phases.append(s.state))
    assert status.state == "ready" and phases[-1] == "ready"
    assert status.port == loaded.profile.port and status.pid
    sess = fleet.tmux.session("vllmtui-srv")
    assert sess is not None
    assert sess.option("profile") == "srv" and sess.option("port") == str(loaded.profile.port)
    assert status.run_dir is not None and sess.option("run-dir") == str(status.run_dir)
    log = (status.run_dir / "server.log").read_text()
    # the log holds the very first line the process printed
    assert log.splitlines()[0].endswith("vLLM API server version 0.0.0-standin")
    assert "Application startup complete." in log
    launch = json.loads((status.run_dir / "launch.json").read_text())
    assert launch["profile"] == "srv" and launch["port"] == loaded.profile.port
    assert launch["env_names"] == ["HF_HOME", "STANDIN_DELAY", "STANDIN_MODE"]
    assert launch["vllmtui_version"]
    ready = json.loads((status.run_dir / "ready.json").read_text())
    assert ready["time_to_ready"] > 0
    # a second instance (new Fleet, as a restarted vllmtui would be) sees the same truth
    again = Fleet(fleet.settings).status(loaded)
    assert (again.state, again.pid, again.run_dir) == ("ready", status.pid, status.run_dir)
    # `tmux ls` habit works
    out = subprocess.run(["tmux", "-L", str(fleet.settings.tmux_socket), "ls"],
                         capture_output=True, text=True).stdout
    assert out.startswith("vllmtui-srv:")


def test_starting_shows_phase_and_estimate(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    path = standin_profile("slow", delay=3)
    loaded = started(fleet, path)
    status = wait_for(lambda: (s := fleet.status(loaded)).phase == "loading" and s, 20,
                      what="loading phase")
    assert status.state == "starting" and status.phase_label == "loading weights"
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    fleet.stop("slow")
    fleet.start(loaded)
    status = fleet.status(loaded)
    assert status.state == "starting" and status.eta is not None and status.eta > 0


def test_start_refuses_when_running_and_races_have_one_winner(
    fleet: Fleet, standin_profile: Callable[..., Path]
) -> None:
    loaded = load_profile_file(standin_profile("race", delay=1))
    results: list[object] = []

    def go() -> None:
        try:
            results.append(Fleet(fleet.settings).start(loaded))
        except VllmtuiError as exc:
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if not isinstance(r, Exception)]
    assert len(wins) == 1, results
    assert all(
        "already running" in str(r) or "started by someone else" in str(r)
        for r in results if isinstance(r, Exception)
    )
    assert len([s for s in fleet.server_sessions() if s.name == "vllmtui-race"]) == 1
    with pytest.raises(VllmtuiError, match="race is already running"):
        fleet.start(loaded)


def test_graceful_stop(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    loaded = started(fleet, standin_profile("g"))
    assert fleet.wait_ready(loaded, 30).state == "ready"
    run_dir = fleet.status(loaded).run_dir
    messages: list[str] = []
    result = fleet.stop("g", on_progress=messages.append)
    assert result.method == "graceful" and not result.left
    # it ended well within a second: no countdown was announced, and the summary says so
    assert result.seconds < 1.0
    assert messages == ["sending SIGINT (Ctrl-C) to g, waiting up to 3 s"]
    assert result.summary() == (f"g: stopped gracefully (SIGINT) in {result.seconds:.1f} s;"
                                " 1 process(es) ended, nothing left behind")
    assert fleet.tmux.session("vllmtui-g") is None
    assert fleet.status(loaded).state == "stopped"
    assert json.loads((run_dir / "exit.json").read_text())["how"] == "graceful"  # type: ignore[operator]
    assert "SIGINT received" in (run_dir / "server.log").read_text()  # type: ignore[operator]


def test_stop_escalates_with_a_visible_countdown(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    loaded = started(fleet, standin_profile("stubborn", mode="ignore-sigint"))
    assert fleet.wait_ready(loaded, 30).state == "ready"
    seen: list[str] = []
    status_during: list[str] = []

    def progress(msg: str) -> None:
        seen.append(msg)
        if len(status_during) == 0 and "SIGTERM in" in msg:
            status_during.append(Fleet(fleet.settings).status(loaded).state)

    result = fleet.stop("stubborn", timeout=3, term_timeout=2, on_progress=progress)
    assert result.method == "sigterm" and not result.left
    assert status_during == ["stopping"]  # other instances see it stopping meanwhile
    countdown = [m for m in seen if "SIGTERM in" in m]
    # announced from the first second on (not at once), then every second
    assert countdown == ["1 process(es) still running; SIGTERM in 2 s",
                         "1 process(es) still running; SIGTERM in 1 s"]
    assert "still running after 3 s: sending SIGTERM" in seen
    assert result.summary().startswith("stubborn: did not stop on SIGINT; stopped by SIGTERM in 3.")


def test_force_stop_kills_the_whole_tree(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    loaded = started(fleet, standin_profile("hung", mode="engine"))
    assert fleet.wait_ready(loaded, 30).state == "ready"
    pane = fleet.status(loaded).pid
    assert pane is not None
    tree = procs.tree_of(pane)
    engine = [p for p in tree if p.title == "VLLM::EngineCore"]
    assert engine, tree
    result = fleet.stop("hung", force=True)
    assert result.method == "force" and not result.left
    assert {p.pid for p in result.signalled} >= {pane, engine[0].pid}
    assert procs.alive([p.pid for p in tree]) == []
    assert fleet.tmux.session("vllmtui-hung") is None


def test_orphaned_engine_is_found_and_reaped(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    loaded = started(fleet, standin_profile("orph", mode="engine"))
    assert fleet.wait_ready(loaded, 30).state == "ready"
    pane = fleet.status(loaded).pid
    assert pane is not None
    engine = next(p for p in procs.tree_of(pane) if p.title == "VLLM::EngineCore")
    os.kill(pane, signal.SIGKILL)  # the API server alone, as the upstream bug leaves it
    status = wait_for(lambda: (s := fleet.status(loaded)).state == "crashed" and s, 10, what="crashed")
    assert status.detail == "killed by signal 9"
    orphans = wait_for(lambda: fleet.orphans(), 10, what="orphan")
    assert [p.pid for p in orphans] == [engine.pid]
    killed, left = fleet.reap()
    assert [p.pid for p in killed] == [engine.pid] and left == []
    assert fleet.orphans() == []
    # the crashed session is still there to be read, and stop clears it
    result = fleet.stop("orph")
    assert result.method == "already-exited"
    assert fleet.status(loaded).state == "stopped"


def test_crash_shows_root_cause_and_hint(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    loaded = started(fleet, standin_profile("oom", mode="crash-oom"))
    status = fleet.wait_ready(loaded, timeout=30)
    assert status.state == "crashed"
    assert status.failure is not None and status.failure.key == "oom"
    assert status.detail == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."
    assert "lower gpu_memory_utilization" in status.failure.hint
    # starting again replaces the dead session (its run dir stays in history)
    first_run = status.run_dir
    fleet.start(loaded)
    assert fleet.status(loaded).run_dir != first_run
    # "crashed" if the new start ended what was left of it, "exited" if it had ended already
    assert json.loads((first_run / "exit.json").read_text())["how"] in ("crashed", "exited")  # type: ignore[operator]


def test_wedged_server_shows_unhealthy_quickly(fleet: Fleet, standin_profile: Callable[..., Path]) -> None:
    loaded = started(fleet, standin_profile("wedge", mode="wedge", env={"STANDIN_WEDGE_AFTER": "2"}))
    assert fleet.wait_ready(loaded, 30).state == "ready"
    status = wait_for(lambda: (s := fleet.status(loaded)).state == "unhealthy" and s, 10, what="unhealthy")
    assert "(wedged?)" in status.detail
    assert status.health is not None and status.health.state == "timeout"


def test_api_key_reaches_the_server_but_nothing_else(
    fleet: Fleet, standin_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-" + os.urandom(6).hex()
    monkeypatch.setenv("MY_TEST_KEY", secret)
    loaded = started(fleet, standin_profile("keyed", api_key_env="MY_TEST_KEY"))
    status = fleet.wait_ready(loaded, 30)
    assert status.pid is not None
    environ = Path(f"/proc/{status.pid}/environ").read_bytes().split(b"\0")
    assert f"VLLM_API_KEY={secret}".encode() in environ
    assert secret.encode() not in Path(f"/proc/{status.pid}/cmdline").read_bytes()
    run_dir = status.run_dir
    assert run_dir is not None
    for file in run_dir.iterdir():
        assert secret not in file.read_text(errors="replace"), file
    assert json.loads((run_dir / "launch.json").read_text())["secret_env_names"] == ["VLLM_API_KEY"]
    # vllmtui never hands it to tmux (the session's own environment, set with -e, lacks it)
    tmux_env = subprocess.run(
        ["tmux", "-L", str(fleet.settings.tmux_socket), "show-environment", "-t", "vllmtui-keyed"],
        capture_output=True, text=True).stdout
    assert "STANDIN_MODE=ok" in tmux_env and secret not in tmux_env


def test_port_in_use_is_refused_before_anything_starts(
    fleet: Fleet, standin_profile: Callable[..., Path]
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        loaded = load_profile_file(standin_profile("busy", port=port))
        with pytest.raises(UsageError) as info:
            fleet.start(loaded)
    assert f"127.0.0.1:{port} is already in use by pid {os.getpid()}" in str(info.value)
    assert fleet.tmux.session("vllmtui-busy") is None
    assert not (fleet.settings.runs_dir / "busy").exists()


def test_server_survives_a_killed_vllmtui(
    settings: Settings, standin_profile: Callable[..., Path], cli_env: dict[str, str]
) -> None:
    import sys

    standin_profile("survivor", delay=1)
    proc = subprocess.Popen([sys.executable, "-m", "vllmtui", "start", "survivor", "--wait"],
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "starting:" in line:
            break
    proc.kill()
    proc.wait()
    fleet = Fleet(settings)
    status = wait_for(lambda: (s := fleet.status_by_name("survivor")).state == "ready" and s, 30,
                      what="ready after vllmtui was killed")
    assert status.session == "vllmtui-survivor"


def test_time_to_ready_comes_from_the_log_even_when_seen_late(
    fleet: Fleet, standin_profile: Callable[..., Path]
) -> None:
    import time

    loaded = started(fleet, standin_profile("late"))
    sess = fleet.tmux.session("vllmtui-late")
    assert sess is not None
    log = Path(str(sess.option("run-dir"))) / "server.log"
    wait_for(lambda: "Application startup complete." in log.read_text(), 30, what="readiness line")
    seen_in_file = time.time()
    wait_for(lambda: time.time() > seen_in_file + 3, 10, what="nobody looking for 3 s")
    status = fleet.status(loaded)
    assert status.state == "ready" and status.started is not None and status.time_to_ready is not None
    # vLLM's stamps have 1 s resolution: the recorded time is the log's, not this late look
    assert status.time_to_ready <= seen_in_file - status.started + 1.0


def test_a_vllm_whose_parent_lives_is_never_an_orphan(fleet: Fleet) -> None:
    # e.g. an offline `LLM()` script or a `vllm serve` run by hand: its engine's parent is alive
    import sys

    from tests.support.helpers import spawn_orphan

    child = subprocess.Popen(["VLLM::EngineCore", "-c", "import time; time.sleep(60)"], executable=sys.executable)
    orphan = spawn_orphan()
    try:
        wait_for(lambda: procs.alive([child.pid]), 5, what="child")
        found = [p.pid for p in fleet.orphans()]
        assert orphan in found and child.pid not in found
    finally:
        child.kill()
        child.wait()
        os.kill(orphan, signal.SIGKILL)
