"""A real gateway process (`gateway up`: tmux session vllmtui-gateway) in front of the
OpenAI STAND-IN servers (tests/standin/openai_standin.py, with the sleep endpoints vLLM's CPU
build lacks), all on the test's own tmux server."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.helpers import ROOT, free_port
from vllmtui.core.settings import Settings
from vllmtui.gateway.manage import gateway_down, gateway_up

OPENAI_STANDIN = ROOT / "tests" / "standin" / "openai_standin.py"


@pytest.fixture
def backend_profile(write_profile: Callable[..., Path]) -> Callable[..., Path]:
    """A profile that runs the OpenAI STAND-IN (model NAME-model) on a free port."""

    def write(name: str, env: dict[str, str] | None = None, **fields: object) -> Path:
        base: dict[str, object] = {
            "model": f"{name}-model",
            "port": free_port(),
            "runtime": {"command": [sys.executable, str(OPENAI_STANDIN)]},
            "env": {"STANDIN_DELAY": "0.2", **(env or {})},
            "stop": {"timeout": 3, "term_timeout": 2},
        }
        base.update(fields)
        return write_profile(name, **base)

    return write


@pytest.fixture
def gateway_config(settings: Settings) -> Callable[..., int]:
    """Write gateway.yaml (a free port unless given); returns the port."""

    def write(**fields: object) -> int:
        fields.setdefault("port", free_port())
        fields.setdefault("idle_check", 0.5)
        settings.config_dir.mkdir(parents=True, exist_ok=True)
        (settings.config_dir / "gateway.yaml").write_text(yaml.safe_dump(fields))
        return int(fields["port"])  # type: ignore[call-overload]

    return write


@pytest.fixture
def gateway(settings: Settings, gateway_config: Callable[..., int]) -> Iterator[Callable[..., str]]:
    """Start the real gateway (after the profiles and gateway.yaml are written); yields a
    function that starts it and returns its origin (http://127.0.0.1:PORT)."""

    def up(**fields: object) -> str:
        port = gateway_config(**fields)
        status = gateway_up(settings)
        assert status.state == "up", status
        return f"http://127.0.0.1:{port}"

    yield up
    gateway_down(settings)


def chat(origin: str, model: str, key: str | None = None, timeout: float = 60.0, **extra: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(f"{origin}/v1/chat/completions", json=body, headers=headers, timeout=timeout)


def stats(port: int) -> dict[str, object]:
    return httpx.get(f"http://127.0.0.1:{port}/standin/stats", timeout=5).json()  # type: ignore[no-any-return]


def port_of(path: Path) -> int:
    return int(yaml.safe_load(path.read_text())["port"])
