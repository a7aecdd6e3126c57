"""The real CPU vLLM's own argument parser decides what a profile may say: `check` and
`start` refuse a value or flag that vLLM would refuse, naming file:line, before anything runs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.support.helpers import ROOT, free_port
from vllmtui.core.settings import Settings
from vllmtui.profiles import vllm_flags
from vllmtui.profiles.launch import runtime_flags
from vllmtui.profiles.loading import load_profile_file


def tiny_profile(profiles_dir: Path, name: str, extra_args: dict[str, object], **fields: object) -> Path:
    data = yaml.safe_load((ROOT / "profiles" / "tiny-cpu.yaml").read_text())
    data.update(fields, port=free_port())
    data["args"] = {**data.get("args", {}), **extra_args}
    path = profiles_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_runtimes_parser_is_read_and_cached(vllm_runtime: Path, profiles_dir: Path,
                                                settings: Settings) -> None:
    path = tiny_profile(profiles_dir, "tiny", {})
    flags = runtime_flags(load_profile_file(path).profile, settings)
    assert flags.from_runtime and flags.options is not None, flags.source
    assert flags.version and flags.source.startswith(f"vLLM {flags.version} in {vllm_runtime}")
    assert "--max-num-seqs" in flags.options and "--enforce-eager" in flags.options
    assert "fp8" in flags.values["kv_cache_dtype"] and "hermes" in flags.values["tool_call_parser"]
    cached = list((settings.data_dir / "cache" / "vllm-flags").glob("*.json"))
    assert cached, "the flags were not cached"
    vllm_flags._MEMO.read.clear()  # a new process: read from the cache, not the runtime
    again = runtime_flags(load_profile_file(path).profile, settings)
    assert again.options == flags.options


def test_check_and_start_refuse_what_vllm_would(
    vllm_runtime: Path, profiles_dir: Path, settings: Settings,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    path = tiny_profile(profiles_dir, "bad", {"bogus-flag": 1, "scheduling-policy": "fifo"},
                        kv_cache_dtype="fp9")
    lines = path.read_text().splitlines()

    def line_of(key: str) -> int:
        return next(i for i, text in enumerate(lines, 1) if text.strip().startswith(key + ":"))

    for verb in ("check", "start"):
        proc = run_cli(verb, "bad", timeout=240)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        out = proc.stdout + proc.stderr
        assert f"{path}:{line_of('kv_cache_dtype')}: kv_cache_dtype: got 'fp9' (did you mean fp8?)" in out
        assert f"{path}:{line_of('bogus-flag')}: args.bogus-flag: vLLM " in out
        assert "has no flag --bogus-flag" in out
        assert f"{path}:{line_of('scheduling-policy')}: args.scheduling-policy: got 'fifo'" in out
    assert not (settings.state_dir / "runs").exists()
    assert subprocess.run(["tmux", "-L", str(settings.tmux_socket), "ls"],
                          capture_output=True).returncode != 0  # no server was ever started
