"""Launch specs: pure resolution of profile -> argv/env, and the preflight checks."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import (
    args_to_flags,
    preflight,
    register_runtime,
    registered_runtimes,
    resolve,
)
from vllmtui.profiles.loading import parse_profile_lines
from vllmtui.profiles.model import LoadedProfile


def load(text: str, name: str = "x") -> LoadedProfile:
    path = Path(f"/p/{name}.yaml")
    profile, warnings, lines = parse_profile_lines(text, path)
    return LoadedProfile(profile, path, warnings, lines)


def test_args_follow_vllm_config_rules() -> None:
    assert args_to_flags(
        {"enable-chunked-prefill": True, "enable_log_requests": False, "seed": 7,
         "api-server-count": None, "middleware": ["a", "b"],
         "hf-overrides": {"rope_scaling": {"type": "yarn"}}}
    ) == [
        "--enable-chunked-prefill", "--no-enable_log_requests", "--seed", "7",
        "--middleware", "a", "b", "--hf-overrides", '{"rope_scaling": {"type": "yarn"}}',
    ]


def test_default_runtime_is_vllm_serve_with_typed_flags(settings: Settings) -> None:
    spec = resolve(load(
        "model: org/m\nport: 8001\ngpus: [2, 3]\nmax_model_len: 8K\nenforce_eager: false\n"
        "enable_prefix_caching: false\nenable_auto_tool_choice: true\ntool_call_parser: hermes\n"
        "env: {HF_HOME: /data/hf, FLAG: true}\nargs: {seed: 1}\n").profile, settings)
    assert list(spec.argv) == [
        "vllm", "serve", "org/m", "--host", "127.0.0.1", "--port", "8001",
        "--tensor-parallel-size", "2", "--max-model-len", "8192", "--no-enable-prefix-caching",
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--seed", "1",
    ]
    assert spec.env == {"HF_HOME": "/data/hf", "FLAG": "1", "CUDA_VISIBLE_DEVICES": "2,3"}
    assert spec.secret_env == {}


def test_module_runtime_and_named_venv(settings: Settings, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\n")
    (venv / "bin" / "python").chmod(0o755)
    register_runtime(settings, "mine", str(venv))
    assert registered_runtimes(settings)["mine"] == str(venv)
    spec = resolve(load("model: /models/m\nruntime: {venv: '@mine', entrypoint: module}\n").profile, settings)
    assert list(spec.argv[:5]) == [str(venv / "bin/python"), "-m", "vllm.entrypoints.openai.api_server",
                                   "--model", "/models/m"]
    spec = resolve(load("model: m\nruntime: {venv: '@mine'}\n").profile, settings)
    assert list(spec.argv[:3]) == [str(venv / "bin/vllm"), "serve", "m"]
    spec = resolve(load("model: m\nruntime: {command: 'python3 -m vllm.entrypoints.openai.api_server'}\n").profile, settings)
    assert list(spec.argv[:5]) == ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "m"]


def test_unknown_named_runtime_says_how_to_register(settings: Settings) -> None:
    with pytest.raises(UsageError) as info:
        resolve(load("model: m\nruntime: {python: '@nope'}\n").profile, settings)
    assert str(info.value) == (
        "runtime.python: no runtime named '@nope' (known: @vllm-cpu);"
        " register one with `vllmtui runtime set nope /path/to/venv`"
    )


@pytest.mark.parametrize(("raw", "message"), [
    (b"\xff\xfe\x00bin", ":1: is UTF-16 text: save it as UTF-8"),
    (b"a: /x\n\x80\n", ":2: not UTF-8 text (byte 0x80"),
    (b"a: /x\na: /y\n", ":2: a: given twice (lines 1 and 2): keep one"),
    (b"- /x\n", ":1: expected 'name: /path/to/venv' lines"),
    (b"a: [1]\n", ":1: a: give the path of a venv or a python"),
])
def test_a_broken_runtimes_file_is_named_with_its_line(settings: Settings, raw: bytes, message: str) -> None:
    settings.runtimes_file.parent.mkdir(parents=True)
    settings.runtimes_file.write_bytes(raw)
    with pytest.raises(UsageError) as info:
        registered_runtimes(settings)
    assert f"{settings.runtimes_file}{message}" in str(info.value)


def test_missing_cwd_and_chat_template_file_are_errors(settings: Settings, tmp_path: Path) -> None:
    loaded = load(f"model: m\nruntime:\n  command: [x]\n  cwd: {tmp_path}/nope\nchat_template: {tmp_path}/t.jinja\n")
    found = {p.field: str(p) for p in preflight(loaded, settings, check_port=False)}
    assert found["runtime.cwd"] == f"error: {loaded.path}:4: runtime.cwd: {tmp_path}/nope is not a directory"
    assert found["chat_template"] == (
        f"error: {loaded.path}:5: chat_template: {tmp_path}/t.jinja is not a file"
        " (give a Jinja template file, or the template itself inline)")
    inline = load("model: m\nruntime: {command: [x]}\nchat_template: '{{ messages }}'\n")
    assert "chat_template" not in {p.field for p in preflight(inline, settings, check_port=False)}


def test_runtime_env_override(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLMTUI_RUNTIME_VLLM_CPU", "/opt/venv")
    assert registered_runtimes(settings)["vllm-cpu"] == "/opt/venv"


def test_demo_model_lives_in_the_data_dir(settings: Settings) -> None:
    spec = resolve(load("model: 'demo:tiny'\nruntime: {command: [x]}\n").profile, settings)
    assert spec.model_path == settings.models_dir / "tiny"
    assert spec.argv[1] == str(settings.models_dir / "tiny")


def test_secrets_never_in_argv_or_display(settings: Settings) -> None:
    spec = resolve(load("model: m\napi_key_env: MY_KEY\nargs: {hf-token: abc, 'ssl-keyfile': /k}\n").profile, settings)
    assert spec.secret_env == {"VLLM_API_KEY": "MY_KEY"}
    assert "abc" in spec.argv  # passed through to vLLM as written...
    assert "abc" not in spec.masked_argv() and "/k" not in spec.masked_argv()  # ...but never shown
    assert spec.masked_argv()[-4:] == ["--hf-token", "****", "--ssl-keyfile", "****"]
    assert "VLLM_API_KEY=$MY_KEY" in spec.display()


def test_preflight_finds_what_can_be_found(settings: Settings, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        loaded = load(f"model: {tmp_path}/missing\nport: {port}\napi_key_env: NO_SUCH_KEY_VAR\n"
                      "runtime: {command: [/nonexistent/vllm, serve]}\n")
        problems = {(p.level, p.field): p.message for p in preflight(loaded, settings)}
    assert problems[("error", "runtime")].startswith("/nonexistent/vllm not found: install vLLM there")
    assert problems[("error", "model")] == f"{tmp_path}/missing does not exist"
    assert problems[("error", "api_key_env")] == (
        "environment variable NO_SUCH_KEY_VAR is not set: export it before starting")
    assert problems[("error", "port")].startswith(f"127.0.0.1:{port} is already in use by pid {os.getpid()} (")


def test_preflight_two_profiles_on_one_port(settings: Settings) -> None:
    a = load(f"model: m\nport: 18999\nruntime: {{command: [{sys.executable}]}}\n", "a")
    b = load("model: m\nport: 18999\n", "b")
    problems = preflight(a, settings, [a, b], check_port=False)
    assert [str(p) for p in problems] == [
        "warning: port: profile 'b' (/p/b.yaml) uses port 18999 too: they cannot run together"]


def test_resolve_is_pure(settings: Settings) -> None:
    loaded = load("model: m\nport: 8123\n")
    assert resolve(loaded.profile, settings) == resolve(loaded.profile, settings)
    assert resolve(loaded.profile, replace(settings, state_dir=Path("/elsewhere"))) == resolve(
        loaded.profile, settings)
