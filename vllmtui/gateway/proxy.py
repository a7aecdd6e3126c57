"""The gateway's data plane (aiohttp: docs/gateway-engine.md says why): one OpenAI endpoint
routing each request by its `model` to the server that serves it, streaming chunk by chunk;
its own /health, /metrics, /v1/models and /gateway/state.

A request for a model whose server is not ready waits for the controller to bring it up
(start, wake, or a start under way); when that fails the client gets an OpenAI-style error
(503 with the cause and Retry-After), never a hang. A client that goes away cancels its
handler (aiohttp's handler cancellation), which closes the backend connection: vLLM then
aborts the request instead of generating for nobody.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from .control import Controller, Route
from .errors import MANAGED, GatewayUnavailable

# not forwarded either way (RFC 9110 hop-by-hop), plus what the gateway sets itself
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length", "authorization",
})
# vLLM's own endpoints outside /v1 that name a model (tokenize, pooling, scoring)
ROOT_ROUTED = ("/tokenize", "/detokenize", "/pooling", "/score", "/rerank", "/classify",
               "/v2/rerank", "/invocations")
OPEN_PATHS = frozenset({"/health"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def openai_error(status: int, message: str, code: str, kind: str | None = None,
                 retry_after: int | None = None) -> web.Response:
    """An error the way the OpenAI API writes one (what every OpenAI client understands)."""
    kind = kind or ("invalid_request_error" if status < 500 else "service_unavailable")
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response(body, status=status, headers=headers)


class Gateway:
    """The aiohttp application around a Controller."""

    def __init__(self, controller: Controller, session: aiohttp.ClientSession, key: str | None):
        self.controller = controller
        self.session = session
        self.key = key
        self.metrics = controller.metrics
        self.max_body = int(controller.config.max_body_mb * 1024 * 1024)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=self.max_body)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/gateway/state", self.state)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model:.+}", self.model)
        app.router.add_route("*", "/v1/{tail:.*}", self.proxy)
        for path in ROOT_ROUTED:
            app.router.add_post(path, self.proxy)
        return app

    # ------------------------------------------------------------ the gateway's own

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.key and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            scheme, _, token = given.partition(" ")
            good = hmac.compare_digest(token.strip().encode(), self.key.encode())
            if scheme.lower() != "bearer" or not good:
                return openai_error(401, "the gateway needs its API key: send `Authorization: Bearer"
                                    " <key>` (the key is in the variable gateway.yaml's api_key_env names)",
                                    "invalid_api_key", "authentication_error")
        return await handler(request)

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "models": len(self.controller.profiles)})

    async def prometheus(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.text(), content_type="text/plain",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.controller.state())

    def _model_entry(self, name: str) -> dict[str, Any]:
        loaded = self.controller.profiles[name]
        status = self.controller.status.get(name)
        p = loaded.profile
        return {
            "id": p.model_name, "object": "model", "owned_by": "vllmtui",
            "created": int(status.started) if status and status.started else int(self.controller.started_at),
            "root": p.model, "max_model_len": p.max_model_len,
            "state": status.state if status else "unknown", "profile": name,
            "managed": bool(status and status.managed_by == MANAGED),
        }

    async def models(self, _request: web.Request) -> web.Response:
        data = [self._model_entry(name) for name in self.controller.profiles]
        return web.json_response({"object": "list", "data": data})

    async def model(self, request: web.Request) -> web.Response:
        loaded = self.controller.route_of(request.match_info["model"])
        if loaded is None:
            return self._unknown(request.match_info["model"])
        return web.json_response(self._model_entry(loaded.profile.name))

    def _unknown(self, model: str) -> web.Response:
        known = sorted({p.profile.model_name for p in self.controller.profiles.values()})
        listed = ", ".join(known) if known else "none (gateway.yaml `profiles:` names none that exist)"
        self.metrics.error(model[:100], "unknown_model")
        return openai_error(404, f"the model {model!r} is not served by this gateway; it serves: {listed}"
                            " (GET /v1/models lists them with their state)", "model_not_found")

    # ------------------------------------------------------------ routing

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.read()
        model, data = _model_of(body, request)
        if model is None:
            return openai_error(400, "the request names no model: send a JSON body with `model`"
                                " (GET /v1/models lists the models this gateway serves)", "model_required")
        loaded = self.controller.route_of(model)
        if loaded is None:
            return self._unknown(model)
        if data is not None and model != loaded.profile.model_name:
            # asked by model id or profile name: vLLM answers only to its served name
            body = json.dumps({**data, "model": loaded.profile.model_name}).encode()
        route = self.controller.try_acquire(loaded)
        if route is None:
            waited = time.perf_counter()
            try:
                route = await self.controller.acquire(loaded)
            except GatewayUnavailable as exc:
                self.metrics.of(loaded.profile.model_name).requests += 1
                self.metrics.requests.labels(loaded.profile.model_name, request.path, str(exc.status)).inc()
                return openai_error(exc.status, exc.message, exc.code, retry_after=exc.retry_after)
            self.metrics.start_wait.labels(route.model).observe(time.perf_counter() - waited)
        return await self._forward(request, body, loaded.profile.name, route, arrived)

    async def _forward(self, request: web.Request, body: bytes, name: str, route: Route,
                       arrived: float) -> web.StreamResponse:
        """Send the request to its server and the answer back (held: `route` counts it in
        flight until the answer is over)."""
        model = route.model
        self.metrics.began(model)
        status, error, held = 502, None, True
        try:
            try:
                upstream = await self._send(request, body, route)
            except aiohttp.ClientConnectorError:
                # nothing was sent: the server went away since the last poll; bring it up again
                self.controller.lost(name)
                self.controller.release(name)
                held = False
                route = await self.controller.acquire(self.controller.profiles[name])
                held = True
                upstream = await self._send(request, body, route)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                # a pooled connection the server had closed (nothing answered): once more, afresh
                upstream = await self._send(request, body, route)
            async with upstream:
                status = upstream.status
                if status >= 500:
                    error = "backend_error"
                return await self._answer(request, upstream, model, arrived)
        except GatewayUnavailable as exc:
            status, error = exc.status, "backend_unavailable"
            return openai_error(exc.status, exc.message, exc.code, retry_after=exc.retry_after)
        except aiohttp.ClientError as exc:
            error = "backend_unreachable"
            self.controller.lost(name)
            return openai_error(502, f"{model}: the server did not answer ({exc or type(exc).__name__});"
                                f" `vllmtui logs {name}` shows why", "backend_unreachable", retry_after=5)
        except asyncio.CancelledError:
            status, error = 499, "client_gone"  # the client left: its backend request is closed
            raise
        finally:
            if held:
                self.controller.release(name)
            self.metrics.ended(model, request.path, status, error)

    async def _send(self, request: web.Request, body: bytes, route: Route) -> aiohttp.ClientResponse:
        return await self.session.request(request.method, route.url + request.path_qs, data=body,
                                          headers=_upstream_headers(request, route))

    async def _answer(self, request: web.Request, upstream: aiohttp.ClientResponse, model: str,
                      arrived: float) -> web.StreamResponse:
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        streamed = (upstream.headers.get("Content-Type", "").startswith("text/event-stream")
                    or upstream.content_length is None)
        if not streamed:
            data = await upstream.read()
            self.metrics.first_byte(model, time.perf_counter() - arrived)
            return web.Response(body=data, status=upstream.status, headers=headers)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        first = True
        async for chunk in upstream.content.iter_any():
            if first:
                self.metrics.first_byte(model, time.perf_counter() - arrived)
                first = False
            await response.write(chunk)
        await response.write_eof()
        return response


def _model_of(body: bytes, request: web.Request) -> tuple[str | None, dict[str, Any] | None]:
    """The `model` a request names (its JSON body's, else `?model=`), and the parsed body."""
    data: dict[str, Any] | None = None
    if body:
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None, None
        data = parsed if isinstance(parsed, dict) else None
        value = data.get("model") if data is not None else None
    else:
        value = request.query.get("model")
    return (value if isinstance(value, str) and value else None), data


def _upstream_headers(request: web.Request, route: Route) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    if route.api_key:
        headers["Authorization"] = f"Bearer {route.api_key}"
    return headers
