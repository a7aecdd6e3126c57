"""`<config_dir>/mcp.yaml`: the MCP servers whose tools the chat offers the model, in the
`mcpServers:` shape other MCP clients (Claude Desktop, Cursor) use, validated like a profile
(every problem as `file:line: field: message`). A missing file means no servers; a file with
problems gives none of its servers.

    mcpServers:
      weather:                          # stdio: a program vllmtui starts
        command: python
        args: [weather_server.py]
        env: {API_KEY: "${WEATHER_KEY}"}  # ${NAME}: read from vllmtui's environment at connect time
        cwd: ~/tools
        timeout: 60                     # seconds per tool call
        disabled: false
      search:                           # streamable HTTP
        url: https://example.com/mcp
        headers: {Authorization: "Bearer ${SEARCH_TOKEN}"}

Secrets are named, never written: only `env:` and `headers:` values may hold `${NAME}`, so no
secret reaches a command line, and resolved values are never printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vllmtui.core import safeyaml
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import did_you_mean
from vllmtui.profiles.model import ENV_NAME_RE

FILE_NAME = "mcp.yaml"
TOP_KEY = "mcpServers"
DEFAULT_TIMEOUT = 60.0
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REF_RE = re.compile(r"\$\{([^}]*)\}")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNIT = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_EXAMPLE = "mcpServers: {weather: {command: python, args: [weather_server.py]}}"


@dataclass(frozen=True)
class McpServerSpec:
    """One server of mcp.yaml: stdio (`command`, `args`, `env`, `cwd`) or streamable HTTP
    (`url`, `headers`). `env` and `headers` values may hold `${NAME}` references, resolved
    only when connecting (`resolved_env`, `resolved_headers`)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    disabled: bool = False

    @property
    def transport(self) -> Literal["stdio", "http"]:
        """How vllmtui reaches it: a program it starts (stdio) or a URL (streamable HTTP)."""
        return "stdio" if self.command is not None else "http"

    def resolved_env(self, source: Path | None = None) -> dict[str, str]:
        """`env` with every `${NAME}` replaced from os.environ; UsageError naming the variable
        when one is not set (`source`: the file named in that message)."""
        return {k: resolve(v, where=self._where(source, "env", k)) for k, v in self.env.items()}

    def resolved_headers(self, source: Path | None = None) -> dict[str, str]:
        """`headers` with every `${NAME}` replaced from os.environ (see `resolved_env`)."""
        return {k: resolve(v, where=self._where(source, "headers", k)) for k, v in self.headers.items()}

    def _where(self, source: Path | None, setting: str, key: str) -> str:
        return f"{source if source is not None else FILE_NAME}: {self.name}.{setting}.{key}"


def resolve(value: str, *, where: str = FILE_NAME) -> str:
    """`value` with each `${NAME}` replaced by that environment variable's value; UsageError
    when one is not set, naming `where` (file: server.field.key) and the variable, never the
    value."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found is None:
            raise UsageError(f"{where} needs ${name}, which is not set: export it"
                             f" (export {name}=...) before starting vllmtui, or edit {FILE_NAME}")
        return found

    return REF_RE.sub(sub, value)


def _reference_problem(value: str) -> str | None:
    """Why a `${...}` reference in `value` cannot be resolved, or None when all are sound."""
    for match in REF_RE.finditer(value):
        name = match.group(1)
        if name.startswith("env:") and ENV_NAME_RE.match(name[4:]):
            return f"write ${{{name[4:]}}} (not ${{{name}}}): vllmtui reads ${{NAME}} from its environment"
        if not ENV_NAME_RE.match(name):
            return (f"${{{name}}} is not an environment variable name: write ${{NAME}} with letters,"
                    " digits and _ (not starting with a digit)")
    if "${" in REF_RE.sub("", value):
        return "a ${ is never closed: write ${NAME}"
    return None


def _text(value: Any) -> Any:
    """A text setting: numbers become text (`8080` -> '8080'); true/false, null, lists and
    mappings are refused with what to write instead."""
    if isinstance(value, bool):
        return _refuse(f"write text: put {str(value).lower()} in quotes ('{str(value).lower()}')")
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return _refuse("give a value (in quotes, '' for an empty one)")
    if isinstance(value, list | dict):
        return _refuse("write one text value here, not a list or mapping")
    return value


def _refuse(message: str) -> Any:
    raise ValueError(message)


def _no_reference(value: str | None, field: str) -> str | None:
    if value is not None and "${" in value:
        raise ValueError(f"${{...}} is only read in env: and headers: values, never in {field}:"
                         " (a secret on a command line or in a URL shows in `ps` and logs):"
                         " pass it in env: and let the server read it")
    return value


def _checked_reference(value: str) -> str:
    problem = _reference_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _header_value(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("a header value is one line")
    return _checked_reference(value)


Arg = Annotated[str, BeforeValidator(_text), AfterValidator(lambda v: _no_reference(v, "args"))]
EnvValue = Annotated[str, BeforeValidator(_text), AfterValidator(_checked_reference)]
HeaderValue = Annotated[str, BeforeValidator(_text), AfterValidator(_header_value)]


class _ServerModel(BaseModel):
    """What one entry of mcpServers may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["stdio", "http", "streamable-http", "streamableHttp", "sse"] | None = None
    command: str | None = None
    args: list[Arg] = Field(default_factory=list)
    env: dict[str, EnvValue] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=86400)
    disabled: bool = False

    @field_validator("args", mode="before")
    @classmethod
    def _args(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"write a list of arguments, e.g. args: [{value!r}] (each item one argument)")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or "=" in key:
                raise ValueError(f"{key!r} is not an environment variable name")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not HEADER_NAME_RE.match(key):
                raise ValueError(f"{key!r} is not an HTTP header name"
                                 " (letters, digits and -, e.g. Authorization)")
        return value

    @field_validator("command", "cwd")
    @classmethod
    def _plain(cls, value: str | None, info: Any) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty: give a value or leave the setting out")
        return _no_reference(value, str(info.field_name))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _no_reference(value, "url")
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL (e.g. https://example.com/mcp)")
        return value.strip()

    @field_validator("timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _DURATION_RE.match(value)
            if not match:
                raise ValueError(f"{value!r} is not a duration: write seconds (60) or '90s', '2m'")
            return float(match.group(1)) * _UNIT[match.group(2)]
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> _ServerModel:
        if self.type == "sse":
            raise ValueError("the SSE transport is not supported: give the server's streamable HTTP"
                             " endpoint as url: (often the same address ending in /mcp)")
        if self.command is not None and self.url is not None:
            raise ValueError("give command: (a program vllmtui runs over stdio) or url: (a streamable HTTP"
                             " endpoint), not both: remove one")
        if self.command is None and self.url is None:
            raise ValueError("give command: (a program vllmtui runs over stdio, e.g. command: python) or"
                             " url: (a streamable HTTP endpoint, e.g. url: https://example.com/mcp)")
        if self.type == "stdio" and self.command is None:
            raise ValueError("type: stdio needs command: (or write type: http for a url:)")
        if self.type not in (None, "stdio") and self.url is None:
            raise ValueError(f"type: {self.type} needs url: (or write type: stdio for a command:)")
        stray = [f for f in (("args", "env", "cwd") if self.url else ("headers",)) if getattr(self, f)]
        if stray:
            kind = "a url: server" if self.url else "a command: server"
            raise ValueError(f"{', '.join(stray)}: not used by {kind}: remove it")
        return self


def mcp_file(settings: Settings) -> Path:
    """Where the user's MCP servers are configured: `<config_dir>/mcp.yaml`."""
    return settings.config_dir / FILE_NAME


def _line(lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int:
    return next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), 1)


def _shape_problems(path: Path, data: Any, lines: dict[tuple[str, ...], int]) -> list[str]:
    """Problems with the file's outline (the top-level mapping and the server names)."""
    if not isinstance(data, dict):
        return [f"{path}:1: write a mapping with {TOP_KEY}: at the top, e.g. {_EXAMPLE}"]
    if TOP_KEY not in data:
        for key in data:
            if str(key) in ("servers", "mcp_servers", "mcpservers", "mcp"):
                return [f"{path}:{_line(lines, (str(key),))}: {key}: write {TOP_KEY}: (the key Claude"
                        f" Desktop and Cursor use) instead"]
        if data:
            first = str(next(iter(data)))
            return [f"{path}:{_line(lines, (first,))}: {first}: unknown setting"
                    f"{did_you_mean(first, [TOP_KEY])}: servers go under {TOP_KEY}:, e.g. {_EXAMPLE}"]
        return []
    servers = data[TOP_KEY]
    where = f"{path}:{_line(lines, (TOP_KEY,))}: {TOP_KEY}"
    if isinstance(servers, list):
        return [f"{where}: write a mapping of server name to its settings, not a list"
                f" (no '-' before the names), e.g. {_EXAMPLE}"]
    if servers is not None and not isinstance(servers, dict):
        return [f"{where}: write a mapping of server name to its settings, e.g. {_EXAMPLE}"]
    problems = []
    for name in servers or {}:
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(f"{path}:{_line(lines, (TOP_KEY, str(name)))}: {TOP_KEY}.{name}: a server name"
                            " is 1 to 64 letters, digits, _ or - (it prefixes its tools' names)")
    return problems


def _validation_problems(path: Path, exc: ValidationError, lines: dict[tuple[str, ...], int]) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("bool_type", "bool_parsing"):
            msg = "write true or false"
        elif err["type"] == "model_type":
            msg = "give the server's settings under its name: command: (and args:) or url:"
        elif err["type"] == "dict_type":
            msg = f"write a mapping of NAME: value, e.g. {loc[-1]}: {{API_KEY: '${{MY_KEY}}'}}"
        if err["type"] == "extra_forbidden":
            options = list(_ServerModel.model_fields) if len(loc) > 2 else [TOP_KEY]
            msg = "unknown setting" + did_you_mean(loc[-1], options)
            if len(loc) == 1:
                msg += f": {FILE_NAME} holds only {TOP_KEY}:"
            if loc[-1] == "enabled":
                msg = "unknown setting: write disabled: true to turn a server off (the default is false)"
            elif loc[-1] in ("autoApprove", "alwaysAllow"):
                msg += " (another client's setting: remove it)"
        problems.append(f"{path}:{_line(lines, loc)}: {'.'.join(loc)}: {msg}")
    return problems


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mcpServers: dict[str, _ServerModel] | None = None


def load_mcp_config(path: Path) -> tuple[tuple[McpServerSpec, ...], list[str]]:
    """The servers of an mcp.yaml and its problems (`file:line: field: message`); a missing
    file gives `((), [])`, a file with problems gives no servers."""
    if not path.exists():
        return (), []
    try:
        node, data = safeyaml.load_file(path)
    except safeyaml.YamlRefused as exc:
        return (), list(exc.problems)
    lines = safeyaml.key_lines(node) if node is not None else {}
    data = {} if data is None else data
    problems = _shape_problems(path, data, lines)
    if problems:
        return (), problems
    problems = [f"{path}:{_line(lines, loc)}: {'.'.join(loc)}: a NUL character cannot be passed to a program"
                for loc in safeyaml.nul_strings(data)]
    try:
        parsed = _FileModel.model_validate(data)
    except ValidationError as exc:
        problems += _validation_problems(path, exc, lines)
    if problems:
        return (), problems
    specs = tuple(
        McpServerSpec(
            name=name,
            command=server.command,
            args=tuple(server.args),
            env=dict(server.env),
            cwd=server.cwd,
            url=server.url,
            headers=dict(server.headers),
            timeout=server.timeout,
            disabled=server.disabled,
        )
        for name, server in (parsed.mcpServers or {}).items()
    )
    return specs, []
