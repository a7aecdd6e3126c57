"""Why a probe request failed, in the user's words, with the fix. Pure functions of the
error, the server's answer, the probe target and the server's status: unit-tested on
recorded vLLM answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from vllmtui.probes.spec import ProbeTarget

TOOL_PARSER_FIELDS = "enable_auto_tool_choice: true` and `tool_call_parser: hermes"
PARSERS = "hermes, llama3_json, mistral, qwen3_coder, openai, pythonic, ..."


@dataclass(frozen=True)
class Explanation:
    """What failed (`error`) and what to do about it (`hint`)."""

    error: str
    hint: str = ""


def server_message(body: str) -> str:
    """The `error.message` of an OpenAI-style error body, else the body itself."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
        if isinstance(err, str):
            return err
    return body.strip()[:300]


def _profile(target: ProbeTarget) -> str:
    return f"the profile ({target.profile_path})" if target.profile_path else "the profile"


def explain_http(code: int, body: str, target: ProbeTarget, served: Sequence[str] = ()) -> Explanation:
    """Explain a non-200 answer: 401 (API key), 404 (model name), 400 (tool parser), others."""
    message = server_message(body)
    if code == 401:
        var = target.api_key_env
        if var is None:
            return Explanation(
                "401 Unauthorized: the server wants an API key",
                f"API key: set api_key_env in {_profile(target)} to the NAME of a variable"
                " holding the key, and export that variable",
            )
        if not target.api_key:
            return Explanation(
                f"401 Unauthorized: no API key sent ({var} is not set here)",
                f"API key: set {var} (export {var}=<the server's key>), the variable the"
                " profile's api_key_env names",
            )
        return Explanation(
            f"401 Unauthorized: the key in {var} was refused",
            f"API key: set {var} to the key the server was started with",
        )
    if code == 404 and ("does not exist" in message or "model" in message.lower()):
        names = ", ".join(served) if served else "(unknown)"
        fix = f"served_model_name: {served[0]}" if len(served) == 1 else "served_model_name"
        return Explanation(
            f"404: model {target.model!r} is not served here: {message}",
            f"the server serves: {names}. Set `{fix}` in {_profile(target)}"
            " (or probe with --model NAME)",
        )
    if code == 400 and ("--tool-call-parser" in message or "--enable-auto-tool-choice" in message):
        return Explanation(
            f"400: tool calls are not enabled on this server: {message}",
            f"add `{TOOL_PARSER_FIELDS}` (or your model's parser: {PARSERS}) to"
            f" {_profile(target)}, then restart the server",
        )
    if code == 400 and "max_tokens" in message:
        return Explanation(f"400: {message}", "lower generation.max_tokens in the profile")
    if code in (502, 503, 504):
        return Explanation(
            f"{code}: {message or 'server unavailable'}",
            "the engine may have died: `vllmtui status` and `vllmtui logs NAME` show why",
        )
    return Explanation(f"{code}: {message or httpx.codes.get_reason_phrase(code)}")


def explain_connect(exc: Exception, target: ProbeTarget, status: Any = None) -> Explanation:
    """Explain a request that got no answer. `status` (a fleet `ServerStatus`, optional)
    turns "connection refused" into "still starting: phase X", "crashed", "not running"."""
    where = target.base_url
    if isinstance(exc, httpx.ConnectTimeout):
        return Explanation(
            f"no connection to {where} within the connect timeout",
            "wrong host, a firewall, or a tunnel that is down",
        )
    if isinstance(exc, httpx.ReadTimeout):
        return Explanation(
            f"{where} accepted the request but sent nothing within the read timeout",
            "the server is busy or wedged: check `vllmtui status` and its log",
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        base = Explanation(f"{where} dropped the connection mid-answer ({exc})",
                           "the server may have crashed: `vllmtui status` shows it")
        return _with_status(base, target, status)
    if isinstance(exc, httpx.ConnectError):
        if target.tunnelled:
            base = Explanation(f"connection refused at {where} (through a tunnel)",
                               "is the tunnel up? `vllmtui status` lists tunnels")
        else:
            base = Explanation(f"connection refused at {where}: nothing listens there")
        return _with_status(base, target, status)
    return Explanation(f"request to {where} failed: {type(exc).__name__}: {exc}")


def _with_status(base: Explanation, target: ProbeTarget, status: Any) -> Explanation:
    if status is None:
        return base
    name = target.name
    state = getattr(status, "state", None)
    if state == "starting":
        phase = getattr(status, "phase_label", None) or getattr(status, "detail", "") or "starting"
        eta = getattr(status, "eta", None)
        when = f" (ready in about {eta:.0f} s)" if isinstance(eta, int | float) else ""
        return Explanation(f"server still starting: phase {phase}{when}",
                           f"wait until it is ready: `vllmtui start {name} --wait` or the TUI's table")
    if state == "stopped":
        return Explanation(f"{name} is not running ({base.error})", f"start it: `vllmtui start {name}`")
    if state in ("crashed", "exited"):
        failure = getattr(status, "failure", None)
        cause = getattr(failure, "line", None) or getattr(status, "detail", "") or state
        hint = getattr(failure, "hint", None) or f"`vllmtui logs {name}` shows why"
        return Explanation(f"{name} has {state}: {cause}", hint)
    if state == "stopping":
        return Explanation(f"{name} is stopping",
                           f"start it again when it has stopped: `vllmtui start {name}`")
    if state == "unhealthy":
        return Explanation(f"{name} is unhealthy: {getattr(status, 'detail', '')}",
                           base.hint or f"`vllmtui logs {name}` shows why")
    if state == "ready" and target.tunnelled:
        return Explanation(base.error, f"{name} itself is ready; the tunnel to it is not up")
    return base
