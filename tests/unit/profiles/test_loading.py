"""Profiles: every rejection has a test with its exact message (file, line, field, fix)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vllmtui.core.errors import ProfileError, UsageError
from vllmtui.profiles.loading import (
    discover,
    find_profile,
    parse_profile,
    parse_set_options,
    port_clashes,
)

P = Path("/p/x.yaml")
REJECTIONS = [
    ("model: m\nmax_model_length: 4096\n",
     "/p/x.yaml:2: max_model_length: unknown field (did you mean max_model_len?)"),
    ("model: m\nruntime:\n  pyhton: /x\n",
     "/p/x.yaml:3: runtime.pyhton: unknown field (did you mean python?)"),
    ("model: m\nbanana: 1\n",
     "/p/x.yaml:2: banana: unknown field; vLLM flags without a typed field go under 'args:'"),
    ("port: 8000\n",
     "/p/x.yaml: model: is required: add 'model: <Hugging Face id or local directory>'"),
    ("model: m\nport: 70000\n",
     "/p/x.yaml:2: port: 70000 is not a TCP port: use 1024-65535 (e.g. 8000)"),
    ("model: m\nport: abc\n",
     "/p/x.yaml:2: port: Input should be a valid integer, unable to parse string as an integer"),
    ("model: m\nmax_model_len: 32q\n",
     "/p/x.yaml:2: max_model_len: must be a whole number such as 4096, 32k (32,000) or 32K (32,768)"),
    ("model: m\nmax_model_len: 1.5\n",
     "/p/x.yaml:2: max_model_len: 1.5 is not a whole number of tokens"),
    ("model: m\ngpu_memory_utilization: 1.5\n",
     "/p/x.yaml:2: gpu_memory_utilization: 1.5 is not a fraction: use a value in (0, 1], e.g. 0.9"),
    ("model: m\ndtype: fp9\n",
     "/p/x.yaml:2: dtype: got 'fp9': Input should be 'auto', 'half', 'float16', 'bfloat16', 'float' or 'float32'"),
    ("model: m\ntool_call_parser: hermes\n",
     "/p/x.yaml:2: tool_call_parser: has no effect without enable_auto_tool_choice: add 'enable_auto_tool_choice: true'"),
    ("model: m\nenable_auto_tool_choice: true\n",
     "/p/x.yaml:2: enable_auto_tool_choice: needs tool_call_parser too (e.g. tool_call_parser: hermes), or vLLM refuses to start"),
    ("model: m\napi_key_env: sk-abc123\n",
     "/p/x.yaml:2: api_key_env: must be the NAME of an environment variable holding the key (e.g. VLLM_API_KEY), never the key itself"),
    ("model: m\nargs:\n  api-key: x\n",
     "/p/x.yaml:3: args.api-key: is set by vllmtui: use the field 'api_key_env'"),
    ("model: m\nargs:\n  model: x\n",
     "/p/x.yaml:3: args.model: is set by vllmtui: use the field 'model'"),
    ("model: m\nargs:\n  max-model-len: 4096\n",
     "/p/x.yaml:3: args.max-model-len: has a typed field: write 'max_model_len:' at the top level"),
    ("model: m\ngpus: [0]\ntensor_parallel_size: 2\n",
     "/p/x.yaml:3: tensor_parallel_size: tensor_parallel_size x pipeline_parallel_size = 2 needs 2 GPUs but gpus lists 1: list more GPUs or lower the sizes"),
    ("model: m\ngpus: [0, 0]\n",
     "/p/x.yaml:2: gpus: an index is listed twice"),
    ("model: m\ngpus: 'a,b'\n",
     "/p/x.yaml:2: gpus: must be GPU indices such as [0, 1] or '0,1'"),
    ("model: m\nruntime:\n  venv: /a\n  python: /b\n",
     "/p/x.yaml:2: runtime: set only one of command, venv, python (got venv, python)"),
    ("model: m\nruntime:\n  command: []\n",
     "/p/x.yaml:2: runtime: command is empty: give the program that runs vLLM, e.g. [vllm, serve]"),
    ("model: m\nport: [1,\n",
     "/p/x.yaml:3: not valid YAML: expected the node content, but found '<stream end>'"),
    ("- a\n- b\n",
     "/p/x.yaml:1: a profile is a mapping of fields (model: ..., port: ...)"),
    ("model: m\nname: 'bad name!'\n",
     "/p/x.yaml:2: name: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    ("model: m\nname: tunnel-a\n",
     "/p/x.yaml:2: name: names starting with 'tunnel-' are kept for tunnels' tmux sessions: rename it"),
    ("model: m\nenv:\n  1BAD: x\n",
     "/p/x.yaml:2: env: '1BAD' is not a valid environment variable name"),
    ("model: m\nruntime:\n  entrypoint: exe\n",
     "/p/x.yaml:3: runtime.entrypoint: got 'exe': Input should be 'serve' or 'module'"),
    ("model: m\nstop:\n  timeout: 0\n",
     "/p/x.yaml:3: stop.timeout: Input should be greater than 0"),
    ("model: m\ngeneration:\n  top_p: 2\n",
     "/p/x.yaml:3: generation.top_p: Input should be less than or equal to 1"),
    ("model: m\ngeneration:\n  max_token: 2\n",
     "/p/x.yaml:3: generation.max_token: unknown field (did you mean max_tokens?)"),
]


@pytest.mark.parametrize(("text", "message"), REJECTIONS)
def test_rejection_names_file_line_field_and_fix(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, P)
    assert info.value.problems == [message]


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile("model: m\nprot: 1\ndtype: x\n", P)
    assert sorted(info.value.problems) == [
        "/p/x.yaml:2: prot: unknown field (did you mean port?)",
        "/p/x.yaml:3: dtype: got 'x': Input should be 'auto', 'half', 'float16', 'bfloat16', 'float' or 'float32'",
    ]


def test_name_defaults_to_file_stem_and_fields_parse() -> None:
    profile, warnings = parse_profile(
        "model: org/m\nmax_model_len: 32K\nmax_num_batched_tokens: 8k\ngpus: '0,1'\n", Path("/p/my-srv.yaml")
    )
    assert profile.name == "my-srv"
    assert profile.max_model_len == 32768
    assert profile.max_num_batched_tokens == 8000
    assert profile.gpus == [0, 1]
    assert profile.effective_tensor_parallel_size == 2
    assert warnings == ()


def test_explicit_name_wins() -> None:
    profile, _ = parse_profile("name: other\nmodel: m\n", Path("/p/file.yaml"))
    assert profile.name == "other"


def test_warnings_for_open_host_and_remote_code() -> None:
    _, warnings = parse_profile("model: m\nhost: 0.0.0.0\ntrust_remote_code: true\n", P)
    assert warnings == (
        "/p/x.yaml:2: host: 0.0.0.0 listens on every interface without an API key; set api_key_env to the NAME of a variable holding one",
        "/p/x.yaml:3: trust_remote_code: runs Python code shipped with the model; only use it for models you trust",
    )


def test_overrides_beat_the_file_and_errors_say_so() -> None:
    profile, _ = parse_profile("model: m\nport: 8000\n", P, {"port": 9000, "args.seed": 3})
    assert profile.port == 9000 and profile.args == {"seed": 3}
    with pytest.raises(ProfileError) as info:
        parse_profile("model: m\nport: 8000\n", P, {"port": 0})
    assert info.value.problems == [
        "/p/x.yaml:2 (or a --set override): port: 0 is not a TCP port: use 1024-65535 (e.g. 8000)"
    ]


def test_set_options_parse_yaml_scalars() -> None:
    assert parse_set_options(["port=9000", "enforce_eager=true", "model=a/b", "args.x=[1, 2]"]) == {
        "port": 9000, "enforce_eager": True, "model": "a/b", "args.x": [1, 2]}
    with pytest.raises(UsageError, match="write it as key=value"):
        parse_set_options(["port"])


def test_lookup_order_first_directory_wins(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "srv.yaml").write_text("model: first\n")
    (second / "srv.yaml").write_text("model: second\n")
    (second / "other.yaml").write_text("model: o\nport: 8001\n")
    s = replace(settings, profiles_dirs=(first, second))
    assert find_profile(s, "srv").profile.model == "first"
    assert find_profile(s, "other").profile.port == 8001
    with pytest.raises(UsageError, match=r"no profile named 'sr'.*did you mean srv\?"):
        find_profile(s, "sr")


def test_env_dirs_are_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmtui.core.settings import Settings

    d = tmp_path / "envdir"
    d.mkdir()
    (d / "envprof.yaml").write_text("model: m\n")
    monkeypatch.setenv("VLLMTUI_PROFILES", str(d))
    monkeypatch.setenv("VLLMTUI_CONFIG_DIR", str(tmp_path / "cfg"))
    s = Settings.from_env(["/nonexistent"])
    assert s.profiles_dirs[:2] == (Path("/nonexistent"), d)
    assert s.profiles_dirs[2] == tmp_path / "cfg" / "profiles"
    assert s.profiles_dirs[3] == Path(os.getcwd()) / "profiles"
    assert find_profile(s, "envprof").profile.name == "envprof"


def test_discover_keeps_broken_profiles_and_port_clashes(profiles_dir: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (profiles_dir / "a.yaml").write_text("model: m\nport: 8000\n")
    (profiles_dir / "b.yaml").write_text("model: m\nport: 8000\n")
    (profiles_dir / "bad.yaml").write_text("model: m\nprot: 1\n")
    good, broken = discover(settings)
    assert [g.profile.name for g in good] == ["a", "b"]
    assert [b.name for b in broken] == ["bad"]
    assert port_clashes(good) == {"a": ["b"], "b": ["a"]}
    with pytest.raises(ProfileError, match="did you mean port"):
        find_profile(settings, "bad")


def test_every_shipped_profile_validates() -> None:
    from dataclasses import replace

    from vllmtui.core.settings import Settings

    root = Path(__file__).resolve().parents[3] / "profiles"  # the checkout
    good, broken = discover(replace(Settings(), profiles_dirs=(root,)))
    assert broken == []
    names = {g.profile.name for g in good}
    assert {"tiny-cpu", "qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "gpt-oss-20b",
            "llama-3.3-70b-awq-tp2", "phi-3-mini", "qwen3-30b-a3b-fp8-ep8"} <= names
    assert port_clashes(good) == {}
