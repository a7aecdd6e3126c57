"""Loading profiles: YAML with the line of every key, so an error names file, line and field
and suggests the right spelling for a typo; discovery, lookup by name, overrides."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vllmtui.core import safeyaml
from vllmtui.core.errors import ProfileError, UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.model import (
    PROFILE_SUFFIXES,
    BrokenProfile,
    LoadedProfile,
    Profile,
    cross_check,
    where_of,
)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or inside `list[...]`, `X | None`, ..."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _model_fields(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """Field names allowed at `loc` (for suggestions; `nodes.0.x`: a list's entry)."""
    current: type[BaseModel] = model
    for part in loc:
        if part.isdigit():  # an index into a list of models
            continue
        field = current.model_fields.get(part)
        found = _model_in(field.annotation) if field is not None else None
        if found is None:
            return []
        current = found
    return list(current.model_fields)


def did_you_mean(word: str, options: list[str]) -> str:
    """` (did you mean X?)` for the option closest to `word`, else ""."""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return ""


def format_validation_error(
    exc: ValidationError, path: Path, lines: dict[tuple[str, ...], int], source: str = ""
) -> list[str]:
    """Turn pydantic errors into `file:line: field: message (did you mean ...?)` lines."""
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        # pydantic appends the union/literal branch to loc in some cases; trim to real keys
        while loc and loc not in lines and len(loc) > 1 and not loc[-1].isidentifier():
            loc = loc[:-1]
        field = ".".join(loc) if loc else "(profile)"
        line = lines.get(loc)
        if line is None and err["type"] == "missing":  # a key not written: the line of its parent
            line = next((lines[loc[:i]] for i in range(len(loc) - 1, 0, -1) if loc[:i] in lines), None)
        where = f"{path}:{line}" if line else str(path)
        if source:
            where = f"{where} ({source})"
        if err["type"] == "extra_forbidden":
            allowed = _model_fields(Profile, loc[:-1])
            msg = f"unknown field{did_you_mean(loc[-1], allowed)}"
            if not did_you_mean(loc[-1], allowed):
                msg += "; vLLM flags without a typed field go under 'args:'" if len(loc) == 1 else ""
        elif err["type"] == "missing":
            msg = "is required" + (
                ": add 'model: <Hugging Face id or local directory>'" if loc == ("model",) else ""
            )
        else:
            msg = str(err["msg"])
            for prefix in ("Value error, ", "Assertion failed, "):
                if msg.startswith(prefix):
                    msg = msg[len(prefix) :]
            if err["type"] == "literal_error":
                msg = f"got {err.get('input')!r}: {msg}"
        problems.append(f"{where}: {field}: {msg}")
    return problems


def parse_profile(
    text: str, path: Path, overrides: dict[str, Any] | None = None
) -> tuple[Profile, tuple[str, ...]]:
    """Validate YAML text into a Profile; raises ProfileError naming file, line and field."""
    profile, warnings, _lines = parse_profile_lines(text, path, overrides)
    return profile, warnings


def parse_profile_lines(
    text: str, path: Path, overrides: dict[str, Any] | None = None
) -> tuple[Profile, tuple[str, ...], dict[tuple[str, ...], int]]:
    """`parse_profile`, also returning the line of each key."""
    try:
        node, data = safeyaml.compose(text, path)
    except safeyaml.YamlRefused as exc:
        raise ProfileError(str(path), exc.problems) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(
            str(path), [f"{path}:1: a profile is a mapping of fields (model: ..., port: ...)"]
        )
    lines = safeyaml.key_lines(node) if node is not None else {}
    nul = list(safeyaml.nul_strings(data))
    if nul:
        raise ProfileError(
            str(path),
            [f"{where_of(path, lines, loc)}: {'.'.join(loc)}: holds a NUL character (\\0): remove it"
             for loc in nul],
        )
    data = dict(data)
    data.setdefault("name", path.stem)
    if overrides:
        data = apply_overrides(data, overrides)
    source = "or a --set override" if overrides else ""
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(str(path), format_validation_error(exc, path, lines, source)) from None
    problems = []
    for loc, message in cross_check(profile):
        line_no = lines.get(loc) or lines.get(loc[:1])
        where = f"{path}:{line_no}" if line_no else str(path)
        if source:
            where = f"{where} ({source})"
        problems.append(f"{where}: {'.'.join(loc)}: {message}")
    if problems:
        raise ProfileError(str(path), problems)
    return profile, tuple(profile_warnings(profile, path, lines)), lines


def profile_warnings(profile: Profile, path: Path, lines: dict[tuple[str, ...], int]) -> list[str]:
    """Things that are allowed but risky."""
    warnings = []

    def at(key: str) -> str:
        line = lines.get((key,))
        return f"{path}:{line}" if line else str(path)

    if profile.host in ("0.0.0.0", "::") and not profile.api_key_env:
        warnings.append(
            f"{at('host')}: host: {profile.host} listens on every interface without an API key;"
            " set api_key_env to the NAME of a variable holding one"
        )
    if profile.trust_remote_code:
        warnings.append(
            f"{at('trust_remote_code')}: trust_remote_code: runs Python code shipped with the"
            " model; only use it for models you trust"
        )
    return warnings


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply `key=value` overrides (dotted keys reach into sections) to raw profile data."""
    result = dict(data)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        target = result
        for part in parts[:-1]:
            existing = target.get(part)
            existing = dict(existing) if isinstance(existing, dict) else {}
            target[part] = existing
            target = existing
        target[parts[-1]] = value
    return result


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """`--set key=value` strings to a mapping; values are read as YAML scalars."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: write it as key=value, e.g. --set max_model_len=8k")
        if any(not part.strip() for part in key.split(".")):
            raise UsageError(
                f"--set {item!r}: {key.strip()!r} has an empty part: dotted keys name a field"
                " and its key, e.g. --set args.seed=1"
            )
        try:  # bounded like a file: `--set 'args={a: &a [*a]}'` is kept as the text it is
            value = safeyaml.compose(raw, Path("--set"))[1] if raw.strip() else ""
        except safeyaml.YamlRefused:
            value = raw
        result[key.strip()] = value
    return result


def profile_files(settings: Settings) -> list[Path]:
    """Profile files in lookup order; an earlier directory wins for the same name."""
    files = []
    for directory in settings.profiles_dirs:
        if directory.is_dir():
            try:
                files += sorted(p for p in directory.iterdir() if p.suffix in PROFILE_SUFFIXES)
            except OSError as exc:
                raise UsageError(
                    f"cannot list the profiles directory {directory}: {exc.strerror or exc}"
                    " (fix its permissions, or leave it out of --profiles-dir / $VLLMTUI_PROFILES)"
                ) from None
    return files


def read_profile_text(path: Path) -> str:
    """A profile file's text (`core.safeyaml.read_text`); ProfileError naming it otherwise."""
    try:
        return safeyaml.read_text(path, "a profile: a .yaml text file")
    except safeyaml.YamlRefused as exc:
        raise ProfileError(str(path), exc.problems) from None


def load_profile_file(path: Path, overrides: dict[str, Any] | None = None) -> LoadedProfile:
    profile, warnings, lines = parse_profile_lines(read_profile_text(path), path, overrides)
    return LoadedProfile(profile, path, warnings, lines)


class ProfileCache:
    """Profile files as last parsed, by path, with the stat that was parsed (mtime, size,
    inode): a file that has not changed is not read and validated again (the TUI re-reads its
    profiles every few seconds; 50 profiles cost ~0.1 s each time)."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[tuple[int, int, int], LoadedProfile | ProfileError]] = {}

    def load(self, path: Path) -> LoadedProfile:
        """`load_profile_file(path)`, or what it gave for the file as it is now."""
        try:
            st = path.stat()
        except OSError:
            self._files.pop(path, None)
            return load_profile_file(path)  # it says what is wrong
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        known = self._files.get(path)
        if known is not None and known[0] == stamp:
            if isinstance(known[1], ProfileError):
                raise known[1].with_traceback(None)
            return known[1]
        try:
            loaded = load_profile_file(path)
        except ProfileError as exc:
            self._files[path] = (stamp, exc)
            raise
        self._files[path] = (stamp, loaded)
        return loaded


def discover(
    settings: Settings, cache: ProfileCache | None = None
) -> tuple[list[LoadedProfile], list[BrokenProfile]]:
    """Every profile found, valid or not. Duplicated names: the first directory wins.
    `cache`: files unchanged since it last parsed them are not parsed again."""
    seen: set[str] = set()
    good: list[LoadedProfile] = []
    broken: list[BrokenProfile] = []
    load = load_profile_file if cache is None else cache.load
    for path in profile_files(settings):
        try:
            loaded = load(path)
            name = loaded.profile.name
        except ProfileError as exc:
            name = path.stem
            if name not in seen:
                broken.append(BrokenProfile(name, path, exc))
            seen.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        good.append(loaded)
    return good, broken


def find_profile(
    settings: Settings, name: str, overrides: dict[str, Any] | None = None
) -> LoadedProfile:
    """Load one profile by name (or by path), with overrides applied."""
    candidate = Path(name).expanduser()
    if candidate.suffix in PROFILE_SUFFIXES and candidate.is_file():
        return load_profile_file(candidate, overrides)
    good, broken = discover(settings)
    for loaded in good:
        if loaded.profile.name == name:
            if overrides:
                return load_profile_file(loaded.path, overrides)
            return loaded
    for bad in broken:
        if bad.name == name:
            if overrides:
                return load_profile_file(bad.path, overrides)
            raise bad.error
    names = sorted([p.profile.name for p in good] + [b.name for b in broken])
    hint = did_you_mean(name, names)
    where = ", ".join(str(d) for d in settings.profiles_dirs)
    raise UsageError(
        f"no profile named {name!r}{hint}. Profiles are looked up in: {where}."
        " `vllmtui profiles` lists them."
    )


def port_clashes(profiles: list[LoadedProfile]) -> dict[str, list[str]]:
    """Profile names that share a host port with another profile, by name."""
    by_port: dict[int, list[LoadedProfile]] = {}
    for loaded in profiles:
        by_port.setdefault(loaded.profile.port, []).append(loaded)
    clashes: dict[str, list[str]] = {}
    for group in by_port.values():
        if len(group) > 1:
            for loaded in group:
                clashes[loaded.profile.name] = [
                    o.profile.name for o in group if o.profile.name != loaded.profile.name
                ]
    return clashes
