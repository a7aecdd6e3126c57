"""Root causes of real vLLM failures: every log in tests/data/vllm-failures/ (collected from the CPU
vLLM in a tmux pane by scripts/collect_vllm_failures.py, bytes as vllmtui's server.log holds them)
read the ways vllmtui reads a log, and the ranking rules on lines taken from those logs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import DATA
from vllmtui.servers import failures, logs

CORPUS = DATA / "vllm-failures"
CASES: dict[str, dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text())["cases"]
NAMES = sorted(CASES)


def _lines(name: str) -> list[str]:
    """A corpus log's lines as vllmtui's readers split and clean them."""
    lines, _ = logs.read_lines_from(CORPUS / f"{name}.log", 0, 1 << 30)
    return [logs.clean_line(line) for line in lines]


def _check(failure: failures.Failure | None, expect: dict[str, Any]) -> None:
    if expect["key"] is None:
        assert failure is None, f"the log names no cause, yet {failure}"
        return
    assert failure is not None, "no root cause found"
    assert (failure.key, expect["line"] in failure.line, expect["hint"] in failure.hint) == (
        expect["key"], True, True), failure


# ---------------------------------------------------------------- the corpus


def test_the_corpus_has_a_dozen_real_failures_each_with_its_log() -> None:
    assert sorted(p.stem for p in CORPUS.glob("*.log")) == NAMES
    assert sum(1 for c in CASES.values() if c["expect"]["key"]) >= 12
    for name, case in CASES.items():
        assert case["vllm_version"] and case["date"] and case["command"][:3] == [
            "python", "-m", "vllm.entrypoints.openai.api_server"], name
        assert "{model}" in case["command"], name  # no machine's temp path in the record
        raw = (CORPUS / f"{name}.log").read_bytes()
        assert b"\r\n" in raw, f"{name}: not what a tmux pane prints (pipe-pane keeps \\r\\n)"


@pytest.mark.parametrize("name", NAMES)
def test_the_root_cause_of_a_real_failure_as_the_tui_reads_it(name: str, tmp_path: Path) -> None:
    # the TUI's path: LogStates reads what was added since the last call; vLLM writes in bursts,
    # so feed the real bytes in uneven pieces (lines cut in two included)
    raw = (CORPUS / f"{name}.log").read_bytes()
    path = tmp_path / "server.log"
    path.write_bytes(b"")
    states = logs.LogStates()
    step, at = 1, 0
    while at < len(raw):
        with path.open("ab") as fh:
            fh.write(raw[at:at + step])
        at += step
        step = step * 3 + 7
        states.state(path)
    _check(states.state(path).failure, CASES[name]["expect"])
    # the same in one read of the whole file
    _check(logs.LogStates().state(CORPUS / f"{name}.log").failure, CASES[name]["expect"])


@pytest.mark.parametrize("name", NAMES)
def test_the_root_cause_of_a_real_failure_as_scan_reads_it(name: str) -> None:
    path = CORPUS / f"{name}.log"
    _check(logs.scan(path).failure, CASES[name]["expect"])
    # read in two parts, as scan reads a log too big to read whole (its head, then its tail)
    _check(logs.scan(path, head_bytes=1 << 10, tail_bytes=path.stat().st_size).failure, CASES[name]["expect"])


@pytest.mark.parametrize("name", NAMES)
def test_usage_text_tracebacks_and_info_lines_are_never_a_root_cause(name: str) -> None:
    for line in _lines(name):
        message = failures._message(line)[1]
        if re.match(r"usage: |\s+\[|\s+File \"|\s{4}", message) or " INFO " in line[:40]:
            assert failures.failure_of(line) is None, line


def test_each_cause_s_needles_are_in_every_line_its_pattern_matches() -> None:
    # the needles skip a pattern's regex search: they must never skip a line it would match
    for name in NAMES:
        for line in _lines(name):
            message = failures._message(line)[1]
            for cause in failures._FAILURES:
                if cause.pattern.search(message):
                    assert any(n in message for n in cause.needles), (cause.key, line)


# ---------------------------------------------------------------- hints name the profile field


def _root(name: str) -> failures.Failure:
    failure = logs.scan(CORPUS / f"{name}.log").failure
    assert failure is not None
    return failure


def test_an_invalid_choice_lists_the_choices_vllm_printed() -> None:
    failure = _root("invalid-choice")
    printed = re.search(r"\(choose from (.*)\)", failure.line)
    assert printed is not None
    choices = [c.strip(" '") for c in printed.group(1).split(",")]
    assert len(choices) > 5 and failure.hint.endswith(", ".join(choices))
    assert failure.hint.startswith("`kv_cache_dtype: fp9` is not a value this vLLM accepts")


def test_an_unknown_tool_parser_lists_the_parsers_vllm_has() -> None:
    failure = _root("unknown-tool-parser")
    assert "hermes" in failure.hint and "llama3_json" in failure.hint
    assert failure.hint.startswith("`tool_call_parser: no-such-parser`")


@pytest.mark.parametrize(
    ("line", "hint_part"),
    [
        # a flag of no typed field: the `args:` key to fix; a typed field's flag: that field
        ("api_server.py: error: unrecognized arguments: --bogus-flag", "remove or fix `args: bogus-flag`"),
        ("vllm serve: error: unrecognized arguments: --shutdown-timeout 5",
         "remove or fix `shutdown_timeout:` in the profile"),
        ("api_server.py: error: unrecognized arguments: --swap-space=4 --no-enable-prefix-caching",
         "remove or fix `args: swap-space`, `enable_prefix_caching:`"),
        ("api_server.py: error: unrecognized arguments: stray", "'stray': a value without a flag"),
        ("api_server.py: error: argument --dtype: invalid choice: 'fp7' (choose from auto, bfloat16, half)",
         "`dtype: fp7` is not a value this vLLM accepts: use one of auto, bfloat16, half"),
        ("api_server.py: error: argument --block-size: invalid choice: 7 (choose from 1, 8, 16)",
         "`args: {block-size: 7}` is not a value this vLLM accepts: use one of 1, 8, 16"),
        ("api_server.py: error: argument -tp/--tensor-parallel-size: invalid int value: 'two'",
         "`tensor_parallel_size` must be an int, not 'two': fix `tensor_parallel_size:`"),
        ("api_server.py: error: argument --max-num-batched-tokens: expected one argument",
         "fix `max_num_batched_tokens:`"),
        ("api_server.py: error: the following arguments are required: --model", "vLLM refused its command line"),
    ],
)
def test_argparse_hints_name_the_profile_setting(line: str, hint_part: str) -> None:
    failure = failures.failure_of(line)
    assert failure is not None and failure.rank == failures.ARGS
    assert hint_part in failure.hint


def test_the_chat_template_message_of_vllm_s_reply_is_recognised() -> None:
    # vLLM 0.32 puts it in the 400 reply only (the no-chat-template case); a log that has it
    # (another version, a proxy's log) gets the specific hint
    body = json.loads(CASES["no-chat-template"]["response"]["body"])
    failure = failures.failure_of(f"ValueError: {body['error']['message']}")
    assert failure is not None and failure.key == "chat-template" and "`chat_template:`" in failure.hint


# ---------------------------------------------------------------- ranking


def _state(lines: list[str]) -> logs.LogState:
    state = logs.LogState()
    for line in lines:
        state.feed(line)
    return state


ENGINE_INIT = "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
ENGINE_FAILED = "(EngineCore pid=2) ERROR 12-03 11:50:45 [core.py:1510] EngineCore failed to start."
UNKNOWN = "(EngineCore pid=2) ERROR 12-03 11:50:45 [core.py:1510] ValueError: some check vllmtui does not know"


def test_an_argparse_error_wins_over_everything() -> None:
    state = _state(_lines("unrecognized-flag"))
    assert state.failure is not None and state.failure.key == "unrecognized-arguments"
    state = _state(["OSError: [Errno 98] Address already in use",
                    "api_server.py: error: argument --max-num-seqs: invalid int value: 'abc'"])
    assert state.failure is not None and state.failure.key == "invalid-value"


def test_engine_init_never_beats_the_reason_before_or_after_it() -> None:
    for lines in ([ENGINE_FAILED, UNKNOWN, ENGINE_INIT], [ENGINE_FAILED, ENGINE_INIT, UNKNOWN]):
        state = _state(lines)
        assert state.failure is not None and state.failure.line == UNKNOWN, lines
    # the real one: the EngineCore's ValueError, then the API server's traceback, then engine-init
    state = _state(_lines("kv-cache-too-small"))
    assert state.failure is not None and state.failure.key == "max-model-len"
    assert state.failure.line.startswith("(EngineCore pid=")  # the first of the two ValueErrors
    alone = _state([ENGINE_FAILED, ENGINE_INIT]).failure  # with no reason, engine-init it is
    assert alone is not None and alone.key == "engine-init"


def test_a_specific_cause_beats_an_unknown_exception_before_it() -> None:
    state = _state(_lines("kv-space-above-ram"))  # the Worker's ValueError, then RuntimeErrors
    assert state.failure is not None and state.failure.key == "cpu-kv-memory"
    state = _state([UNKNOWN, "OSError: [Errno 98] Address already in use"])
    assert state.failure is not None and state.failure.key == "port-in-use"


def test_the_first_of_equal_causes_wins() -> None:
    state = _state(["OSError: [Errno 98] Address already in use",
                    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"])
    assert state.failure is not None and state.failure.key == "port-in-use"


def test_the_source_line_of_a_traceback_is_not_the_cause_its_message_is() -> None:
    state = _state(_lines("auto-tool-choice-without-parser"))
    assert state.failure is not None
    assert state.failure.line == "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser"


def test_pydantic_s_summary_gives_way_to_the_reason_under_it() -> None:
    state = _state(["pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
                    "  Value error, something vllmtui does not know [type=value_error]",
                    "    For further information visit https://errors.pydantic.dev/2.14/v/value_error"])
    assert state.failure is not None and state.failure.key == "error"
    assert state.failure.line == "Value error, something vllmtui does not know [type=value_error]"


def test_the_engine_s_death_after_a_requested_stop_is_no_cause() -> None:
    stop = "^C(EngineCore pid=1973) INFO 12-03 11:51:53 [core.py:1454] [shutdown] EngineCore: trigger received signal=SIGINT"
    dead = ("(APIServer pid=6503) ERROR 12-03 11:56:56 [async_llm.py:906] vllm.v1.engine.exceptions.EngineDeadError:"
            " EngineCore encountered an issue. See stack trace (above) for the root cause.")
    assert _state([stop, dead]).failure is None
    assert _state([dead]).failure is not None  # without a stop it is one
    state = _state([stop, "torch.OutOfMemoryError: CUDA out of memory."])  # specific ones still count
    assert state.failure is not None and state.failure.key == "oom"


def test_failure_of_is_linear_on_hostile_lines() -> None:
    import time

    for line in ["a" * 100_000, "Error" * 20_000, "x: error: " + "-" * 100_000, " " * 100_000 + "[",
                 "ERROR " + "failed " * 15_000, "api_server.py: error: argument --x: invalid choice: '" + "'," * 30_000,
                 "Model architectures [" + "[" * 100_000, "(A pid=1) " * 10_000]:
        start = time.perf_counter()
        failures.failure_of(line)
        assert time.perf_counter() - start < 0.5, line[:40]
