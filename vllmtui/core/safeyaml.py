"""Reading YAML that a user wrote (profiles, runtimes.yaml, tunnels.yaml, tools files) without
trusting it: a regular file of bounded size, UTF-8, parsed once by PyYAML's safe loader with a
deadline, refused when it expands past a bound (a "billion laughs" alias bomb), nests too deep,
refers to itself or gives a key twice. Every refusal is a `file:line: message` line.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


class YamlRefused(Exception):
    """A file refused: `problems` are `file:line: message` lines for the user."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


MAX_BYTES = 1 << 20
"""A file a user writes by hand is a few lines of YAML; a bigger one is refused before it is parsed."""
MAX_VALUES = 100_000
"""How many values a profile may expand to (aliases counted each time they are used)."""
MAX_DEPTH = 64
LOAD_TIMEOUT = 5.0
"""Seconds parsing one profile may take."""


class _Refused(Exception):
    """A profile refused while it was parsed (too slow, too big, too deep)."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a deadline: composing and constructing stop when it passes."""

    deadline = 0.0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._tick()
        return super().compose_node(parent, index)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        self._tick()
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date such as 2020-13-45
            raise _Refused(node.start_mark.line + 1, f"{node.value!r} cannot be read: {exc}") from None

    def _tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Refused(None, f"parsing took over {LOAD_TIMEOUT:g} s: it should be a few lines")


def _check_shape(root: yaml.Node) -> None:
    """Refuse a document that expands to more than MAX_VALUES values (nested aliases: a
    "billion laughs"), nests deeper than MAX_DEPTH or refers to itself. Linear in the number
    of distinct nodes: the size of a node used many times is counted once and reused."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        line = node.start_mark.line + 1
        if key in active:
            raise _Refused(line, "an alias refers to the value that contains it: remove the loop")
        if depth > MAX_DEPTH:
            raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep")
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        active.discard(key)
        if total > MAX_VALUES:
            raise _Refused(
                line,
                f"expands to more than {MAX_VALUES:,} values (aliases nested in aliases?):"
                " a file written by hand needs a few dozen",
            )
        sizes[key] = total
        return total

    size(root, 0)


def _walk(root: yaml.Node, prefix: tuple[str, ...] = ()) -> Iterator[tuple[yaml.Node, tuple[str, ...]]]:
    """Each distinct node of a document once (a node used again through an alias is not
    walked again), with its key path."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, prefix)]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, path
        if isinstance(node, yaml.MappingNode):
            stack += [(value, (*path, str(key.value))) for key, value in node.value]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, str(i))) for i, item in enumerate(node.value)]


def _duplicate_keys(root: yaml.Node) -> list[tuple[int, str]]:
    """(line, message) for each key given twice in one mapping, naming both lines."""
    found: list[tuple[int, str]] = []
    for node, path in _walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        first: dict[tuple[str, str], int] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            line = key_node.start_mark.line + 1
            ident = (key_node.tag, str(key_node.value))
            if ident in first:
                name = ".".join((*path, str(key_node.value)))
                found.append((line, f"{name}: given twice (lines {first[ident]} and {line}): keep one"))
            else:
                first[ident] = line
    return sorted(found)


def key_lines(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path of a YAML mapping to its 1-based line (a node used again through an
    alias is walked once)."""
    lines: dict[tuple[str, ...], int] = {}
    for current, path in _walk(node, prefix):
        if isinstance(current, yaml.MappingNode):
            for key_node, _value in current.value:
                lines.setdefault((*path, str(key_node.value)), key_node.start_mark.line + 1)
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                lines.setdefault((*path, str(index)), item.start_mark.line + 1)
    return lines


def _yaml_problem(exc: yaml.YAMLError, path: Path, text: str) -> str:
    """One line for a YAML syntax error at the line where the trouble starts: an unclosed
    bracket or quote is named at the line it was opened on, not at the end of the file."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        where = f"{path}:{line}" if line else str(path)
        char = exc.character
        shown = f"{char:#04x}" if isinstance(char, int) else repr(char)
        return f"{where}: not valid YAML: a control character ({shown}) is not allowed in a profile"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"{path}: not valid YAML: {exc}"
    problem = exc.problem or str(exc)
    mark, context = exc.problem_mark, exc.context_mark
    last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
    at_end = "stream end" in problem or "end of stream" in problem or (
        mark is not None and mark.line + 1 > last_line
    )
    if at_end:
        opener = _unclosed_opener(text)
        if opener is not None:
            line, char = opener
            what = "quote" if char in "'\"" else "bracket"
            return f"{path}:{line}: not valid YAML: the {what} {char} opened on this line is never closed"
    if context is not None and exc.context and context.line + 1 <= last_line:
        at = "the end of the file" if at_end or mark is None else f"line {mark.line + 1}"
        return (
            f"{path}:{context.line + 1}: not valid YAML: {exc.context} that starts on this line:"
            f" {problem} at {at}"
        )
    where = f"{path}:{min(mark.line + 1, last_line)}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {problem}"


def _unclosed_opener(text: str) -> tuple[int, str] | None:
    """(line, character) of the outermost bracket or quote that is never closed, found by a
    small scan of YAML's flow brackets, quotes and comments; None when all are closed."""
    stack: list[tuple[int, str]] = []
    line, quote, quote_at, prev = 1, "", (0, ""), "\n"
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line += 1
        if quote:
            if quote == '"' and ch == "\\":
                i += 2
                continue
            if ch == quote:
                if quote == "'" and text[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                quote = ""
        elif ch == "#" and prev in " \t\n":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            prev = " "
            continue
        elif ch in "'\"" and (prev in " \t\n[{,:-" ):
            quote, quote_at = ch, (line, ch)
        elif ch in "[{":
            stack.append((line, ch))
        elif ch in "]}" and stack:
            stack.pop()
        prev = ch
        i += 1
    if quote:
        return quote_at
    return stack[0] if stack else None


def _decode(raw: bytes, path: Path) -> str:
    """File bytes as text: UTF-8 (a BOM is allowed), else a message saying where it is not."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YamlRefused([f"{path}:1: is UTF-16 text: save it as UTF-8"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlRefused(
            [
                f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}):"
                " is it a binary file? It must be YAML text saved as UTF-8"
            ]
        ) from None


def compose(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree and the data it holds, parsed once, bounded in size and time;
    YamlRefused naming `path` and the line. Keys given twice are refused too."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters at once
        loader.deadline = time.monotonic() + LOAD_TIMEOUT
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_shape(node)
        twice = _duplicate_keys(node)
        if twice:
            raise YamlRefused([f"{path}:{line}: {message}" for line, message in twice])
        return node, loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlRefused([_yaml_problem(exc, path, text)]) from None
    except _Refused as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise YamlRefused([f"{where}: {exc.message}"]) from None
    except RecursionError:
        raise YamlRefused([f"{path}: nested too deeply to read"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def nul_strings(data: Any, loc: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Key paths whose text holds a NUL character (no argv or environment can carry one)."""
    if isinstance(data, str):
        if "\x00" in data:
            yield loc
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and "\x00" in key:
                yield (*loc, key)
            yield from nul_strings(value, (*loc, str(key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from nul_strings(item, (*loc, str(index)))


def read_text(path: Path, what: str = "a .yaml text file") -> str:
    """A file's text: a regular file, at most MAX_BYTES, UTF-8; YamlRefused naming it
    otherwise (`what` says what the file should be)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise YamlRefused([f"{path}: is {kind}: it should be {what}"])
        if info.st_size > MAX_BYTES:
            raise YamlRefused(
                [f"{path}: is {info.st_size / 2**20:.1f} MiB: it should be a few lines of YAML"
                 f" (at most {MAX_BYTES // 2**20} MiB)"]
            )
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlRefused([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return _decode(raw[:MAX_BYTES], path)


def load_file(path: Path, what: str = "a .yaml text file") -> tuple[yaml.Node | None, Any]:
    """`read_text` then `compose`: the node tree and data of a YAML file, or YamlRefused."""
    return compose(read_text(path, what), path)


