"""STAND-IN for a vLLM OpenAI server, for the gateway's tests and benchmark: answers at once
(the "zero-time" backend), streams SSE chunk by chunk, counts requests that a client
abandoned mid-stream, and implements vLLM's sleep-mode endpoints, which the CPU build of
vLLM lacks (sleep mode needs CUDA): `POST /sleep?level=N`, `POST /wake_up`,
`GET /is_sleeping`. Like a real vLLM, a request sent while it sleeps hangs until a wake.

It is NOT vLLM: real routing is also tested against the real tiny vLLM (CPU).

Usage: python openai_standin.py [MODEL] --port P [--host H] [--served-model-name NAME]
Environment: STANDIN_DELAY (seconds before it listens), STANDIN_CHUNKS (stream chunks, 3),
STANDIN_CHUNK_DELAY (seconds between chunks, 0), STANDIN_MODE: ok | crash-oom (fails to
start, with vLLM's out-of-memory lines) | crash-after (exits 1 with a fatal error
STANDIN_CRASH_AFTER seconds after ready); STANDIN_SLEEP=1 enables the sleep endpoints;
STANDIN_TOOL_ARGS: the JSON arguments of the tool call a streamed chat with `tools` gets (a
valid call, which random weights seldom make; once a tool result comes back it answers
"The tool said: RESULT"); STANDIN_TOOL_FINISH: that call's finish_reason (tool_calls; `length`
for one cut off at max_tokens). Like vLLM 0.26, a request whose history holds a tool call
with arguments that are not JSON gets a 400 (`Unterminated string starting at ...`);
VLLM_API_KEY: the key it requires (like `vllm serve --api-key`).
GET /standin/stats: {"requests", "aborted", "active", "sleeping", "sleeps", "wakes", "auth"}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from aiohttp import web


def arg(name: str, default: str) -> str:
    argv = sys.argv[1:]
    return argv[argv.index(name) + 1] if name in argv else default


def _unparsable_tool_arguments(messages: list) -> str | None:  # type: ignore[type-arg]
    """What vLLM 0.26 answers 400 with: the history's tool-call arguments, parsed as JSON."""
    for message in messages:
        for call in (message.get("tool_calls") or []) if isinstance(message, dict) else []:
            try:
                json.loads((call.get("function") or {}).get("arguments") or "{}")
            except ValueError as exc:
                return str(exc)
    return None


def log(proc: str, level: str, msg: str) -> None:
    print(f"({proc} pid={os.getpid()}) {level} {time.strftime('%m-%d %H:%M:%S')} [standin.py:1] {msg}",
          flush=True)


def main() -> int:  # noqa: C901 - one stand-in server, its handlers inline
    mode = os.environ.get("STANDIN_MODE", "ok")
    host = arg("--host", "127.0.0.1")
    port = int(arg("--port", "8000"))
    model = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else arg("--model", "standin")
    served = arg("--served-model-name", model)
    chunks = int(os.environ.get("STANDIN_CHUNKS", "3"))
    chunk_delay = float(os.environ.get("STANDIN_CHUNK_DELAY", "0"))
    key = os.environ.get("VLLM_API_KEY")
    sleep_mode = os.environ.get("STANDIN_SLEEP") == "1"
    stats = {"requests": 0, "aborted": 0, "active": 0, "sleeping": False, "sleeps": 0, "wakes": 0,
             "auth": 0, "last_authorization": None, "last_model": None}
    awake = asyncio.Event()
    awake.set()

    log("APIServer", "INFO", "vLLM API server version 0.0.0-standin")
    log("APIServer", "INFO", f"non-default args: {{'model': '{model}', 'port': {port}}}")
    time.sleep(float(os.environ.get("STANDIN_DELAY", "0.2")))
    if mode == "crash-oom":
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.", flush=True)
        log("EngineCore", "ERROR", "EngineCore failed to start.")
        print("RuntimeError: Engine core initialization failed. See root cause above.", flush=True)
        return 1

    @web.middleware
    async def auth(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path.startswith("/v1"):
            stats["last_authorization"] = request.headers.get("Authorization")
        if key and request.path.startswith("/v1") and request.headers.get("Authorization") != f"Bearer {key}":
            stats["auth"] += 1
            return web.json_response({"error": {"message": "Unauthorized"}}, status=401)
        return await handler(request)

    async def health(_r: web.Request) -> web.Response:
        return web.Response(text="")

    async def models(_r: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": served, "object": "model", "root": model, "max_model_len": 1024}]})

    async def the_stats(_r: web.Request) -> web.Response:
        return web.json_response(stats)

    async def generate(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        await awake.wait()  # a sleeping vLLM does not refuse a request: it hangs
        stats["requests"] += 1
        stats["last_model"] = body.get("model")
        stream = bool(body.get("stream"))
        kind = request.path.rsplit("/", 1)[-1]
        if kind == "embeddings":
            return web.json_response({"object": "list", "model": served,
                                      "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]})
        text = f"standin {served} says hi"
        messages = body.get("messages") or [{}]
        broken = _unparsable_tool_arguments(messages)
        if broken:
            return web.json_response({"error": {"message": broken, "type": "BadRequestError", "param": None,
                                                "code": 400}}, status=400)
        if body.get("tools") and request.path.endswith("chat/completions") and messages[-1].get("role") == "tool":
            text = f"The tool said: {messages[-1].get('content')}"  # the result came back: answer with it
        elif body.get("tools") and request.path.endswith("chat/completions") and stream:
            return await tool_call(request, body)
        if not stream:
            if kind == "completions" and "chat" not in request.path:
                choice = {"index": 0, "text": text, "finish_reason": "stop"}
            else:
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return web.json_response({"id": "cmpl-standin", "object": "chat.completion", "model": served,
                                      "choices": [choice],
                                      "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        stats["active"] += 1
        try:
            pieces = [text] if text.startswith("The tool said") else [f"tok{i} " for i in range(chunks)]
            for piece in pieces:
                delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                chunk = {"id": "cmpl-standin", "object": "chat.completion.chunk", "model": served,
                         "choices": [delta]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if chunk_delay:
                    await asyncio.sleep(chunk_delay)
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 3, "completion_tokens": chunks, "total_tokens": 3 + chunks}
                await response.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            stats["aborted"] += 1
            log("APIServer", "INFO", "request aborted: the client went away")
            raise
        finally:
            stats["active"] -= 1
        return response

    async def tool_call(request: web.Request, body: dict) -> web.StreamResponse:  # type: ignore[type-arg]
        """A streamed call of the named tool (else the first offered) with STANDIN_TOOL_ARGS,
        its arguments in two pieces, the way vLLM's parsers stream them."""
        choice = body.get("tool_choice")
        name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
        name = name or body["tools"][0]["function"]["name"]
        args = os.environ.get("STANDIN_TOOL_ARGS", "{}")
        half = len(args) // 2
        pieces = [{"index": 0, "id": "call_standin", "type": "function",
                   "function": {"name": name, "arguments": args[:half]}},
                  {"index": 0, "function": {"arguments": args[half:]}}]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            chunk = {"id": "cmpl-standin", "object": "chat.completion.chunk", "model": served,
                     "choices": [{"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {"id": "cmpl-standin", "object": "chat.completion.chunk", "model": served,
               "choices": [{"index": 0, "delta": {},
                            "finish_reason": os.environ.get("STANDIN_TOOL_FINISH", "tool_calls")}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}}
        await response.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def sleep(request: web.Request) -> web.Response:
        if not sleep_mode:
            return web.Response(status=404)
        level = int(request.query.get("level", "1"))
        awake.clear()
        stats["sleeping"] = True
        stats["sleeps"] += 1
        log("APIServer", "INFO", f"sleep level {level}")
        return web.Response(text="")

    async def wake(_r: web.Request) -> web.Response:
        if not sleep_mode:
            return web.Response(status=404)
        await asyncio.sleep(0.1)  # a real wake takes 0.4-0.7 s on an H200
        awake.set()
        stats["sleeping"] = False
        stats["wakes"] += 1
        return web.Response(text="")

    async def is_sleeping(_r: web.Request) -> web.Response:
        if not sleep_mode:
            return web.Response(status=404)
        return web.json_response({"is_sleeping": stats["sleeping"]})

    async def crash_later(_app: web.Application) -> None:
        async def crash() -> None:
            await asyncio.sleep(float(os.environ.get("STANDIN_CRASH_AFTER", "1")))
            print("RuntimeError: CUDA error: an illegal memory access was encountered", flush=True)
            log("EngineCore", "ERROR", "EngineCore encountered a fatal error.")
            os._exit(1)
        asyncio.get_running_loop().create_task(crash())

    app = web.Application(middlewares=[auth])
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/standin/stats", the_stats)
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"):
        app.router.add_post(path, generate)
    app.router.add_post("/sleep", sleep)
    app.router.add_post("/wake_up", wake)
    app.router.add_get("/is_sleeping", is_sleeping)
    if mode == "crash-after":
        app.on_startup.append(crash_later)
    log("APIServer", "INFO", f"Starting vLLM server on http://{host}:{port}")

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        print("INFO:     Application startup complete.", flush=True)  # like vLLM: once it listens
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        print("[shutdown] SIGINT received", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
