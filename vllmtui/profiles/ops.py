"""Profile file operations for the TUI (and scripts): duplicate a profile under a new name
with a free port, open one in the user's editor and validate it again afterwards.

Edits keep the file's comments and layout: only the `name:` and `port:` lines change.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import port_in_use
from vllmtui.profiles.loading import discover, load_profile_file
from vllmtui.profiles.model import NAME_RE, LoadedProfile

_PORT_LINE = re.compile(r"^port:[ \t]*[^\n#]*", re.MULTILINE)
_NAME_LINE = re.compile(r"^name:[ \t]*[^\n#]*", re.MULTILINE)


def free_port_after(settings: Settings, start: int, taken: set[int] | None = None) -> int:
    """The first port above `start` that no profile uses and nothing listens on."""
    good, _ = discover(settings)
    used = {p.profile.port for p in good} | (taken or set())
    port = start + 1
    while port <= 65535:
        if port not in used and not port_in_use("127.0.0.1", port):
            return port
        port += 1
    raise UsageError(f"no free TCP port above {start}: pick one by hand in the profile")


def suggest_copy_name(settings: Settings, name: str) -> str:
    """`NAME-copy`, `NAME-copy2`, ... whichever no profile file uses yet."""
    good, broken = discover(settings)
    names = {p.profile.name for p in good} | {b.name for b in broken}
    candidate, n = f"{name}-copy", 1
    while candidate in names:
        n += 1
        candidate = f"{name}-copy{n}"
    return candidate


def duplicate(
    settings: Settings, loaded: LoadedProfile, new_name: str, port: int | None = None
) -> LoadedProfile:
    """Copy a profile file next to the original as `<new_name>.yaml` with a new port (the
    next free one when not given); returns the validated copy. Changes nothing on error."""
    if not NAME_RE.match(new_name):
        raise UsageError(
            f"{new_name!r} is not a profile name: use 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    good, broken = discover(settings)
    if new_name in {p.profile.name for p in good} | {b.name for b in broken}:
        raise UsageError(f"a profile named {new_name!r} exists already: choose another name")
    target = loaded.path.with_name(new_name + loaded.path.suffix)
    if target.exists():
        raise UsageError(f"{target} exists already: choose another name")
    port = port if port is not None else free_port_after(settings, loaded.profile.port)
    text = loaded.path.read_text(encoding="utf-8")
    if _PORT_LINE.search(text):
        text = _PORT_LINE.sub(f"port: {port}", text, count=1)
    else:
        text = text.rstrip("\n") + f"\nport: {port}\n"
    if _NAME_LINE.search(text):
        text = _NAME_LINE.sub(f"name: {new_name}", text, count=1)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    try:
        return load_profile_file(target)
    except Exception:
        target.unlink(missing_ok=True)
        raise


def editor_argv(path: Path) -> list[str]:
    """$VISUAL, $EDITOR, or the first of nano/vim/vi found, with the file appended."""
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if command:
        return [*shlex.split(command), str(path)]
    for name in ("nano", "vim", "vi"):
        found = shutil.which(name)
        if found:
            return [found, str(path)]
    raise UsageError("no editor found: set $EDITOR (e.g. export EDITOR=nano)")


def edit(path: Path) -> LoadedProfile:
    """Run the editor on a profile in the foreground (the caller hands it the terminal),
    then validate the file again; raises ProfileError naming file, line and field."""
    argv = editor_argv(path)
    try:
        subprocess.run(argv, check=False)
    except OSError as exc:
        raise UsageError(
            f"cannot run the editor {argv[0]!r}: {exc.strerror}; check $EDITOR"
        ) from None
    return load_profile_file(path)
