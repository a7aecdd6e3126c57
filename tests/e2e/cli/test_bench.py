"""`vllmtui bench` and `vllmtui metrics` as real processes against the real tiny-model
vLLM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.helpers import ROOT
from vllmtui.servers.metrics import GENERATION_TOKENS, parse_metrics


def test_end_to_end_bench_against_real_vllm(vllm_server, tmp_path: Path) -> None:
    """`vllmtui bench` on the real tiny server: token-exact prompts, exact output lengths
    (ignore_eos), the counts agree with the server's own counters, the JSON lands in the
    server's run directory, and --compare reads it back."""
    import httpx

    settings = vllm_server.settings
    env = dict(os.environ, VLLMTUI_TMUX_SOCKET=str(settings.tmux_socket),
               VLLMTUI_STATE_DIR=str(settings.state_dir), VLLMTUI_CONFIG_DIR=str(settings.config_dir),
               VLLMTUI_PROFILES=str(settings.profiles_dirs[0]))

    def generated() -> float:
        text = httpx.get(vllm_server.base_url + "/metrics", timeout=5).text
        return parse_metrics(text).counters[GENERATION_TOKENS]

    before = generated()
    cmd = [sys.executable, "-m", "vllmtui", "bench", vllm_server.name, "--input-len", "32",
           "--output-len", "8", "--num-prompts", "6", "--concurrency", "1,3", "--warmups", "1", "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert [lv["concurrency"] for lv in out["levels"]] == [1, 3]
    for lv in out["levels"]:
        s = lv["stats"]
        assert (s["completed"], s["failed"]) == (6, 0), s["errors"]
        assert s["total_input"] == 6 * 32  # token-exact prompts, as the server counted them
        assert s["total_output"] == 6 * 8  # ignore_eos: every request ran to max_tokens
        assert s["ttft_ms"]["median"] > 0 and s["e2el_ms"]["median"] >= s["ttft_ms"]["median"]
        assert s["request_throughput"] > 0
    # what the server generated: 2 levels x (1 warm-up + 6 measured) x 8 tokens
    assert generated() - before == 2 * 7 * 8
    saved = Path(out["saved"])
    assert saved.parent.parent.parent == settings.runs_dir and saved.name.startswith("bench-")
    proc = subprocess.run([sys.executable, "-m", "vllmtui", "bench", vllm_server.name, "--compare"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "out tok/s" in proc.stdout and "concurrency (log2)" in proc.stdout


def test_metrics_cli_on_the_real_server(vllm_server) -> None:
    import json
    import os
    import subprocess
    import sys

    s = vllm_server.settings
    env = dict(os.environ, VLLMTUI_TMUX_SOCKET=str(s.tmux_socket), VLLMTUI_STATE_DIR=str(s.state_dir),
               VLLMTUI_CONFIG_DIR=str(s.config_dir), VLLMTUI_PROFILES=str(s.profiles_dirs[0]))
    proc = subprocess.run([sys.executable, "-m", "vllmtui", "metrics", vllm_server.name, "--json",
                           "--count", "2", "--interval", "0.2"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 2 and all(x["ok"] for x in lines)
    assert lines[1]["generation_tps"] is not None and lines[1]["running"] is not None
    proc = subprocess.run([sys.executable, "-m", "vllmtui", "metrics", vllm_server.name, "--interval", "0.1"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.count("running ") == 1 and "tok/s" in proc.stdout
