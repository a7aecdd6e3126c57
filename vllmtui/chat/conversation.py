"""A conversation: its messages in the OpenAI shape, each reply's figures, the system prompt
and generation settings, saved as JSONL (one event a line, appended as it happens, so a crash
loses at most the line being written), listed, reopened and exported as Markdown."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vllmtui.core.errors import UsageError

CHATS = "chats"  # the folder in a run directory


@dataclass(frozen=True)
class ReplyStats:
    """One reply's figures: tokens, time to first token, tokens per second."""

    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    time_to_first_token: float | None = None
    tokens_per_second: float | None = None
    seconds: float = 0.0
    finish_reason: str | None = None
    stopped: bool = False  # the user stopped it (Esc, Ctrl-C)

    def line(self) -> str:
        """`42 tokens · TTFT 0.12 s · 85.3 tok/s` (what is known of it)."""
        parts = []
        if self.completion_tokens is not None:
            parts.append(f"{self.completion_tokens} tokens")
        if self.time_to_first_token is not None:
            parts.append(f"TTFT {self.time_to_first_token:.2f} s")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        parts.append(f"{self.seconds:.1f} s")
        if self.stopped:
            parts.append("stopped")
        elif self.finish_reason and self.finish_reason != "stop":
            parts.append(f"finish_reason {self.finish_reason}")
        return " · ".join(parts)


@dataclass(frozen=True)
class Entry:
    """One message of the conversation. `stats` for an assistant reply; `tool` for what
    vllmtui knows of a tool call's result (its check against the schema, the user's answer,
    whether the tool failed)."""

    message: dict[str, Any]
    stats: ReplyStats | None = None
    tool: dict[str, Any] | None = None

    @property
    def role(self) -> str:
        return str(self.message.get("role", ""))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "message": self.message}
        if self.stats is not None:
            data["stats"] = asdict(self.stats)
        if self.tool is not None:
            data["tool"] = self.tool
        return data


def new_id() -> str:
    """A sortable, unique conversation id: `20261203-183022-3fa2`."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class Conversation:
    """Messages and settings of one chat; `path` is its JSONL file (None: not saved)."""

    target: str
    model: str
    system: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    created: float = field(default_factory=time.time)
    path: Path | None = None
    damaged: int = 0  # lines of its file that could not be read back

    # -- the API's view

    def messages(self) -> list[dict[str, Any]]:
        """The `messages` of the next request: the system prompt, then every entry."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [e.message for e in self.entries]

    @property
    def title(self) -> str:
        """The first user message, shortened (what the list of conversations shows)."""
        for entry in self.entries:
            if entry.role == "user":
                text = " ".join(str(entry.message.get("content") or "").split())
                return text[:60] + ("…" if len(text) > 60 else "")
        return "(empty)"

    # -- changes, each written at once

    def add(self, entry: Entry) -> Entry:
        self.entries.append(entry)
        self._write(entry.to_json())
        return entry

    def set_system(self, text: str | None) -> None:
        self.system = text or None
        self._write({"type": "system", "system": self.system})

    def set_settings(self, values: dict[str, Any]) -> None:
        self.settings = dict(values)
        self._write({"type": "settings", "settings": self.settings})

    def save_to(self, folder: Path) -> Path:
        """Start saving under `folder` (the file is written from its first line)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{self.id}.jsonl"
        lines = [self._meta()] + [e.to_json() for e in self.entries]
        _append(self.path, lines)
        return self.path

    def _meta(self) -> dict[str, Any]:
        return {"type": "meta", "version": 1, "id": self.id, "target": self.target, "model": self.model,
                "created": self.created, "system": self.system, "settings": self.settings}

    def _write(self, data: dict[str, Any]) -> None:
        if self.path is not None:
            _append(self.path, [data])


def _append(path: Path, lines: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            text = "\n" + text  # a line cut short (a crash mid-write) must not swallow this one
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _stats(data: Any) -> ReplyStats | None:
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if k in ReplyStats.__dataclass_fields__}
    try:
        return ReplyStats(**known)
    except TypeError:
        return None


def open_conversation(path: Path) -> Conversation:
    """A saved conversation, read back. Unreadable lines (a crash mid-write, an edit) are
    skipped and counted in `damaged`; a file that is not a conversation is a UsageError."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read this conversation ({exc.strerror or exc})") from None
    records: list[dict[str, Any]] = []
    damaged = 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            damaged += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged += 1
    meta = records[0] if records and records[0].get("type") == "meta" else None
    if meta is None:
        raise UsageError(f"{path}: not a vllmtui conversation (its first line is not the meta line)")
    chat = Conversation(
        target=str(meta.get("target") or "?"), model=str(meta.get("model") or "?"),
        system=meta.get("system") if isinstance(meta.get("system"), str) else None,
        settings=dict(meta["settings"]) if isinstance(meta.get("settings"), dict) else {},
        id=str(meta.get("id") or path.stem),
        created=float(meta.get("created") or path.stat().st_mtime), damaged=damaged,
    )
    for record in records[1:]:
        kind = record.get("type")
        if kind == "message" and isinstance(record.get("message"), dict):
            tool = record.get("tool") if isinstance(record.get("tool"), dict) else None
            chat.entries.append(Entry(record["message"], _stats(record.get("stats")), tool))
        elif kind == "system":
            chat.system = record.get("system") if isinstance(record.get("system"), str) else None
        elif kind == "settings" and isinstance(record.get("settings"), dict):
            chat.settings = record["settings"]
        else:
            chat.damaged += 1
    chat.path = path
    return chat


@dataclass(frozen=True)
class SavedChat:
    """One saved conversation in a listing."""

    id: str
    path: Path
    title: str
    created: float
    messages: int


def list_conversations(folders: list[Path]) -> list[SavedChat]:
    """Saved conversations under `folders`, newest first (unreadable files left out)."""
    found: list[SavedChat] = []
    for folder in folders:
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
            try:
                chat = open_conversation(path)
            except UsageError:
                continue
            found.append(SavedChat(chat.id, path, chat.title, chat.created, len(chat.entries)))
    found.sort(key=lambda c: (c.created, c.id), reverse=True)
    return found


def find_conversation(folders: list[Path], wanted: str) -> Path:
    """A saved conversation by id, id prefix, `latest`, or a path to its file."""
    direct = Path(wanted).expanduser()
    if wanted.endswith(".jsonl") and direct.is_file():
        return direct
    saved = list_conversations(folders)
    if wanted == "latest" and saved:
        return saved[0].path
    hits = [c for c in saved if c.id == wanted] or [c for c in saved if c.id.startswith(wanted)]
    if len(hits) == 1:
        return hits[0].path
    known = ", ".join(c.id for c in saved[:8]) or "none saved yet"
    what = "matches several conversations" if hits else "is not a saved conversation"
    raise UsageError(f"{wanted!r} {what}; known: {known} (`vllmtui chat NAME --list` lists them)")
