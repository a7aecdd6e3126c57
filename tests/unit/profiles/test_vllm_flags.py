"""Closed-set fields and `args:` flags checked against what a vLLM accepts: the built-in
fallback, and a runtime's own parser (its payload; the real runtime is read in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

from vllmtui.profiles import vllm_flags
from vllmtui.profiles.loading import parse_profile
from vllmtui.profiles.model import Profile

P = Path("/p/x.yaml")
FALLBACK = vllm_flags.builtin("test")


def profile(text: str) -> Profile:
    return parse_profile(text, P)[0]


def runtime(options: dict[str, dict[str, object]], version: str = "9.9.9") -> vllm_flags.VllmFlags:
    """Flags as `_from_payload` makes them from a runtime's dump (the shape the dump prints)."""
    return vllm_flags._from_payload({"vllm_version": version, "flags": options, "values": {}}, "/venv/bin/python")


BASE: dict[str, dict[str, object]] = {
    "--dtype": {"choices": ["auto", "bfloat16"], "nargs": None},
    "--kv-cache-dtype": {"choices": ["auto", "fp8", "fp9"], "nargs": None},  # a newer vLLM's choice
    "--max-num-seqs": {"choices": None, "nargs": None},
    "--enforce-eager": {"choices": None, "nargs": "0"},
    "--no-enforce-eager": {"choices": None, "nargs": "0"},
    "--trust-remote-code": {"choices": None, "nargs": "0"},
    "--scheduling-policy": {"choices": ["fcfs", "priority"], "nargs": None},
    "--seed": {"choices": None, "nargs": None},
    "--disable-log-stats": {"choices": None, "nargs": "0"},
    "--served-model-name": {"choices": None, "nargs": "+"},
    "--host": {"choices": None, "nargs": None},
    "--port": {"choices": None, "nargs": None},
}


def test_fallback_refuses_a_value_no_vllm_takes() -> None:
    found = vllm_flags.check_profile(profile("model: m\nkv_cache_dtype: fp9\n"), FALLBACK)
    assert len(found) == 1
    loc, message = found[0]
    assert loc == ("kv_cache_dtype",)
    assert message.startswith("got 'fp9' (did you mean fp8?): vLLM accepts auto, bfloat16, float16, fp8,")
    for field, bad in (("dtype", "float64"), ("quantization", "awk"), ("load_format", "dumy"),
                       ("tool_call_parser", "hermez")):
        text = f"model: m\n{field}: {bad}\n"
        if field == "tool_call_parser":
            text += "enable_auto_tool_choice: true\n"
        assert [loc for loc, _ in vllm_flags.check_profile(profile(text), FALLBACK)] == [(field,)]


def test_fallback_accepts_known_values_and_leaves_args_to_vllm() -> None:
    text = "model: m\ndtype: bfloat16\nkv_cache_dtype: fp8\nquantization: awq\nload_format: dummy\nargs:\n  bogus: 1\n"
    assert vllm_flags.check_profile(profile(text), FALLBACK) == []


def test_a_newer_vllms_choice_is_accepted_and_a_missing_one_refused() -> None:
    flags = runtime(BASE)
    assert vllm_flags.check_profile(profile("model: m\nkv_cache_dtype: fp9\n"), flags) == []
    found = vllm_flags.check_profile(profile("model: m\ndtype: half\n"), flags)
    assert found == [(("dtype",), "got 'half': vLLM 9.9.9 accepts auto, bfloat16")]


def test_args_flags_are_checked_against_the_runtimes_parser() -> None:
    flags = runtime(BASE)
    text = (
        "model: m\nargs:\n  bogus-flag: 1\n  sede: 4\n  scheduling-policy: fifo\n"
        "  disable-log-stats: 1\n  seed: [1, 2]\n"
    )
    found = dict(vllm_flags.check_profile(profile(text), flags))
    assert found == {
        ("args", "bogus-flag"): "vLLM 9.9.9 has no flag --bogus-flag: fix the name or remove the line",
        ("args", "sede"): "vLLM 9.9.9 has no flag --sede (did you mean seed?): fix the name or remove the line",
        ("args", "scheduling-policy"): "got 'fifo' (did you mean fcfs?): vLLM 9.9.9 accepts fcfs, priority",
        ("args", "disable-log-stats"): "--disable-log-stats is an on/off switch: write true or false",
        ("args", "seed"): "--seed takes one value, not a list",
    }


def test_typed_fields_this_vllm_lacks_are_named() -> None:
    flags = runtime(BASE)
    found = vllm_flags.check_profile(profile("model: m\nshutdown_timeout: 5\n"), flags)
    assert found == [(("shutdown_timeout",), "vLLM 9.9.9 has no flag --shutdown-timeout: fix the name or remove the line")]
    # a typed switch left off is not passed at all, so an older vLLM without --no- is fine
    assert vllm_flags.check_profile(profile("model: m\ntrust_remote_code: false\n"), flags) == []
    found = vllm_flags.check_profile(profile("model: m\nargs:\n  disable_log_stats: false\n"), flags)
    assert found == [(("args", "disable_log_stats"),
                      "--disable-log-stats is an on switch without an off form: remove the line to leave it off")]


def test_a_tool_parser_plugin_may_name_its_own_parser() -> None:
    text = "model: m\nenable_auto_tool_choice: true\ntool_call_parser: mine\nargs:\n  tool-parser-plugin: /x.py\n"
    assert vllm_flags.check_profile(profile(text), FALLBACK) == []


def test_reading_a_missing_runtime_falls_back_and_says_why(tmp_path: Path) -> None:
    flags = vllm_flags.read_runtime(str(tmp_path / "nope" / "python"), ("m",), tmp_path / "cache")
    assert not flags.from_runtime and flags.options is None
    assert flags.source == f"vllmtui's built-in list ({tmp_path / 'nope' / 'python'} does not exist)"
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    flags = vllm_flags.read_runtime(str(python), ("m",), tmp_path / "cache")
    assert flags.source == f"vllmtui's built-in list (no vLLM installed next to {python})"
