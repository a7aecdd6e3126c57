"""Load generator and latency statistics, defined exactly as `vllm bench serve` defines them.

One `httpx.AsyncClient` (connections reused), streamed `/v1/completions` with `ignore_eos`,
random prompts made token-exact through the server's `/tokenize`. While a response streams,
the only per-chunk work is `append((perf_counter(), bytes))`; the SSE is parsed after the
request ends. Figures (see `calculate_stats`): TTFT = first chunk carrying a choice, ITL = gaps
between such chunks, E2EL = the last one, TPOT = (E2EL - TTFT) / (output tokens - 1) for outputs
longer than one token; throughputs over the level's duration; failed requests left out.
Every load loop is bounded: `num_prompts` requests and `max_duration` seconds per level.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from vllmtui.bench.stats import LevelResult, RequestResult, calculate_stats
from vllmtui.bench.transport import LeanTransport
from vllmtui.core.errors import UsageError, VllmtuiError


@dataclass(frozen=True)
class BenchOptions:
    """The user's choices (CLI flags, the TUI's bench form): the same prompts replayed at
    each concurrency level. `concurrency` None in the tuple means unlimited (then
    `request_rate` paces it)."""

    input_len: int = 128
    output_len: int = 64
    num_prompts: int = 50
    concurrency: tuple[int | None, ...] = (1,)
    request_rate: float = math.inf
    burstiness: float = 1.0
    warmups: int = 2
    seed: int = 0
    max_duration: float = 600.0

    def check(self) -> None:
        """Raise UsageError naming the option to fix."""
        if self.input_len < 1 or self.output_len < 1:
            raise UsageError("--input-len and --output-len must be at least 1")
        if self.num_prompts < 1:
            raise UsageError("--num-prompts must be at least 1")
        if any(c is not None and c < 1 for c in self.concurrency) or not self.concurrency:
            raise UsageError("--concurrency takes positive integers, e.g. --concurrency 1,4,16")
        if not self.request_rate > 0:
            raise UsageError("--request-rate must be > 0 (omit it for 'as fast as allowed')")
        if self.warmups < 0:
            raise UsageError("--warmups must be 0 or more")


@dataclass(frozen=True, kw_only=True)
class BenchConfig(BenchOptions):
    """One benchmark of one server: the options plus where and how to send."""

    base_url: str
    model: str
    request_timeout: float = 300.0
    api_key: str | None = None


@dataclass(frozen=True)
class BenchProgress:
    """Posted while a benchmark runs: `phase` is prompts | warmup | run | done."""

    phase: str
    level: int
    levels: int
    concurrency: int | None
    done: int
    total: int


ProgressFn = Callable[[BenchProgress], None]


def parse_stream(start: float, chunks: Sequence[tuple[float, bytes]], prompt_len: int) -> RequestResult:
    """Turn timestamped raw SSE bytes into a result. A message that carries `choices` is a
    token chunk (timestamped when its last byte arrived); one with `usage` gives the counts."""
    token_times: list[float] = []
    output_tokens = 0
    buffer = b""
    for stamp, data in chunks:
        buffer += data
        while b"\n\n" in buffer:
            message, buffer = buffer.split(b"\n\n", 1)
            message = message.strip()
            if not message or message.startswith(b":"):
                continue
            payload = message.removeprefix(b"data:").strip()
            if payload == b"[DONE]":
                continue
            try:
                doc = json.loads(payload)
            except ValueError:
                continue
            if doc.get("choices"):
                token_times.append(stamp)
            elif usage := doc.get("usage"):
                output_tokens = int(usage.get("completion_tokens") or 0)
                prompt_len = int(usage.get("prompt_tokens") or prompt_len)
    if not token_times:
        return RequestResult(False, prompt_len, start_time=start,
                             error="the stream ended without a token")
    itl = tuple(b - a for a, b in zip(token_times, token_times[1:], strict=False))
    return RequestResult(
        True, prompt_len, output_tokens, token_times[0] - start, itl, token_times[-1] - start, start
    )


def make_client(limits: httpx.Limits, timeout: httpx.Timeout, https: bool) -> httpx.AsyncClient:
    """The bench's one AsyncClient. For http:// servers it runs on `LeanTransport`
    (`bench.transport`): httpx's API with a fraction of httpcore's Python per message."""
    transport: httpx.AsyncBaseTransport = (
        httpx.AsyncHTTPTransport(limits=limits, trust_env=False) if https
        else LeanTransport(max_idle=limits.max_keepalive_connections))
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)


@dataclass(frozen=True)
class _Streamed:
    """A finished stream, not yet parsed: parsing waits until the level's clock has stopped,
    so that no JSON is decoded while other requests are streaming."""

    start: float
    chunks: list[tuple[float, bytes]]
    prompt_len: int

    def result(self) -> RequestResult:
        return parse_stream(self.start, self.chunks, self.prompt_len)


async def _request(client: httpx.AsyncClient, url: str, body: bytes,
                   headers: dict[str, str], prompt_len: int) -> RequestResult | _Streamed:
    perf = time.perf_counter
    chunks: list[tuple[float, bytes]] = []
    append = chunks.append
    start = perf()
    try:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            if response.status_code != 200:
                text = (await response.aread())[:200].decode(errors="replace")
                return RequestResult(False, prompt_len, start_time=start,
                                     error=f"HTTP {response.status_code}: {text}")
            async for data in response.aiter_raw():
                append((perf(), data))
    except httpx.HTTPError as exc:
        return RequestResult(False, prompt_len, start_time=start,
                             error=f"{type(exc).__name__}: {exc}"[:200])
    return _Streamed(start, chunks, prompt_len)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


async def make_prompts(client: httpx.AsyncClient, cfg: BenchConfig) -> list[str | list[int]]:
    """`num_prompts` random prompts of exactly `input_len` tokens as the server counts them
    (`/tokenize`). Text from random words is cut to the length in tokens, detokenized and
    re-tokenized; after a few tries that do not land exactly, the token ids themselves are
    the prompt (vLLM accepts a list of ids), so the length is always exact."""
    rng = random.Random(cfg.seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    headers = _headers(cfg.api_key)

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(cfg.base_url + path, json={"model": cfg.model, **body},
                                     headers=headers)
        if response.status_code != 200:
            raise VllmtuiError(f"{path} answered HTTP {response.status_code}: {response.text[:200]}")
        data: dict[str, Any] = response.json()
        return data

    async def one(words: str) -> str | list[int]:
        tokens: list[int] = (await post("/tokenize", {"prompt": words}))["tokens"]
        if not tokens:
            raise VllmtuiError(f"{cfg.base_url}/tokenize returned no tokens for a random text")
        while len(tokens) < cfg.input_len:
            tokens = tokens + tokens
        tokens = tokens[: cfg.input_len]
        for _ in range(4):
            text = (await post("/detokenize", {"tokens": tokens}))["prompt"]
            count = (await post("/tokenize", {"prompt": text}))["count"]
            if count == cfg.input_len:
                return str(text)
            if count > cfg.input_len:
                tokens = tokens[: max(1, cfg.input_len - (count - cfg.input_len))]
            else:
                tokens = tokens + tokens[: cfg.input_len - count]
        return tokens[: cfg.input_len]

    texts = [  # drawn in order from the seeded generator: the same seed, the same prompts
        " ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 8)))
                 for _ in range(cfg.input_len + 8))
        for _ in range(cfg.num_prompts)
    ]
    sem = asyncio.Semaphore(8)

    async def limited(words: str) -> str | list[int]:
        async with sem:
            return await one(words)

    return list(await asyncio.gather(*(limited(t) for t in texts)))


def _payload(cfg: BenchConfig, prompt: str | list[int]) -> dict[str, Any]:
    return {
        "model": cfg.model,
        "prompt": prompt,
        "max_tokens": cfg.output_len,
        "ignore_eos": True,
        "repetition_penalty": 1.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def run_level(client: httpx.AsyncClient, cfg: BenchConfig, prompts: Sequence[str | list[int]],
                    concurrency: int | None, on_done: Callable[[int], None] | None = None,
                    cancel: threading.Event | None = None) -> tuple[list[RequestResult], float]:
    """Send every prompt once, at most `concurrency` in flight, arrivals paced by
    `request_rate` (Poisson/gamma); requests still open after `max_duration` are cancelled
    and count as failed, as do those cut short by `cancel`. Returns the results and the
    level's duration."""
    url = cfg.base_url + "/v1/completions"
    headers = {**_headers(cfg.api_key), "Content-Type": "application/json"}
    sem = asyncio.Semaphore(concurrency) if concurrency else None
    rng = random.Random(cfg.seed + 1)
    finished = 0

    async def limited(body: bytes) -> RequestResult | _Streamed:
        nonlocal finished
        if sem is None:
            result = await _request(client, url, body, headers, cfg.input_len)
        else:
            async with sem:
                result = await _request(client, url, body, headers, cfg.input_len)
        finished += 1
        if on_done is not None:
            on_done(finished)
        return result

    bodies = [json.dumps(_payload(cfg, prompt)).encode() for prompt in prompts]  # before the clock
    start = time.perf_counter()
    deadline = start + cfg.max_duration
    tasks: list[asyncio.Task[RequestResult | _Streamed]] = []
    due = start
    for body in bodies:
        if math.isfinite(cfg.request_rate):
            while (wait := min(due, deadline) - time.perf_counter()) > 0:
                if cancel is not None and cancel.is_set():
                    break
                await asyncio.sleep(min(wait, 0.2))
            if time.perf_counter() >= deadline or (cancel is not None and cancel.is_set()):
                break
            theta = 1.0 / (cfg.request_rate * cfg.burstiness)
            due += rng.gammavariate(cfg.burstiness, theta)
        tasks.append(asyncio.create_task(limited(body)))
    pending: set[asyncio.Task[RequestResult | _Streamed]] = set(tasks)
    while pending and not (cancel is not None and cancel.is_set()):
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(left, 0.2) if cancel else left)
    why = "cancelled" if cancel is not None and cancel.is_set() else \
        f"still open after --max-duration {cfg.max_duration:g} s"
    duration = time.perf_counter() - start
    results: list[RequestResult] = []
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is None:
            done = task.result()
            results.append(done.result() if isinstance(done, _Streamed) else done)
        else:
            task.cancel()
            results.append(RequestResult(False, cfg.input_len, error=why))
    await asyncio.gather(*(t for t in tasks if not t.done()), return_exceptions=True)
    results += [RequestResult(False, cfg.input_len, error=f"not sent: {why}")] * (len(prompts) - len(tasks))
    return results, duration


async def run_bench_async(cfg: BenchConfig, progress: ProgressFn | None = None,
                          cancel: threading.Event | None = None) -> list[LevelResult]:
    """Make the prompts, then for each concurrency level: warm-ups, then the measured run.
    Setting `cancel` ends the run within ~0.2 s; the levels measured so far are returned."""
    cfg.check()
    levels = len(cfg.concurrency)
    # Idle connections kept: no more than the highest concurrency needs.
    cap = None if None in cfg.concurrency else max(c for c in cfg.concurrency if c is not None)
    limits = httpx.Limits(max_connections=cap, max_keepalive_connections=cap)
    timeout = httpx.Timeout(cfg.request_timeout, connect=10.0)

    def report(phase: str, level: int, conc: int | None, done: int, total: int) -> None:
        if progress is not None:
            progress(BenchProgress(phase, level, levels, conc, done, total))

    async with make_client(limits, timeout, cfg.base_url.startswith("https:")) as client:
        report("prompts", 0, cfg.concurrency[0], 0, cfg.num_prompts)
        try:
            prompts = await make_prompts(client, cfg)
        except httpx.HTTPError as exc:
            raise VllmtuiError(f"cannot reach {cfg.base_url}: {exc}") from exc
        out: list[LevelResult] = []
        for index, conc in enumerate(cfg.concurrency):
            if cancel is not None and cancel.is_set():
                break
            if cfg.warmups:
                report("warmup", index, conc, 0, cfg.warmups)
                warm = replace(cfg, request_rate=math.inf)
                await run_level(client, warm, [prompts[0]] * cfg.warmups, conc, cancel=cancel)
            report("run", index, conc, 0, len(prompts))

            def on_done(n: int, i: int = index, c: int | None = conc) -> None:
                report("run", i, c, n, len(prompts))

            results, duration = await run_level(client, cfg, prompts, conc, on_done, cancel)
            out.append(LevelResult(conc, cfg.request_rate, calculate_stats(results, duration)))
        report("done", levels - 1, cfg.concurrency[-1], len(prompts), len(prompts))
    return out


def run_bench(cfg: BenchConfig, progress: ProgressFn | None = None,
              cancel: threading.Event | None = None) -> list[LevelResult]:
    """Blocking wrapper (CLI, TUI worker thread): its own event loop. `progress` is called
    on that thread."""
    return asyncio.run(run_bench_async(cfg, progress, cancel))
