"""A start whose model is not in the cache: the pane pulls it from the hub STAND-IN (the files
of the demo model, served as a hub repo) with the real huggingface_hub client, the status says
`downloading ...`, then the real tiny vLLM (CPU) serves the pulled files and answers a chat."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.standin.hf_hub_standin import HubStandin, scan
from tests.support.helpers import ROOT, free_port, stop_vllm_server
from vllmtui.core.settings import Settings
from vllmtui.models.demo import ensure_demo_model
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.fleet import Fleet


@pytest.fixture
def demo_hub(vllm_runtime: Path, tmp_path: Path) -> Iterator[HubStandin]:
    demo = ensure_demo_model(Settings().models_dir / "tiny", "tiny", python=str(vllm_runtime))
    repo = tmp_path / "repo"
    shutil.copytree(demo, repo)
    (repo / "README.md").write_text("# the demo model, served as a hub repo\n")
    with HubStandin([scan("demo-org/tiny", repo)]) as hub:
        hub.rate = 8_000  # ~2.5 s for its 20 kB: the status shows the download
        yield hub


def test_start_pulls_then_serves(demo_hub: HubStandin, tmp_path: Path) -> None:
    from tests.support.helpers import VllmServer

    data = yaml.safe_load((ROOT / "profiles" / "tiny-cpu.yaml").read_text())
    data.pop("name", None)
    data["model"] = "demo-org/tiny"
    data["port"] = free_port()
    cache = tmp_path / "cache"
    data["env"] = {k: v for k, v in data["env"].items() if k != "HF_HUB_OFFLINE"}
    data["env"].update(HF_ENDPOINT=demo_hub.url, HF_HUB_CACHE=str(cache))
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    path = profiles / "pulled.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = Settings(profiles_dirs=(profiles,), state_dir=tmp_path / "state",
                        config_dir=tmp_path / "config", tmux_socket=f"vllmtui-e2e-pull-{data['port']}")
    loaded = load_profile_file(path)
    fleet = Fleet(settings)
    server = VllmServer("pulled", settings, loaded, f"http://127.0.0.1:{data['port']}")
    try:
        result = fleet.start(loaded, [loaded])
        seen: list[tuple[str, str]] = []
        final = fleet.wait_ready(loaded, timeout=300, on_change=lambda s: seen.append((s.state, s.detail)))
        log = (result.run_dir / "server.log").read_text(errors="replace")
        assert final.state == "ready", f"{seen}\n{log[-3000:]}"
        assert any(state == "starting" and detail.startswith("downloading ") for state, detail in seen), seen
        assert "vllmtui: pulled demo-org/tiny" in log
        snapshot = next((cache / "models--demo-org--tiny" / "snapshots").iterdir())
        assert sorted(p.name for p in snapshot.iterdir()) == [
            "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]
        reply = httpx.post(f"{server.base_url}/v1/chat/completions", timeout=60, json={
            "model": "tiny", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        assert reply.status_code == 200, reply.text
    finally:
        stop_vllm_server(server)
