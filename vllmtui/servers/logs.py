"""Log files: tail by byte offset, clean terminal output, recognise vLLM's phases and failures.

A log can be gigabytes: nothing here reads a whole file. Readers seek to an offset and
read forward, or read backwards from the end in blocks.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]")
PREFIX_RE = re.compile(
    r"^\((?P<proc>[A-Za-z_]+)(?: [A-Za-z_]+)* pid=(?P<pid>\d+)\)\s+"
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)?"
)
LEVEL_RE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback \(most recent call last\)|Error:")


def clean_line(raw: str) -> str:
    """One display line: ANSI codes removed, a tqdm `\\r` redraw collapsed to its last state."""
    text = raw.rstrip("\r\n")
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return ANSI_RE.sub("", text)


def is_problem_line(line: str) -> bool:
    """Warnings and errors (for the TUI's filter)."""
    return bool(LEVEL_RE.search(line))


# ---------------------------------------------------------------- phases

@dataclass(frozen=True)
class Phase:
    key: str
    label: str
    pattern: re.Pattern[str]


# In start order. The last phase whose pattern has been seen is the current one.
PHASES: tuple[Phase, ...] = (
    Phase("importing", "importing", re.compile(r"vLLM API server version|non-default args")),
    Phase(
        "loading",
        "loading weights",
        # "Starting to load model" (0.30+ and CPU), "Loading model from scratch" (0.26 V2 runner)
        re.compile(
            r"Starting to load model|Loading model from scratch|Loading weights|Loading safetensors"
            r"|Loading pt checkpoint"
        ),
    ),
    Phase(
        "profiling",
        "profiling / KV cache",
        re.compile(
            r"Model loading took|Memory profiling takes|Available KV cache memory|KV cache size:"
        ),
    ),
    Phase(
        "compiling",
        "compiling / CUDA graphs",
        re.compile(
            r"torch\.compile takes|torch\.compile took|Dynamo bytecode transform|Compiling a graph"
            r"|Capturing CUDA graph|Graph capturing"
        ),
    ),
    Phase(
        "api",
        "starting API server",
        re.compile(r"init engine \(profile|Starting vLLM (?:API )?server on|Available routes are"),
    ),
    Phase("ready", "ready", re.compile(r"Application startup complete\.")),
)
PHASE_LABELS = {p.key: p.label for p in PHASES}


def phase_of(line: str) -> str | None:
    """The start phase a log line marks, if any (the latest phase wins)."""
    for phase in reversed(PHASES):
        if phase.pattern.search(line):
            return phase.key
    return None


# ---------------------------------------------------------------- failures
# How root causes rank (lower wins; among equals the first in the log wins, see LogState.feed).
ARGS = 0  # vLLM refused its command line (argparse): nothing else ran
SPECIFIC = 10  # a known cause, with a hint naming what to change
REQUEST = 15  # a known cause that failed one request; the server lived on
EXCEPTION = 20  # an exception's own message (`ValueError: ...`): the cause, not recognised
WRAPPER = 30  # "Engine core initialization failed", EngineDeadError: the reason is elsewhere
GENERIC = 40  # an ERROR line saying that something failed


@dataclass(frozen=True)
class Failure:
    """A recognised root cause: the line it was found on and a hint for the user. `rank`
    orders causes (lower wins: argparse errors, then specific causes, ..., a bare ERROR
    line); it takes no part in equality."""

    key: str
    line: str
    hint: str
    rank: int = field(default=GENERIC, compare=False, repr=False)


Hint = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class _Cause:
    key: str
    # literal parts of `pattern`, one of which any line it matches holds: `in` tests are far
    # cheaper than a regex search, and most lines hold none (tests/unit/servers/test_failures.py
    # checks them against every real log)
    needles: tuple[str, ...]
    pattern: re.Pattern[str]
    hint: Hint  # a str.format template of the pattern's groups, or a function of the match
    rank: int = SPECIFIC

    def failure(self, line: str, match: re.Match[str]) -> Failure:
        groups = {k: v or "" for k, v in match.groupdict().items()}
        hint = self.hint(match) if callable(self.hint) else self.hint.format(**groups)
        return Failure(self.key, line.strip(), hint, self.rank)


@functools.lru_cache(maxsize=1)
def _typed_fields() -> frozenset[str]:
    from vllmtui.profiles.model import FLAG_FIELDS  # lazily: reading logs needs no pydantic

    return frozenset(FLAG_FIELDS)


def _flag_name(flag: str) -> str:
    """`--kv-cache-dtype=x` / `-O/--compilation-config` -> `kv-cache-dtype` / `compilation-config`."""
    return flag.strip().split("/")[-1].split("=", 1)[0].lstrip("-")


def _field(flag: str) -> str | None:
    """The typed profile field a vLLM flag comes from, if it has one."""
    name = _flag_name(flag).replace("-", "_")
    if name.startswith("no_") and name[3:] in _typed_fields():
        name = name[3:]
    return name if name in _typed_fields() or name == "model" else None


def _where(flag: str) -> str:
    """Where a vLLM flag comes from in a profile: its typed field or its `args:` key."""
    field_name = _field(flag)
    return f"`{field_name}:`" if field_name else f"`args: {_flag_name(flag)}`"


def _setting(flag: str, value: str) -> str:
    """The profile setting that produced `--flag value`."""
    field_name = _field(flag)
    return f"`{field_name}: {value}`" if field_name else f"`args: {{{_flag_name(flag)}: {value}}}`"


def _choices(text: str, most: int = 80) -> str:
    """vLLM's printed choices (`'a', 'b'`, `a, b` or `{ a,b }`) as `a, b`."""
    items = [c.strip().strip("'\"") for c in text.strip(" {}").split(",")]
    items = [c for c in items if c]
    more = f", ... ({len(items)} in all)" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def _unrecognized(match: re.Match[str]) -> str:
    tokens = match["args"].split()
    flags = [t for t in tokens if t.startswith("-")]
    values = [t for t in tokens if not t.startswith("-")]
    said = []
    if flags:
        said.append(f"this vLLM has no {', '.join(f.split('=', 1)[0] for f in flags)}: remove or fix"
                    f" {', '.join(dict.fromkeys(_where(f) for f in flags))} in the profile"
                    " (a typo, or a flag of another vLLM version; its --help lists the flags it has)")
    if values:
        said.append(f"{', '.join(repr(v) for v in values)}: a value without a flag, check the"
                    " values under `args:`")
    return "; ".join(said)


def _invalid_choice(match: re.Match[str]) -> str:
    value = match["value"].strip("'\"")
    return (f"{_setting(match['flag'], value)} is not a value this vLLM accepts: use one of"
            f" {_choices(match['choices'])}")


def _invalid_value(match: re.Match[str]) -> str:
    flag, kind = match["flag"], match["type"]
    label = _field(flag) or _flag_name(flag)
    article = "an" if kind[:1] in "aeiou" else "a"
    return (f"`{label}` must be {article} {kind}, not {match['value'].strip()}: fix {_where(flag)}"
            " in the profile")


def _bad_arguments(match: re.Match[str]) -> str:
    flag = match["flag"]
    if not flag:
        return (f"vLLM refused its command line ({match['what']}): check the typed fields and"
                " `args:` of the profile")
    label = _field(flag) or _flag_name(flag)
    return f"vLLM refused `{label}` ({match['what']}): fix {_where(flag)} in the profile"


def _too_long(match: re.Match[str]) -> str:
    limit = match["limit"]
    if not limit:
        return "max_model_len is longer than the model supports: lower max_model_len"
    return (f"max_model_len {match['n']} is longer than the model supports: lower max_model_len to"
            f" {limit} or less (env VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 forces a longer one, at the"
            " model's risk)")


# argparse's own line, never prefixed: `api_server.py: error: `, `vllm serve: error: `
_ARGPARSE = r"^(?![\w.]*(?:Error|Exception|Warning):)[\w.-]+(?: [\w.-]+)?: error: "
_FAILURES: tuple[_Cause, ...] = (
    # argparse: vLLM stops before anything else, after printing its whole usage text
    _Cause("unrecognized-arguments", (": error: unrecognized",),
           re.compile(_ARGPARSE + r"unrecognized arguments: (?P<args>.+)"), _unrecognized, ARGS),
    _Cause("invalid-choice", ("invalid choice",),
           re.compile(_ARGPARSE + r"argument (?P<flag>[^:\s]+): invalid choice: (?P<value>'[^']*'|\S+)"
                      r" \(choose from (?P<choices>.*)\)"),
           _invalid_choice, ARGS),
    _Cause("invalid-value", ("value: ",),
           re.compile(_ARGPARSE + r"argument (?P<flag>[^:\s]+): invalid (?P<type>[\w.]+) value:"
                      r" (?P<value>.+)"),
           _invalid_value, ARGS),
    _Cause("bad-arguments", (": error: ",),
           re.compile(_ARGPARSE + r"(?:argument (?P<flag>[^:\s]+): )?(?P<what>.+)"), _bad_arguments, ARGS),
    # known causes
    _Cause("free-memory", ("Free memory on device",),
           re.compile(r"Free memory on device .* is less than desired GPU memory utilization"),
           "another process holds the GPU (often an orphaned vLLM: run `vllmtui reap`),"
           " or lower gpu_memory_utilization"),
    _Cause("max-model-len", ("estimated maximum model length",),
           re.compile(r"estimated maximum model length is (?P<n>\d+)"),
           "the KV cache cannot hold max_model_len tokens: set max_model_len to {n} or less, or give"
           " the KV cache more memory (gpu_memory_utilization; on a CPU env VLLM_CPU_KVCACHE_SPACE),"
           " or use kv_cache_dtype: fp8"),
    _Cause("max-model-len-derived", ("User-specified max_model_len",),
           re.compile(r"User-specified max_model_len \((?P<n>\d+)\) is greater than the derived"
                      r"(?: max_model_len \((?:\w+=)?(?P<limit>\d+))?"),
           _too_long),
    _Cause("oom", ("out of memory", "OutOfMemoryError"),
           re.compile(r"CUDA out of memory|OutOfMemoryError"),
           "out of GPU memory: lower gpu_memory_utilization, max_model_len or max_num_seqs,"
           " use more GPUs (tensor_parallel_size) or a quantized model"),
    _Cause("port-in-use", ("Address already in use",), re.compile(r"Address already in use"),
           "the port is taken: `vllmtui status` / `ss -ltnp` shows by whom; change `port:` in the"
           " profile, or stop what holds it"),
    _Cause("tool-parser", ("requires --tool-call-parser",),
           re.compile(r"--enable-auto-tool-choice requires --tool-call-parser"),
           "add tool_call_parser (e.g. hermes) next to enable_auto_tool_choice in the profile,"
           " or remove enable_auto_tool_choice"),
    _Cause("tool-parser-unknown", ("invalid tool call parser",),
           re.compile(r"invalid tool call parser: (?P<name>\S+) \(choo?se from (?P<choices>\{[^}]*\}?)"),
           lambda m: (f"`tool_call_parser: {m['name']}` is not a parser this vLLM has: use one of"
                      f" {_choices(m['choices'])}")),
    _Cause("model-not-found",
           ("Repo id must be", "Repository Not Found", "not a valid model identifier", "cached snapshot"),
           re.compile(r"Repo id must be in the form|Repository Not Found|is not a local folder and is not a"
                      r" valid model identifier|Cannot find an appropriate cached snapshot folder"),
           "the model is neither a directory on this machine nor a Hugging Face repo id that can be"
           " fetched: fix `model:` in the profile (with HF_HUB_OFFLINE=1 nothing is downloaded)"),
    _Cause("model-config-missing", ("Invalid repository ID", "file named config.json"),
           re.compile(r"Invalid repository ID or local directory specified: '(?P<path>[^']*)'"
                      r"|does not appear to have a file named config\.json"),
           "the model directory {path} has no config.json: point `model:` at the directory that"
           " holds the model's config.json, or finish its download"),
    _Cause("model-config-invalid", ("not a valid JSON file",),
           re.compile(r"config file at '(?P<path>[^']*)' is not a valid JSON file"),
           "{path} is not valid JSON: repair it or download the model again"),
    _Cause("architecture", ("Model architectures",),
           re.compile(r"Model architectures \[(?P<arch>[^\]]*)\]"
                      r" (?:are not supported|failed to be inspected)"),
           "this vLLM cannot run {arch} (`architectures` in the model's config.json): use a vLLM that"
           " supports it, or another model; a model that ships its own code needs trust_remote_code: true"),
    _Cause("cpu-kv-memory", ("requested memory for kv",),
           re.compile(r"Available memory on node \d+ \((?P<free>[\d.]+)/[\d.]+ GiB\) on kv cache allocation"
                      r" is less than requested memory for kv \((?P<want>[\d.]+) GiB\)"),
           "the KV cache asks for {want} GiB of RAM and {free} GiB are free: lower env"
           " VLLM_CPU_KVCACHE_SPACE (GiB) or `args: kv-cache-memory-bytes`, or free some RAM"),
    _Cause("cpu-numa", ("NUMA nodes to bind",),
           re.compile(r"Not enough allowed NUMA nodes to bind threads of (?P<n>\d+) local CPUWorkers"),
           "vLLM's CPU backend gives each of its {n} workers (tensor_parallel_size x"
           " pipeline_parallel_size) a NUMA node of its own, and this machine has fewer: set"
           " tensor_parallel_size: 1, or bind the threads by hand with env VLLM_CPU_OMP_THREADS_BIND"
           " (a CPU list per worker, e.g. 0-3|4-7)"),
    _Cause("cpu-attention", ("Unsupported CPU attention",),
           re.compile(r"Unsupported CPU attention configuration: head_dim=(?P<dim>\d+)"),
           "vLLM's CPU attention kernels have no head_dim {dim} (they take 32, 64, 80, 96, 112, 128,"
           " 160, 192, 224, 256 and 512): this model cannot run on the CPU build"),
    _Cause("trust-remote-code", ("trust_remote_code=True", "custom code"),
           re.compile(r"trust_remote_code=True|contains custom code"),
           "this model ships its own code: set trust_remote_code: true if you trust it"),
    _Cause("chat-template", ("chat template",),
           re.compile(r"default chat template is no longer allowed|must provide a chat template"),
           "the tokenizer has no chat template, so chat requests fail: set `chat_template:` in the"
           " profile (a Jinja file), or use /v1/completions", REQUEST),
    # the engine died: the reason is printed before (or after) these
    _Cause("engine-init", ("Engine core initialization failed",),
           re.compile(r"Engine core initialization failed"),
           "the engine died while starting: the lines above it say why", WRAPPER),
    _Cause("engine-dead", ("EngineDeadError", "EngineCore encountered"),
           re.compile(r"EngineDeadError|EngineCore encountered (?:an issue|a fatal error)"),
           "the engine died: the lines above it say why", WRAPPER),
    # not recognised: an exception's message, or an ERROR line saying that something failed
    _Cause("error", ("Error: ", "Exception: "),
           re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception): \S"),
           "see the log around this line", EXCEPTION),
    _Cause("error", ("Error", "Exception", "failed", "died"),
           re.compile(r"(?:Error|Exception|failed|died)\b"), "see the log around this line", GENERIC),
)

# What comes before a line's message: a `^C` the pane echoed, the prefix of vLLM's process
# decorator and logger (`(EngineCore pid=2) ERROR 12-03 11:49:13 [core.py:1510] `), torch's
# `[rank0]: `. Each part optional: it always matches.
_VLLM_PREFIX = re.compile(
    r"^(?:\^C)?(?:\([\w:.-]+(?: [\w:.-]+)* pid=\d+\) (?:(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) )?"
    r"(?:\d\d-\d\d \d\d:\d\d:\d\d )?(?:\[[^\]]*\] )?)?(?:\[rank\d+\]: ?)?"
)
_QUIET = frozenset({"DEBUG", "INFO", "WARNING"})  # vLLM never states a root cause at these levels
_LOUD = frozenset({"ERROR", "CRITICAL"})
# Never a root cause: vLLM's usage text and option listings (they name every flag, with
# `[--trust-remote-code]` among them), traceback frames and source lines (`raise ValueError(...)`
# would match the message it raises), warnings, uvicorn's INFO lines, vLLM's argument dump.
_NOT_FAILURE = re.compile(
    r"^(?:usage: |\s+\[|\s+-{1,2}\w|\s{4}|\t|\s*File \"|\s*\^+\s*$|INFO: )"
    r"|\bWARNING\b|Warning: |non-default args"
    r"|Exception caught\. Request id"  # one request failed (--log-error-stack); the reason is in the reply
)
# A stop that was asked for (Ctrl-C, vllmtui's stop): what the engine's death prints after it
# is no root cause
_STOP = re.compile(r"received signal=SIG(?:INT|TERM)|KeyboardInterrupt")
# pydantic's summary line: the real reason is the indented line that follows it
_SUMMARY = re.compile(r"\d+ validation errors? for \w+$")


def _message(line: str) -> tuple[str | None, str]:
    """(log level or None, the message without vLLM's prefix)."""
    prefix = _VLLM_PREFIX.match(line)
    if prefix is None:  # never: every part is optional
        return None, line
    return prefix["level"], line[prefix.end():]


def failure_of(line: str) -> Failure | None:
    """The root cause a log line names, if any (harmless lines never do)."""
    level, message = _message(line)
    if level in _QUIET:
        return None
    checked = False
    for cause in _FAILURES:
        if not any(needle in message for needle in cause.needles):
            continue
        if cause.rank == ARGS and level is not None:
            continue  # argparse prints its error bare, never through vLLM's logger
        if cause.rank == GENERIC and level not in _LOUD and "ERROR" not in message:
            continue  # "failed" in a line that is no ERROR line
        if not checked:
            if _NOT_FAILURE.search(message):
                return None
            checked = True
        match = cause.pattern.search(message)
        if match:
            return cause.failure(line, match)
    return None


@dataclass
class LogState:
    """What the log has said so far: the current phase, the root cause (the best-ranked
    failure, the first of its rank), vLLM's own figures. Feed it lines in order."""

    phase: str | None = None
    failure: Failure | None = None
    lines_seen: int = 0
    last_stamp: str | None = None  # vLLM's "MM-DD HH:MM:SS" of the latest prefixed line
    ready_stamp: str | None = None  # the stamp in force when the readiness line came
    _stopped: bool = field(default=False, repr=False)  # a stop was asked for (SIGINT/SIGTERM)
    _summary: Failure | None = field(default=None, repr=False)  # pydantic's, its reason next

    def feed(self, line: str) -> None:
        self.lines_seen += 1
        stamp = STAMP_RE.search(line)
        if stamp:
            self.last_stamp = stamp.group(1)
        phase = phase_of(line)
        if phase is not None and (
            self.phase is None or _order(phase) >= _order(self.phase)
        ):
            if phase == "ready" and self.phase != "ready":
                self.ready_stamp = self.last_stamp
            self.phase = phase
        self._feed_failure(line)

    def _feed_failure(self, line: str) -> None:
        """Argparse errors beat everything, specific causes beat an exception's bare message,
        which beats "Engine core initialization failed" and the like, which beat a bare ERROR
        line; among equals the first wins. After a requested stop, the engine's death is no
        cause (only specific ones still count)."""
        found = failure_of(line)
        summary, self._summary = self._summary, None
        if found is None:
            if summary is not None and self.failure is summary:
                message = _message(line)[1]
                if message.startswith("  ") and message.strip():  # pydantic's reason, indented
                    self.failure = replace(summary, line=line.strip())
            elif ("signal=SIG" in line or "KeyboardInterrupt" in line) and _STOP.search(line):
                self._stopped = True
            return
        if self._stopped and found.rank >= EXCEPTION:
            return
        if self.failure is None or found.rank < self.failure.rank:
            self.failure = found
            if found.rank == EXCEPTION and _SUMMARY.search(found.line):
                self._summary = found


def _order(key: str) -> int:
    return [p.key for p in PHASES].index(key)


STAMP_RE = re.compile(r"^\(\w+ pid=\d+\) [A-Z]+ (\d\d-\d\d \d\d:\d\d:\d\d) ")


def stamp_to_epoch(stamp: str, near: float) -> float | None:
    """vLLM's local-time "MM-DD HH:MM:SS" (no year) as epoch seconds, taking the year that
    puts it closest to `near`."""
    import datetime as dt

    base = dt.datetime.fromtimestamp(near)
    best: float | None = None
    for year in (base.year - 1, base.year, base.year + 1):
        try:
            value = dt.datetime.strptime(f"{year}-{stamp}", "%Y-%m-%d %H:%M:%S").timestamp()
        except ValueError:
            continue
        if best is None or abs(value - near) < abs(best - near):
            best = value
    return best


# ---------------------------------------------------------------- reading files


def read_lines_from(path: Path, offset: int, limit: int = 4 << 20) -> tuple[list[str], int]:
    """Complete lines from `offset` (at most `limit` bytes); returns (lines, new offset).
    A partial last line is left for the next call."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if offset > size:  # truncated or replaced
                offset = 0
            fh.seek(offset)
            data = fh.read(limit)
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    chunk = data[: end + 1]
    return chunk.decode("utf-8", "replace").splitlines(), offset + len(chunk)


def tail_lines(path: Path, count: int, block: int = 64 << 10) -> tuple[list[str], int]:
    """The last `count` lines, reading backwards from the end; returns (lines, end offset)."""
    try:
        with path.open("rb") as fh:
            end = os.fstat(fh.fileno()).st_size
            pos = end
            data = b""
            while pos > 0 and data.count(b"\n") <= count:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except FileNotFoundError:
        return [], 0
    # only complete lines: the end offset is after the last newline
    last_nl = data.rfind(b"\n")
    if last_nl < 0:
        return [], end - len(data)
    complete_end = end - (len(data) - last_nl - 1)
    lines = data[: last_nl + 1].decode("utf-8", "replace").splitlines()
    return lines[-count:] if count else [], complete_end


def scan(path: Path, head_bytes: int = 8 << 20, tail_bytes: int = 1 << 20) -> LogState:
    """Phase and failure of a log without reading all of it: the start (phases) and the end
    (the crash). Enough for a one-shot status; followers feed LogState incrementally."""
    state = LogState()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return state
    lines, offset = read_lines_from(path, 0, head_bytes)
    for line in lines:
        state.feed(clean_line(line))
    if size > offset:
        start = max(offset, size - tail_bytes)
        more, _ = read_lines_from(path, start, tail_bytes + 1)
        for line in more[1:] if start > offset else more:
            state.feed(clean_line(line))
    return state


READY_LINE = b"Application startup complete."  # what the "ready" phase's pattern matches


def ready_stamp(path: Path, limit: int = 8 << 20) -> str | None:
    """What `LogState.ready_stamp` would say after the whole log, found fast: the stamp in
    force when the log first said it was ready (searched in its first `limit` bytes); None
    when it did not say so there, or had no stamps before it."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit)
    except FileNotFoundError:
        return None
    end = data.find(READY_LINE)
    if end < 0 or data.find(b"\n", end) < 0:  # not there, or on a line not complete yet
        return None
    for line in reversed(data[:end].decode("utf-8", "replace").splitlines()):
        stamp = STAMP_RE.search(clean_line(line))
        if stamp:
            return stamp.group(1)
    return None


class LogStates:
    """What each log has said so far, read incrementally: each call reads only the bytes added
    since the last one (a log too big to read at once is `scan`ned). Thread-safe."""

    def __init__(self, big: int = 16 << 20) -> None:
        self._big = big
        self._seen: dict[Path, tuple[int, LogState]] = {}
        self._lock = threading.Lock()

    def state(self, path: Path) -> LogState:
        """The phase, failure and stamps of the log at `path` up to its last complete line."""
        with self._lock:
            offset, state = self._seen.get(path, (0, LogState()))
            if offset == 0 and path.exists() and path.stat().st_size > self._big:
                state = scan(path)
                offset = path.stat().st_size
            else:
                lines, offset = read_lines_from(path, offset)
                for line in lines:
                    state.feed(clean_line(line))
            self._seen[path] = (offset, state)
            return state


def follow(
    path: Path, from_end_lines: int = 20, poll: float = 0.25, stop: float | None = None
) -> Iterator[str]:
    """Yield the last lines, then new lines as they are appended (like `tail -F`)."""
    lines, offset = tail_lines(path, from_end_lines)
    yield from lines
    deadline = None if stop is None else time.monotonic() + stop
    while deadline is None or time.monotonic() < deadline:
        new, offset = read_lines_from(path, offset)
        if new:
            yield from new
        else:
            time.sleep(poll)
