"""The gateway, vLLM's sleep mode, the GPU-aware swap, chat with an MCP tool, and forced stop /
reaping of sleeping and gateway-started servers, on a real GPU with the real vLLM (CUDA build,
../shared/gpu), through vllmtui's own commands. Run on the GPU box from the repository root
after the vLLM bundle is installed (docs/gpu-validation.md):

    python3 scripts/gpu_validate_gateway.py [gateway] [bench] [moe]   # parts (default gateway)

Two servers with random weights: `a` (Qwen2.5-7B architecture, 40 % of the GPU, sleeps after
45 s idle) and `b` (Llama-3.1-8B architecture, 70 %): they cannot both be awake on one GPU, so
asking for one makes the gateway put the other away. Every step prints what it saw; GPU memory is
read with gpustat (what vllmtui's GPU panel reads).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("OUT", ROOT / "gpu-out"))
STATE, PROFILES, CONFIG = Path("/tmp/vg-state"), Path("/tmp/vg-profiles"), Path("/tmp/vg-config")
GATEWAY = "http://127.0.0.1:8080"
ENV = {
    **os.environ,
    "VLLMTUI_STATE_DIR": str(STATE),
    "VLLMTUI_PROFILES": str(PROFILES),
    "VLLMTUI_CONFIG_DIR": str(CONFIG),
    "PYTHONUNBUFFERED": "1",
    "HF_HUB_OFFLINE": "1",
    "VLLM_USE_FLASHINFER_SAMPLER": "0",
    "VLLMTUI_TMUX_SOCKET": "vg",
}
ENV.pop("TMUX", None)
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"\n===== {text}  [+{time.monotonic() - T0:.0f}s]", flush=True)


def v(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "vllmtui", *args],
        env=ENV,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    out = (proc.stdout + proc.stderr).rstrip()
    print(f"$ vllmtui {' '.join(args)}   (exit {proc.returncode})\n{out}", flush=True)
    return proc.stdout


def gpu_mib() -> dict[str, Any]:
    """gpustat's reading: used MiB and each process's MiB."""
    import gpustat

    gpu = gpustat.new_query().gpus[0]
    procs = {p["pid"]: p.get("gpu_memory_usage") for p in gpu.processes or []}
    return {"used_mib": gpu.memory_used, "total_mib": gpu.memory_total, "processes": procs}


def show_gpu(label: str) -> dict[str, Any]:
    reading = gpu_mib()
    print(
        f"  gpustat {label}: {reading['used_mib']:,} / {reading['total_mib']:,} MiB used;"
        f" processes {reading['processes']}",
        flush=True,
    )
    return reading


def chat(model: str, text: str = "Say hello.", max_tokens: int = 16, timeout: float = 600) -> dict[str, Any]:
    """One streamed request through the gateway: time to first token and the text."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    began = time.monotonic()
    first = None
    pieces = []
    with httpx.stream("POST", f"{GATEWAY}/v1/chat/completions", json=body, timeout=timeout) as resp:
        if resp.status_code != 200:
            resp.read()
            return {"status": resp.status_code, "error": resp.text[:300], "seconds": time.monotonic() - began}
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = (json.loads(line[6:]).get("choices") or [{}])[0].get("delta") or {}
                if delta.get("content"):
                    first = first or time.monotonic() - began
                    pieces.append(delta["content"])
    result = {"status": 200, "ttft": first, "seconds": time.monotonic() - began, "text": "".join(pieces)}
    print(
        f"  {model}: HTTP 200, first token after {first if first is None else round(first, 3)} s,"
        f" {result['seconds']:.2f} s in all: {result['text'][:60]!r}",
        flush=True,
    )
    return result


def states() -> dict[str, str]:
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "vllmtui", "status", "--json"],
            env=ENV,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        or "{}"
    )
    return {s["name"]: s["state"] for s in data.get("servers", [])}


def wait_state(name: str, wanted: str, timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if states().get(name) == wanted:
            return time.monotonic() - began
        time.sleep(1)
    raise SystemExit(f"{name} not {wanted} after {timeout:.0f} s: {states()}")


def setup() -> None:
    say("models with random weights: Qwen2.5-7B and Llama-3.1-8B architectures")
    for name, config in (("qwen7b", "Qwen2.5-7B.json"), ("llama8b", "Llama-3.1-8B.json")):
        if not Path(f"/tmp/{name}-dummy/config.json").exists():
            v(
                "demo-model",
                "--from-config",
                f"tests/data/configs/{config}",
                "--dest",
                f"/tmp/{name}-dummy",
                "--python",
                sys.executable,
            )
    for path in (STATE, PROFILES, CONFIG):
        path.mkdir(parents=True, exist_ok=True)
    common = {
        "load_format": "dummy",
        "enforce_eager": True,
        "max_model_len": 4096,
        "gpus": [0],
        "enable_sleep_mode": True,
        "runtime": {"python": sys.executable, "entrypoint": "module"},
        "env": {"VLLM_USE_FLASHINFER_SAMPLER": "0", "HF_HUB_OFFLINE": "1"},
        "stop": {"timeout": 30},
        "enable_auto_tool_choice": True,
        "tool_call_parser": "hermes",
    }
    profiles = {
        "a": {
            "model": "/tmp/qwen7b-dummy",
            "served_model_name": "a",
            "port": 8001,
            "gpu_memory_utilization": 0.40,
            "idle": "sleep 45s",
            **common,
        },
        "b": {
            "model": "/tmp/llama8b-dummy",
            "served_model_name": "b",
            "port": 8002,
            "gpu_memory_utilization": 0.70,
            "idle": "stop 30m",
            **common,
        },
    }
    for name, data in profiles.items():
        (PROFILES / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (CONFIG / "gateway.yaml").write_text(
        yaml.safe_dump({"port": 8080, "idle_check": 2, "start_timeout": 480})
    )
    (CONFIG / "mcp.yaml").write_text(
        yaml.safe_dump(
            {
                "mcpServers": {
                    "weather": {
                        "command": sys.executable,
                        "args": [str(ROOT / "tests" / "support" / "mcp_server.py")],
                    }
                }
            }
        )
    )
    v("check", "a")
    v("check", "b")


def gateway_part() -> None:
    say("gateway up; /v1/models lists both, stopped")
    v("gateway", "up")
    print(httpx.get(f"{GATEWAY}/v1/models", timeout=10).text)
    show_gpu("before anything")

    say("a request for the stopped profile a: started on demand, held, served")
    cold = chat("a")
    print(f"  cold request {cold['seconds']:.1f} s (time to ready: below)")
    v("runs", "a")
    v("plan", "a")  # the planner's KV budget beside vLLM's logged one (dense, 40 % of the GPU)
    awake = show_gpu("a ready")

    say("chat on the real server with a tool from a real MCP server (named tool_choice, then auto)")
    v(
        "chat",
        "--gateway",
        "a",
        "-m",
        "What is the weather in Paris?",
        "--tool",
        "get_weather",
        "--yes",
        "--json",
        "--set",
        "max_tokens=200",
    )
    v(
        "chat",
        "--gateway",
        "a",
        "-m",
        "What is the weather in Oslo?",
        "--yes",
        "--json",
        "--set",
        "max_tokens=200",
    )

    say("idle policy: a sleeps 45 s after its last request (vLLM sleep mode, level 1)")
    waited = wait_state("a", "asleep", 120)
    print(f"  a asleep {waited:.0f} s after the poll began")
    v("status")
    asleep = show_gpu("a asleep")
    print(f"  GPU memory freed by sleep: {awake['used_mib'] - asleep['used_mib']:,} MiB")
    say("the next request wakes a: time to wake and the first reply after waking")
    woke = chat("a")
    show_gpu("a awake again")
    v("gateway", "status")

    say("swap: b (70 %) does not fit beside a (40 %): the gateway puts a (LRU, idle) to sleep first")
    chat("b")
    v("status")
    show_gpu("b ready, a asleep")
    say("a again: b (idle, the gateway's) is stopped to make room, then a wakes")
    chat("a")
    v("status")
    show_gpu("a awake, b stopped")
    v("gateway", "status")
    print(
        f"\nSUMMARY cold {cold['seconds']:.1f} s; sleep freed {awake['used_mib'] - asleep['used_mib']:,} MiB;"
        f" wake + first token {woke.get('ttft')} s",
        flush=True,
    )


def stop_part() -> None:
    say("forced stop of a SLEEPING server")
    chat("b")  # a goes to sleep for b
    wait_state("a", "asleep", 60)
    show_gpu("a asleep, b ready")
    v("stop", "a", "--force")
    time.sleep(2)
    v("gpus")
    show_gpu("a force-stopped")

    say("a gateway-started server whose API server is SIGKILLed: its EngineCore orphan, then reap")
    pid = next(s["pid"] for s in json.loads(v("status", "--json"))["servers"] if s["name"] == "b")
    os.kill(int(pid), signal.SIGKILL)
    time.sleep(8)
    print(
        subprocess.run(
            "ps -eo pid,ppid,pgid,stat,cmd | grep -a '[V]LLM' | cut -c1-100",
            shell=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    v("status")
    v("gpus")
    show_gpu("b's API server killed")
    v("reap")
    time.sleep(3)
    v("gpus")
    show_gpu("after reap")
    v("gateway", "down")


def bench_part() -> None:
    say("gateway overhead on a real GPU: scripts/bench_gateway.py against the zero-time stand-in and a")
    subprocess.run(
        [
            sys.executable,
            "scripts/bench_gateway.py",
            "--vllm-profile",
            str(PROFILES / "a.yaml"),
            "--no-isolate",
            "--rounds",
            "3",
            "--vllm-rounds",
            "3",
            "--vllm-cold",
            "1",
            "--standin-cold",
            "1",
            "--vllm-requests",
            "64,160,640",
        ],
        cwd=ROOT,
        timeout=420,
    )


def moe_part() -> None:
    say("the planner on a mixture of experts (Qwen3-30B-A3B architecture, random weights)")
    if not Path("/tmp/moe-dummy/config.json").exists():
        v(
            "demo-model",
            "--from-config",
            "tests/data/configs/Qwen3-30B-A3B.json",
            "--dest",
            "/tmp/moe-dummy",
            "--python",
            sys.executable,
        )
    moe = {
        "model": "/tmp/moe-dummy",
        "served_model_name": "moe",
        "port": 8003,
        "gpus": [0],
        "load_format": "dummy",
        "gpu_memory_utilization": 0.90,
        "max_model_len": 8192,
        "runtime": {"python": sys.executable, "entrypoint": "module"},
        "env": {"VLLM_USE_FLASHINFER_SAMPLER": "0", "HF_HUB_OFFLINE": "1"},
        "stop": {"timeout": 30},
    }
    (PROFILES / "moe.yaml").write_text(yaml.safe_dump(moe, sort_keys=False))
    v("plan", "moe")
    v("start", "moe", "--wait", "--timeout", "420")
    v("plan", "moe")
    log = sorted((STATE / "runs" / "moe").iterdir())[-1] / "server.log"
    for line in log.read_text(errors="replace").splitlines():
        if any(
            k in line
            for k in (
                "Model loading took",
                "Actual usage",
                "Available KV cache",
                "GPU KV cache size",
                "Maximum concurrency",
                "CUDA graph",
                "Memory profiling",
            )
        ):
            print("  log:", line[-220:])
    chat_direct = httpx.post(
        "http://127.0.0.1:8003/v1/chat/completions",
        timeout=60,
        json={"model": "moe", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
    ).json()
    print("  moe answers:", json.dumps(chat_direct.get("usage")))
    v("stop", "moe")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    parts = sys.argv[1:] or ["gateway"]
    try:
        setup()
        if "gateway" in parts:
            gateway_part()
            stop_part()
        if "bench" in parts:
            bench_part()
        if "moe" in parts:
            moe_part()
    finally:
        v("stop", "a", "b", "--force")
        v("gateway", "down")
        v("reap")
        subprocess.run(["tmux", "-L", "vg", "kill-server"], capture_output=True)
        subprocess.run(
            ["tar", "-C", str(STATE), "-czf", str(OUT / "gateway-runs.tgz"), "."], capture_output=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
