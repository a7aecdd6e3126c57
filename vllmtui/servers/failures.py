"""What vLLM's log lines say went wrong: each line that states a cause becomes a `Failure` with
a rank (argparse refusals, known causes with a hint naming what to change, a request that
failed, an exception's own message, wrappers whose reason is elsewhere, generic ERROR lines).
`servers.logs.LogState` keeps the best-ranked one, the root cause."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

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
