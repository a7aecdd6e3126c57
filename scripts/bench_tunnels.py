#!/usr/bin/env python3
"""Tunnel figures against a real sshd on loopback (needs openssh-server and tmux):
time from `up` to a verified forward, the cost of one status reading, time to notice a
stopped sshd and to be back up after it returns, and the supervisor's memory.

    .venv/bin/python scripts/bench_tunnels.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.helpers import free_port
from tests.support.sshd import Sshd
from vllmtui.core.settings import Settings
from vllmtui.tunnels.manager import Tunnels


def until(pred, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    begin = time.monotonic()
    while not pred():
        if time.monotonic() - begin > timeout:
            raise SystemExit("timed out")
        time.sleep(0.02)
    return time.monotonic() - begin


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vllmtui-bench-tunnels-"))
    (tmp / "sshd").mkdir()
    sshd = Sshd(tmp / "sshd")
    sshd.start()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a: object) -> None:
            pass

    target_port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", target_port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    socket_name = f"vllmtui-bench-{uuid.uuid4().hex[:8]}"
    settings = replace(Settings(), profiles_dirs=(tmp / "profiles",), state_dir=tmp / "state",
                       config_dir=tmp / "config", tmux_socket=socket_name)
    settings.config_dir.mkdir()
    bind = free_port()
    (settings.config_dir / "tunnels.yaml").write_text(yaml.safe_dump({"tunnels": [{
        "name": "bench", "destination": "box", "bind_port": bind, "target_port": target_port,
        "ssh_config": str(sshd.client_config), "retry_max": 1}]}))
    tunnels = Tunnels(settings)
    tunnel = tunnels.find("bench")[0]
    up_times, read_times = [], []
    try:
        for _ in range(args.rounds):
            begin = time.monotonic()
            tunnels.up(tunnel)
            until(lambda: tunnels.status("bench").state == "up")
            up_times.append(time.monotonic() - begin)
            for _ in range(10):
                t0 = time.monotonic()
                tunnels.statuses()
                read_times.append(time.monotonic() - t0)
            tunnels.down("bench")
        tunnels.up(tunnel)
        until(lambda: tunnels.status("bench").state == "up")
        status = tunnels.status("bench")
        rss = psutil.Process(status.pid).memory_info().rss if status.pid else 0
        ssh_rss = psutil.Process(status.ssh_pid).memory_info().rss if status.ssh_pid else 0
        sshd.stop()
        lost = until(lambda: tunnels.status("bench").state in ("failed", "connecting"))
        down_for = 3.0
        time.sleep(down_for)  # the outage being simulated, not a wait on a condition
        sshd.start()
        back = until(lambda: tunnels.status("bench").state == "up")
        tunnels.down("bench")
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
        sshd.stop()
        httpd.shutdown()

    def fmt(xs: list[float]) -> str:
        return (f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"
                f" (n={len(xs)})")

    print(f"up -> verified forward (tmux + supervisor + ssh + HTTP through it): {fmt(up_times)}")
    print(f"statuses() with one running tunnel (probe through it):            {fmt(read_times)}")
    print(f"sshd killed -> state failed/connecting:                            {lost * 1000:.0f} ms")
    print(f"sshd back (after {down_for:.0f} s away) -> up again (retry_max 1 s):            "
          f"{back * 1000:.0f} ms")
    print(f"supervisor RSS {rss / 2**20:.1f} MiB, ssh RSS {ssh_rss / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
