"""The probe's failure explanations: HTTP errors and refused connections, named in the
profile's own terms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vllmtui.probes.explain import explain_connect, explain_http
from vllmtui.probes.spec import ProbeTarget


def target(**kw: Any) -> ProbeTarget:
    base = {"name": "tiny", "base_url": "http://127.0.0.1:8100", "model": "tiny",
            "profile_path": Path("/p/tiny.yaml")}
    base.update(kw)
    return ProbeTarget(**base)


def test_401_names_the_variable() -> None:
    body = '{"error":"Unauthorized"}'
    unset = explain_http(401, body, target(api_key_env="TINY_KEY"))
    assert "API key: set TINY_KEY" in unset.hint
    wrong = explain_http(401, body, target(api_key_env="TINY_KEY", api_key="x"))
    assert "refused" in wrong.error and "TINY_KEY" in wrong.hint
    none = explain_http(401, body, target())
    assert "api_key_env" in none.hint


def test_404_lists_served_models() -> None:
    body = json.dumps({"error": {"message": "The model `nope` does not exist. Valid aliases: tiny.",
                                 "type": "NotFoundError", "param": "model", "code": 404}})
    exp = explain_http(404, body, target(model="nope"), ["tiny"])
    assert "'nope' is not served" in exp.error
    assert "served_model_name: tiny" in exp.hint and "--model" in exp.hint


@pytest.mark.parametrize(
    "message",
    [
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        'tool_choice="required" requires --tool-call-parser to be set',
    ],
)
def test_400_without_tool_parser_names_profile_fields(message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "BadRequestError", "code": 400}})
    exp = explain_http(400, body, target())
    assert "enable_auto_tool_choice: true" in exp.hint and "tool_call_parser: hermes" in exp.hint
    assert "/p/tiny.yaml" in exp.hint


class _Status:
    def __init__(self, state: str, phase_label: str | None = None, detail: str = "", eta: float | None = None):
        self.state, self.phase_label, self.detail, self.eta, self.failure = state, phase_label, detail, eta, None


def test_refused_explained_by_status() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    starting = explain_connect(refused, target(), _Status("starting", "loading weights", eta=12))
    assert starting.error == "server still starting: phase loading weights (ready in about 12 s)"
    stopped = explain_connect(refused, target(), _Status("stopped"))
    assert "not running" in stopped.error and "vllmtui start tiny" in stopped.hint
    assert "nothing listens" in explain_connect(refused, target()).error
    tunnel = explain_connect(refused, target(tunnelled=True), _Status("ready"))
    assert "tunnel" in tunnel.hint
    assert "read timeout" in explain_connect(httpx.ReadTimeout("t"), target()).error
