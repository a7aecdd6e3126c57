"""When a start pulls its model first (`servers.prepull`), and how its status reads the pull."""

from __future__ import annotations

import json
from pathlib import Path

from vllmtui.core.settings import Settings
from vllmtui.models.progress import Snapshot
from vllmtui.profiles.launch import resolve
from vllmtui.profiles.model import Profile
from vllmtui.servers import prepull
from vllmtui.servers.status import ServerStatus

COMMIT = "a" * 40


def step(tmp_path: Path, **fields: object) -> prepull.PullStep | None:
    env = {"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    env.update(fields.pop("env", {}))  # type: ignore[arg-type]
    profile = Profile(name="p", env=env, **fields)  # type: ignore[arg-type]
    settings = Settings(data_dir=tmp_path / "data")
    return prepull.pull_step(profile, settings, resolve(profile, settings))


def cache_entry(tmp_path: Path, repo: str, *files: str) -> None:
    root = tmp_path / "cache" / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    for name in files:
        (snap / name).write_text("{}")
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(COMMIT)


def test_a_hub_model_missing_from_the_cache_is_pulled_first(tmp_path: Path) -> None:
    found = step(tmp_path, model="org/model", revision="v1", hf_token_env="MY_TOKEN")
    assert found is not None and found.repo == "org/model"
    argv = list(found.argv)
    assert argv[1:3] == ["-m", "vllmtui.models.pull_step"]
    assert argv[argv.index("--revision") + 1] == "v1"
    assert argv[argv.index("--cache-dir") + 1] == str(tmp_path / "cache")
    assert argv[argv.index("--token-hint") + 1] == "MY_TOKEN" and "--offline-after" in argv
    assert not any("hf_" in a for a in argv)  # a token never goes on a command line
    spec = resolve(Profile(name="p", model="org/model"), Settings())
    wrapped = prepull.wrap(spec, found)
    assert wrapped.argv[len(found.argv)] == "--" and wrapped.argv[len(found.argv) + 1:] == spec.argv


def test_no_pull_step_when_none_is_needed(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    assert step(tmp_path, model=str(local)) is None
    assert step(tmp_path, model="demo:tiny") is None
    assert step(tmp_path, model="gpt2") is None  # a bare legacy name: vLLM's business
    assert step(tmp_path, model="org/model", offline=True) is None  # the offline check speaks
    assert step(tmp_path, model="org/model", env={"HF_HUB_OFFLINE": "1"}) is None
    cache_entry(tmp_path, "org/dummy", "config.json", "tokenizer.json")
    assert step(tmp_path, model="org/dummy", load_format="dummy") is None
    assert step(tmp_path, model="org/dummy") is not None  # its weights are missing
    found = step(tmp_path, model="org/other", offline=False)
    assert found is not None and "--offline-after" not in found.argv


def test_the_status_reads_the_download(tmp_path: Path) -> None:
    import time

    snap = Snapshot("downloading", "org/m", "main", 3_200_000_000, 15_200_000_000, rate=120e6, eta=100.0,
                    updated=time.time())
    (tmp_path / "pull.json").write_text(json.dumps(snap.to_json()))
    detail = prepull.pulling_detail(tmp_path)
    assert detail == "downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left"
    status = ServerStatus("p", "starting", phase=prepull.PHASE, detail=detail)
    assert status.phase_label == detail
    assert prepull.failed_detail(tmp_path) is None
    (tmp_path / "pull.json").write_text(json.dumps(Snapshot("failed", "org/m", "main", error="x").to_json()))
    assert prepull.pulling_detail(tmp_path) is None and prepull.failed_detail(tmp_path) == "download failed: x"
    assert prepull.pulling_detail(None) is None
