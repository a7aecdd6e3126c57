#!/usr/bin/env python3
"""A STAND-IN for a vLLM server, for tests where the real one cannot be made to misbehave
on demand (ignore SIGINT, crash with OOM, hang, leave an orphaned engine). It prints
vLLM-like startup lines and serves /health, /v1/models and /version over HTTP.

Usage: fake_vllm_standin.py MODEL [--port N] [--host H] [--mode MODE] [--delay S] [any vLLM flags]
Modes: ok (default), ignore-sigint, crash-oom, wedge (accepts, never answers), exit-after-ready,
engine (spawns a child titled VLLM::EngineCore in the same process group).
Environment: STANDIN_MODE and STANDIN_DELAY override --mode/--delay; STANDIN_EXIT_DELAY: seconds
crash-oom waits after its last line before it exits (a real vLLM takes ~2.4 s).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time


def arg(name: str, default: str) -> str:
    argv = sys.argv[1:]
    if name in argv:
        return argv[argv.index(name) + 1]
    return default


def log(proc: str, level: str, msg: str) -> None:
    print(f"({proc} pid={os.getpid()}) {level} {time.strftime('%m-%d %H:%M:%S')} [standin.py:1] {msg}",
          flush=True)


def main() -> int:
    mode = os.environ.get("STANDIN_MODE") or arg("--mode", "ok")
    delay = float(os.environ.get("STANDIN_DELAY") or arg("--delay", "0.3"))
    host = arg("--host", "127.0.0.1")
    port = int(arg("--port", "8000"))
    model = arg("--model", sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "standin")
    served = arg("--served-model-name", model)

    if mode == "ignore-sigint":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *_: (print("[shutdown] SIGINT received", flush=True), sys.exit(0)))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143) if mode != "ignore-sigterm" else None)

    log("APIServer", "INFO", "vLLM API server version 0.0.0-standin")
    log("APIServer", "INFO", f"non-default args: {{'model': '{model}', 'port': {port}}}")
    child = None
    if mode == "engine":
        # the stand-in engine ignores SIGHUP, so it outlives a killed API server the way an
        # orphaned VLLM::EngineCore does (the pane's death sends SIGHUP to its process group)
        code = "import signal, time\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\nwhile True: time.sleep(1)"
        child = subprocess.Popen(["VLLM::EngineCore", "-c", code], executable=sys.executable)
        log("APIServer", "INFO", f"engine pid {child.pid}")
    time.sleep(delay)
    log("Worker", "INFO", f"Starting to load model {model}...")
    time.sleep(delay)
    if mode == "crash-oom":
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.", flush=True)
        log("EngineCore", "ERROR", "EngineCore failed to start.")
        print("RuntimeError: Engine core initialization failed. See root cause above.", flush=True)
        # a real vLLM takes seconds to exit after saying why (its engine processes wind down)
        time.sleep(float(os.environ.get("STANDIN_EXIT_DELAY", "0")))
        return 1
    if "--headless" in sys.argv:  # a data-parallel node without the API server: no HTTP
        rank = arg("--data-parallel-start-rank", "0")
        log("EngineCore", "INFO", f"headless: data-parallel ranks from {rank}, head at"
            f" {arg('--data-parallel-address', '?')}:{arg('--data-parallel-rpc-port', '?')}")
        while True:
            time.sleep(1)
    log("Worker", "INFO", "Model loading took 0.10 GiB memory and 0.20 seconds")
    log("EngineCore", "INFO", "GPU KV cache size: 65,536 tokens")
    log("EngineCore", "INFO", "Maximum concurrency for 1,024 tokens per request: 64.00x")
    time.sleep(delay)
    log("EngineCore", "INFO", "init engine (profile, create kv cache, warmup model) took 0.50 s")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if mode == "wedge" and self.path == "/health" and wedged.is_set():
                time.sleep(3600)
            body = b""
            if self.path == "/v1/models":
                body = json.dumps({"object": "list", "data": [
                    {"id": served, "object": "model", "root": model, "max_model_len": 1024}]}).encode()
            elif self.path == "/version":
                body = b'{"version": "0.0.0-standin"}'
            elif self.path != "/health":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: object) -> None:
            return

    wedged = threading.Event()
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer((host, port), Handler)
    log("APIServer", "INFO", f"Starting vLLM server on http://{host}:{port}")
    print("INFO:     Application startup complete.", flush=True)
    if mode == "wedge":
        threading.Timer(float(os.environ.get("STANDIN_WEDGE_AFTER", "1.0")), wedged.set).start()
    if mode == "exit-after-ready":
        threading.Timer(1.0, lambda: os._exit(0)).start()
    try:
        server.serve_forever()
    finally:
        if child is not None:
            child.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
