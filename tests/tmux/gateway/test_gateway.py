"""The gateway as a user meets it: a real gateway process in tmux (`gateway up`) in front of
OpenAI STAND-IN servers in tmux: routing by model, streaming, /v1/models, on-demand start,
start failure as a 503 with the cause, idle stop, the sleep path (against the stand-in's
sleep endpoints: vLLM's CPU build has no sleep mode), restart on crash with its limit, unknown
models, a client leaving mid-stream, a killed gateway found again, and its key."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from tests.support.gateway import chat, port_of, stats
from tests.support.helpers import free_port, wait_for
from vllmtui.core.errors import UsageError
from vllmtui.core.tmux import Tmux
from vllmtui.gateway.manage import SESSION, gateway_status, gateway_up
from vllmtui.servers import runs
from vllmtui.servers.fleet import Fleet


def _state(settings, name: str) -> str:
    return Fleet(settings).status_by_name(name).state


def test_routes_by_model_and_starts_on_demand(settings, backend_profile, gateway):
    a = backend_profile("alpha")
    b = backend_profile("beta", served_model_name="beta-chat")
    origin = gateway()
    models = httpx.get(f"{origin}/v1/models", timeout=5).json()["data"]
    assert {(m["id"], m["state"]) for m in models} == {("alpha-model", "stopped"), ("beta-chat", "stopped")}

    # a request for a stopped profile starts it and is served once it is ready
    reply = chat(origin, "alpha-model")
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "standin alpha-model says hi"
    assert _state(settings, "alpha") == "ready"
    assert _state(settings, "beta") == "stopped"  # only the model asked for
    launch = runs.latest_run(settings, "alpha").launch
    assert launch["started_by"] == "gateway" and "on demand" in launch["reason"]

    reply = chat(origin, "beta-chat")
    assert reply.json()["model"] == "beta-chat"
    assert stats(port_of(a))["requests"] == 1 and stats(port_of(b))["requests"] == 1

    # other /v1 endpoints are routed by model too
    emb = httpx.post(f"{origin}/v1/embeddings", json={"model": "alpha-model", "input": "x"}, timeout=10)
    assert emb.status_code == 200 and emb.json()["data"][0]["embedding"] == [0.1, 0.2]
    states = {m["id"]: (m["state"], m["managed"]) for m in httpx.get(f"{origin}/v1/models").json()["data"]}
    assert states == {"alpha-model": ("ready", True), "beta-chat": ("ready", True)}


def test_profiles_sharing_a_model_a_profile_name_picks_one(settings, backend_profile, gateway):
    fast = backend_profile("fast", model="shared-model")
    long = backend_profile("long", model="shared-model")
    origin = gateway()
    # by profile name: that profile, with the model the server answers to
    assert chat(origin, "long").status_code == 200
    assert stats(port_of(long))["last_model"] == "shared-model"
    assert _state(settings, "fast") == "stopped"
    # by the shared model: the server that is up
    assert chat(origin, "shared-model").status_code == 200
    assert stats(port_of(long))["requests"] == 2
    assert _state(settings, "fast") == "stopped"
    del fast


def test_requests_arriving_during_a_start_queue_behind_it(settings, backend_profile, gateway):
    backend_profile("slow", env={"STANDIN_DELAY": "2"})
    origin = gateway()
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _i: chat(origin, "slow-model"), range(6)))
    assert [r.status_code for r in replies] == [200] * 6
    # one start for all six
    assert len(runs.runs_of(settings, "slow")) == 1
    metrics = httpx.get(f"{origin}/metrics", timeout=5).text
    assert 'vllmtui_gateway_on_demand_starts_total{model="slow-model",outcome="ready"} 1.0' in metrics
    assert 'vllmtui_gateway_requests_total{model="slow-model",path="/v1/chat/completions",status="200"} 6.0' in metrics
    assert "vllmtui_gateway_time_to_first_byte_seconds_bucket" in metrics
    # every request was held for the start; the start itself is counted once
    assert 'vllmtui_gateway_on_demand_wait_seconds_count{model="slow-model"} 6.0' in metrics
    assert 'vllmtui_gateway_on_demand_start_seconds_count{model="slow-model",outcome="ready"} 1.0' in metrics


def test_streaming_passes_chunk_by_chunk(backend_profile, gateway):
    backend_profile("streamer", env={"STANDIN_CHUNKS": "4", "STANDIN_CHUNK_DELAY": "0.3"})
    origin = gateway()
    chat(origin, "streamer-model")  # started
    seen: list[tuple[float, str]] = []
    body = {"model": "streamer-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{origin}/v1/chat/completions", json=body, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                seen.append((time.monotonic(), line[6:]))
    assert [s for _t, s in seen][-1] == "[DONE]"
    tokens = [json.loads(s)["choices"][0]["delta"]["content"] for _t, s in seen[:-1]]
    assert tokens == ["tok0 ", "tok1 ", "tok2 ", "tok3 "]
    # each chunk came when the server sent it, not all at the end
    assert seen[3][0] - seen[0][0] > 0.6


def test_a_client_leaving_mid_stream_frees_the_backend_request(backend_profile, gateway):
    path = backend_profile("long", env={"STANDIN_CHUNKS": "200", "STANDIN_CHUNK_DELAY": "0.05"})
    origin = gateway()
    chat(origin, "long-model")
    body = {"model": "long-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{origin}/v1/chat/completions", json=body, timeout=30) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                break  # the client leaves after the first chunk
    port = port_of(path)
    wait_for(lambda: stats(port)["aborted"] == 1 and stats(port)["active"] == 0, timeout=10,
             what="the backend request aborted")


def test_unknown_model_is_a_404_listing_the_known_ones(backend_profile, gateway):
    backend_profile("alpha")
    backend_profile("beta")
    origin = gateway()
    reply = chat(origin, "alpah-model")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "model_not_found"
    assert "alpha-model" in error["message"] and "beta-model" in error["message"]
    no_model = httpx.post(f"{origin}/v1/chat/completions", json={"messages": []}, timeout=5)
    assert no_model.status_code == 400 and "model" in no_model.json()["error"]["message"]
    not_json = httpx.post(f"{origin}/v1/chat/completions", content=b"{not json", timeout=5)
    assert not_json.status_code == 400


def test_a_start_failure_is_a_503_with_the_cause(settings, backend_profile, gateway):
    backend_profile("broken", env={"STANDIN_MODE": "crash-oom"})
    origin = gateway(retry_after=7)
    began = time.monotonic()
    reply = chat(origin, "broken-model")
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "7"
    error = reply.json()["error"]
    assert error["code"] == "model_start_failed"
    assert "CUDA out of memory" in error["message"]  # the root cause line of the server's log
    assert time.monotonic() - began < 20
    # asked again at once: the same answer without another start
    again = chat(origin, "broken-model")
    assert again.status_code == 503 and "CUDA out of memory" in again.json()["error"]["message"]
    assert len(runs.runs_of(settings, "broken")) == 1


def test_past_the_start_timeout_the_client_gets_a_503_not_a_hang(backend_profile, gateway):
    backend_profile("glacial", env={"STANDIN_DELAY": "30"})
    origin = gateway(start_timeout=2)
    began = time.monotonic()
    reply = chat(origin, "glacial-model")
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "model_start_timeout"
    assert "not ready after 2 s" in reply.json()["error"]["message"]
    assert "Retry-After" in reply.headers
    assert time.monotonic() - began < 10


def test_idle_stop_stops_only_what_the_gateway_started(settings, backend_profile, gateway):
    backend_profile("ondemand", idle="stop 3s")
    hand = backend_profile("byhand", idle="stop 3s")
    fleet = Fleet(settings)
    from vllmtui.profiles.loading import find_profile

    loaded = find_profile(settings, "byhand")
    fleet.start(loaded)
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    origin = gateway()
    assert chat(origin, "ondemand-model").status_code == 200
    assert chat(origin, "byhand-model").status_code == 200  # routed to, not managed
    wait_for(lambda: _state(settings, "ondemand") in ("stopped", "exited"), timeout=20, what="idle stop")
    assert _state(settings, "byhand") == "ready"
    assert stats(port_of(hand))["requests"] == 1
    # and a request after the idle stop starts it again
    assert chat(origin, "ondemand-model").status_code == 200
    assert len(runs.runs_of(settings, "ondemand")) == 2


def test_idle_sleep_and_wake_on_the_next_request(settings, backend_profile, gateway):
    """Against the SLEEP STAND-IN (openai_standin.py's /sleep, /wake_up, /is_sleeping): a
    request sent to it asleep would hang, as vLLM's would; the gateway wakes it first."""
    path = backend_profile("sleepy", env={"STANDIN_SLEEP": "1"}, enable_sleep_mode=True,
                           idle={"action": "sleep", "after": "2s", "level": 2})
    origin = gateway()
    assert chat(origin, "sleepy-model").status_code == 200
    port = port_of(path)
    wait_for(lambda: stats(port)["sleeping"], timeout=20, what="asleep")
    wait_for(lambda: _state(settings, "sleepy") == "asleep", timeout=10, what="status asleep")
    status = Fleet(settings).status_by_name("sleepy")
    assert "level 2" in status.detail and status.running
    models = {m["id"]: m["state"] for m in httpx.get(f"{origin}/v1/models").json()["data"]}
    assert models["sleepy-model"] == "asleep"
    began = time.monotonic()
    reply = chat(origin, "sleepy-model", timeout=20)
    assert reply.status_code == 200
    assert time.monotonic() - began < 3
    assert stats(port)["wakes"] == 1 and stats(port)["sleeps"] == 1
    assert _state(settings, "sleepy") == "ready"
    assert len(runs.runs_of(settings, "sleepy")) == 1  # the same process: woken, not restarted
    # the launch carried what vLLM's sleep endpoints need
    launch = runs.latest_run(settings, "sleepy").launch
    assert "--enable-sleep-mode" in launch["argv"] and "VLLM_SERVER_DEV_MODE" in launch["env_names"]


def test_restart_on_failure_up_to_its_limit(settings, backend_profile, gateway, run_cli):
    backend_profile("crashy", env={"STANDIN_MODE": "crash-after", "STANDIN_CRASH_AFTER": "1"},
                    restart={"policy": "on-failure", "limit": 2, "window": "10m", "backoff": 0.2})
    origin = gateway()
    assert chat(origin, "crashy-model").status_code == 200

    def gave_up() -> bool:
        s = Fleet(settings).status_by_name("crashy")
        return s.state == "crashed" and s.restarts == 2 and len(runs.runs_of(settings, "crashy")) == 3

    wait_for(gave_up, timeout=40, what="two restarts, then left crashed")
    time.sleep(2)  # and no third
    assert len(runs.runs_of(settings, "crashy")) == 3
    newest = runs.latest_run(settings, "crashy").launch
    assert newest["restart"]["attempt"] == 2
    assert "illegal memory access" in newest["restart"]["cause"]
    status = Fleet(settings).status_by_name("crashy")
    assert "illegal memory access" in status.detail  # left crashed with its root cause
    out = run_cli("status").stdout
    assert "crashed (restarted 2x)" in out
    events = gateway_status(settings).events
    assert any("reached the limit (2)" in e for e in events)


def test_a_killed_gateway_is_found_again_and_restarted_by_up(settings, backend_profile, gateway):
    backend_profile("alpha")
    origin = gateway()
    assert chat(origin, "alpha-model").status_code == 200
    pid = gateway_status(settings).pid
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: gateway_status(settings).state == "dead", timeout=10, what="dead")
    assert "gateway up" in gateway_status(settings).detail
    status = gateway_up(settings)
    assert status.state == "up" and status.pid != pid
    assert chat(origin, "alpha-model").status_code == 200  # the server it started kept running
    assert len(runs.runs_of(settings, "alpha")) == 1
    # up on a live gateway leaves it as it is
    assert gateway_up(settings).pid == status.pid


def test_the_gateway_key_is_enforced_and_backend_keys_added(settings, backend_profile, gateway,
                                                            monkeypatch):
    monkeypatch.setenv("TEST_GW_KEY", "gw-secret-1")
    monkeypatch.setenv("TEST_BACKEND_KEY", "backend-secret-2")
    path = backend_profile("locked", api_key_env="TEST_BACKEND_KEY")
    origin = gateway(api_key_env="TEST_GW_KEY")
    assert chat(origin, "locked-model").status_code == 401
    assert chat(origin, "locked-model", key="wrong").status_code == 401
    assert httpx.get(f"{origin}/v1/models", timeout=5).status_code == 401
    assert httpx.get(f"{origin}/metrics", timeout=5).status_code == 401
    assert httpx.get(f"{origin}/health", timeout=5).status_code == 200  # for tunnels' checks
    reply = chat(origin, "locked-model", key="gw-secret-1")
    assert reply.status_code == 200, reply.text
    # the backend got its own key, not the gateway's
    assert stats(port_of(path))["last_authorization"] == "Bearer backend-secret-2"
    # the keys are in no argv and no log
    tmux = Tmux(settings.tmux_socket)
    pane_pid = tmux.session(SESSION).pane_pid
    with open(f"/proc/{pane_pid}/cmdline", "rb") as fh:
        assert b"secret" not in fh.read()
    logs = list(settings.state_dir.rglob("*.log"))
    assert logs and not any("secret" in p.read_text(errors="replace") for p in logs)


def test_gateway_up_refuses_a_missing_key_or_a_taken_port(settings, gateway_config, monkeypatch):
    monkeypatch.delenv("TEST_GW_MISSING", raising=False)
    gateway_config(api_key_env="TEST_GW_MISSING")
    with pytest.raises(UsageError, match=r"gateway.yaml:\d+: api_key_env: \$TEST_GW_MISSING is not set"):
        gateway_up(settings)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        gateway_config(port=sock.getsockname()[1])
        with pytest.raises(UsageError, match="cannot listen on 127.0.0.1:.*in use"):
            gateway_up(settings)
    assert Tmux(settings.tmux_socket).session(SESSION) is None  # nothing was started


def test_cli_up_status_down_and_snippet(settings, backend_profile, gateway_config, run_cli):
    backend_profile("alpha")
    port = gateway_config(port=free_port())
    up = run_cli("gateway", "up")
    assert up.returncode == 0, up.stderr
    assert f"gateway up at http://127.0.0.1:{port}/v1" in up.stdout
    status = run_cli("gateway", "status", "--json")
    data = json.loads(status.stdout)
    assert data["state"] == "up" and data["models"][0]["model"] == "alpha-model"
    snippet = run_cli("snippet", "--gateway").stdout
    assert f"http://127.0.0.1:{port}/v1" in snippet and "alpha-model" in snippet
    assert f"-L {port}:127.0.0.1:{port}" in snippet  # one tunnel reaches every model
    down = run_cli("gateway", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert json.loads(run_cli("gateway", "status", "--json").stdout)["state"] == "down"
