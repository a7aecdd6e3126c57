"""The gateway process (`python -m vllmtui.gateway`, run by `vllmtui gateway up` in the tmux
session `vllmtui-gateway`): its settings come from the VLLMTUI_* variables the launcher
passed, its config from gateway.yaml; it serves until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import aiohttp
from aiohttp import web

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings

from .control import Controller
from .manage import gateway_key, load_checked, settings_from_env
from .proxy import Gateway


async def serve(settings: Settings) -> int:
    loaded = load_checked(settings)
    config = loaded.config
    key = gateway_key(loaded)
    # idle pooled connections kept 4 s: below vLLM's 5 s keep-alive, so none is stale when reused
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=4)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=config.request_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                     trust_env=False) as session:
        controller = Controller(settings, config)
        await controller.start(session)
        runner = web.AppRunner(Gateway(controller, session, key).app(), handler_cancellation=True,
                               access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
        await site.start()
        names = ", ".join(p.profile.model_name for p in controller.profiles.values()) or "none"
        controller.note(f"gateway serving at {config.base_url} ({'key required' if key else 'no key'});"
                        f" models: {names}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        controller.note("gateway stopping (the servers keep running)")
        await runner.cleanup()
        await controller.close()
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stdout)
    settings = settings_from_env()
    try:
        return asyncio.run(serve(settings))
    except VllmtuiError as exc:
        print(f"vllmtui gateway: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        print(f"vllmtui gateway: cannot serve: {exc}", file=sys.stderr, flush=True)
        return 1
