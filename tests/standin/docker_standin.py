#!/usr/bin/env python3
"""A STAND-IN for the docker CLI, for tests on a machine where no container engine can run.
It does what vllmtui asks of docker, with the vLLM stand-in (fake_vllm_standin.py) as the
container's process:

  run [--rm] --name N [options] IMAGE ARGS...   the "container": fake_vllm_standin.py ARGS, started
      outside the caller's process tree (as a daemon would), its output passed back, SIGINT and
      SIGTERM proxied to it; `-p ADDR:HOSTPORT:PORT` makes it listen on ADDR:HOSTPORT (it is told
      --host 0.0.0.0 --port PORT, as inside a container); its environment holds only the `-e`
      variables (NAME: the value from this process's environment; NAME=VALUE). An image not
      pulled yet is pulled first, as docker does.
  pull IMAGE           prints layer progress lines over $DOCKER_STANDIN_PULL_SECONDS (default 1);
                       $DOCKER_STANDIN_PULL_FAIL=1: fails as a registry refusal does
  image inspect IMAGE  exit 0 once pulled (or listed in $DOCKER_STANDIN_IMAGES, comma-separated)
  inspect [--type container] [--format T] NAME   {{.State.Pid}} {{.State.Status}} {{.Id}}, or JSON
  stop [-t T] NAME     SIGTERM to the container's first process, SIGKILL to all of it after T s
  kill NAME / rm -f NAME / ps / version  ($DOCKER_STANDIN_NO_DAEMON=1: as docker without its daemon)

State (containers, pulled images, and every call's argv in calls.jsonl) lives in
$DOCKER_STANDIN_DIR. Only the standard library: it runs under any python3.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VLLM = HERE / "fake_vllm_standin.py"
STATE = Path(os.environ.get("DOCKER_STANDIN_DIR") or "/tmp/docker-standin")
VALUED = {"-p", "--publish", "-v", "--volume", "-e", "--env", "--name", "--gpus", "--device", "--network",
          "--net", "--entrypoint", "--shm-size", "--env-file", "--cidfile", "-w", "--workdir", "-u", "--user",
          "--ipc", "--mount", "--label", "-l", "--pull", "--runtime", "--cpus", "-m", "--memory",
          "--ulimit", "--security-opt", "--cap-add", "--add-host", "--hostname", "-h"}
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr, flush=True)
    return code


def box_file(name: str) -> Path:
    return STATE / "containers" / f"{name}.json"


def read_box(name: str) -> dict[str, object] | None:
    try:
        data = json.loads(box_file(name).read_text())
    except (OSError, ValueError):
        return None
    if not alive(int(data["pid"])):
        box_file(name).unlink(missing_ok=True)  # it ended without anyone noticing (killed)
        return None
    return dict(data)


def alive(pid: int) -> bool:
    """Whether a process lives (a zombie nobody has reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def images() -> set[str]:
    listed = {i for i in os.environ.get("DOCKER_STANDIN_IMAGES", "").split(",") if i}
    try:
        return listed | set((STATE / "images.txt").read_text().split())
    except OSError:
        return listed


def cmd_pull(image: str) -> int:
    seconds = float(os.environ.get("DOCKER_STANDIN_PULL_SECONDS", "1"))
    print(f"{image.rpartition(':')[2] if ':' in image else 'latest'}: Pulling from {image.partition(':')[0]}",
          flush=True)
    if os.environ.get("DOCKER_STANDIN_PULL_FAIL"):
        time.sleep(seconds / 4)
        return fail(f"Error response from daemon: pull access denied for {image}, repository does not exist"
                    " or may require 'docker login'")
    layers = [f"{i:x}" * 12 for i in range(10, 14)]
    for layer in layers:
        print(f"{layer[:12]}: Pulling fs layer", flush=True)
    for layer in layers:
        time.sleep(seconds / (2 * len(layers)))
        print(f"{layer[:12]}: Download complete", flush=True)
        time.sleep(seconds / (2 * len(layers)))
        print(f"{layer[:12]}: Pull complete", flush=True)
    print("Digest: sha256:" + "0" * 64, flush=True)
    print(f"Status: Downloaded newer image for {image}", flush=True)
    with open(STATE / "images.txt", "a") as out:
        out.write(image + "\n")
    return 0


def parse_run(argv: list[str]) -> tuple[dict[str, list[str]], set[str], str, list[str]]:
    """(valued options, flags, image, container args)."""
    opts: dict[str, list[str]] = {}
    flags: set[str] = set()
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        word = argv[i]
        name, eq, value = word.partition("=")
        if name in VALUED:
            if not eq:
                i += 1
                value = argv[i]
            opts.setdefault(name, []).append(value)
        else:
            flags.add(word)
        i += 1
    return opts, flags, argv[i], argv[i + 1:]


def container_env(opts: dict[str, list[str]]) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "PYTHONUNBUFFERED": "1"}
    for item in opts.get("-e", []) + opts.get("--env", []):
        name, eq, value = item.partition("=")
        if eq:
            env[name] = value
        elif name in os.environ:  # docker sets a bare NAME only when the client has it
            env[name] = os.environ[name]
    return env


def translated(args: list[str], opts: dict[str, list[str]]) -> list[str]:
    """The container's args with --host/--port made the host's end of `-p ADDR:HOSTPORT:PORT`."""
    out = list(args)
    for publish in opts.get("-p", []) + opts.get("--publish", []):
        parts = publish.rsplit(":", 2)
        addr, host_port, port = (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("0.0.0.0", *parts)
        if "--port" in out and out[out.index("--port") + 1] == port:
            out[out.index("--port") + 1] = host_port
            if "--host" in out:
                out[out.index("--host") + 1] = addr.strip("[]") or "0.0.0.0"
    return out


def cmd_run(argv: list[str]) -> int:
    opts, flags, image, args = parse_run(argv)
    name = (opts.get("--name") or [f"standin-{os.getpid()}"])[-1]
    if "-d" in flags or "--detach" in flags:
        return fail("docker stand-in: -d is not supported", 125)
    if read_box(name) is not None:
        return fail(f'docker: Error response from daemon: Conflict. The container name "/{name}" is already'
                    " in use.", 125)
    if image not in images():
        print(f"Unable to find image '{image}' locally", file=sys.stderr, flush=True)
        if cmd_pull(image) != 0:
            return 125
    command = [sys.executable, str(VLLM), *translated(args, opts)]
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # detach the container from the caller, as a daemon's runtime does
        os.setsid()
        if os.fork() == 0:
            os.setsid()  # the container's own session: `kill` ends all of it
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.execve(sys.executable, [sys.executable, __file__, "_shim", str(STATE), name,
                                       "--rm" if "--rm" in flags else "--keep", image, *command],
                      container_env(opts))
        os._exit(0)
    os.waitpid(middle, 0)
    os.close(write_end)
    return relay(name, read_end)


def relay(name: str, read_end: int) -> int:
    """The client's part: pass the container's output on, proxy SIGINT/SIGTERM, and exit with its
    status once its output ends."""
    def proxy(sig: int, _frame: object) -> None:
        box = read_box(name)
        if box is not None:
            os.kill(int(box["pid"]), sig)

    signal.signal(signal.SIGINT, proxy)
    signal.signal(signal.SIGTERM, proxy)
    with os.fdopen(read_end, "rb", buffering=0) as stream:
        while chunk := stream.read(4096):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    exit_file = STATE / "containers" / f"{name}.exit"
    for _ in range(20):
        if exit_file.exists():
            code = int(exit_file.read_text() or 0)
            exit_file.unlink(missing_ok=True)
            return code
        time.sleep(0.05)
    return 137  # killed without a word: as docker reports a SIGKILLed container


def cmd_shim(name: str, keep: str, image: str, command: list[str]) -> int:
    """The container's first process (docker-init's part): runs the server, forwards signals."""
    child = subprocess.Popen(command)
    box_file(name).write_text(json.dumps({"pid": os.getpid(), "id": f"{os.getpid():064x}", "image": image,
                                          "server_pid": child.pid}))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    code = child.wait()
    code = 128 - code if code < 0 else code
    (STATE / "containers" / f"{name}.exit").write_text(str(code))
    if keep == "--rm":
        box_file(name).unlink(missing_ok=True)
    return code


def kill_box(name: str, box: dict[str, object]) -> None:
    pid = int(box["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the whole container (its session: the shim is its leader)
    gone(pid, 5.0)
    box_file(name).unlink(missing_ok=True)


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def cmd_stop(argv: list[str]) -> int:
    seconds = float(argv[argv.index("-t") + 1]) if "-t" in argv else 10.0
    name = argv[-1]
    box = read_box(name)
    if box is None:
        return fail(f"Error response from daemon: No such container: {name}")
    pid = int(box["pid"])
    os.kill(pid, signal.SIGTERM)
    if not gone(pid, seconds):
        kill_box(name, box)
    print(name, flush=True)
    return 0


def cmd_inspect(argv: list[str]) -> int:
    template = argv[argv.index("--format") + 1] if "--format" in argv else None
    name = argv[-1]
    box = read_box(name)
    if box is None:
        return fail(f"Error: No such object: {name}")
    values = {"{{.State.Pid}}": str(box["pid"]), "{{.State.Status}}": "running", "{{.Id}}": str(box["id"]),
              "{{.State.Running}}": "true"}
    if template is None:
        print(json.dumps([{"Id": box["id"], "Name": "/" + name, "State": {"Pid": box["pid"], "Running": True}}]))
    else:
        for key, value in values.items():
            template = template.replace(key, value)
        print(template)
    return 0


def main(argv: list[str]) -> int:
    global STATE
    if argv[:1] == ["_shim"]:  # the state directory comes as an argument: not in the container's env
        STATE = Path(argv[1])
        return cmd_shim(argv[2], argv[3], argv[4], argv[5:])
    (STATE / "containers").mkdir(parents=True, exist_ok=True)
    with open(STATE / "calls.jsonl", "a") as log:
        log.write(json.dumps({"argv": argv, "time": time.time()}) + "\n")
    if os.environ.get("DOCKER_STANDIN_NO_DAEMON") and argv[:1] != ["--version"]:
        return fail(NO_DAEMON)
    verb, rest = (argv[0] if argv else "help"), argv[1:]
    if verb == "version":
        print("Client: docker stand-in\nServer: docker stand-in", flush=True)
        return 0
    if verb == "pull":
        return cmd_pull(rest[-1])
    if verb == "image" and rest[:1] == ["inspect"]:
        return 0 if rest[-1] in images() else fail(f"Error response from daemon: No such image: {rest[-1]}")
    if verb == "run":
        return cmd_run(rest)
    if verb == "stop":
        return cmd_stop(rest)
    if verb in ("kill", "rm"):
        box = read_box(rest[-1])
        if box is None:
            return fail(f"Error response from daemon: No such container: {rest[-1]}")
        if verb == "rm" and "-f" not in rest:
            return fail(f"Error response from daemon: cannot remove container {rest[-1]}: it is running")
        kill_box(rest[-1], box)
        print(rest[-1], flush=True)
        return 0
    if verb == "inspect":
        return cmd_inspect(rest)
    if verb == "ps":
        for path in sorted((STATE / "containers").glob("*.json")):
            if read_box(path.stem) is not None:
                print(path.stem)
        return 0
    return fail(f"docker stand-in: {verb!r} is not a command it knows", 125)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
