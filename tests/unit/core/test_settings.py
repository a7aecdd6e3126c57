"""Where things live (core/settings.py): configured paths are absolute; `check_dirs` names each
directory that cannot be one, where it was set and the fix, and changes nothing but the state
directory it makes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vllmtui.core.settings import Settings, check_dirs


def test_configured_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VLLMTUI_DATA_DIR", "data")
    s = Settings.from_env(["profs"], "state")
    # a tmux pane (the log pipe) and other vllmtui instances run in other directories
    assert (s.state_dir, s.data_dir, s.profiles_dirs[0]) == (
        tmp_path / "state", tmp_path / "data", tmp_path / "profs")


def test_check_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VLLMTUI_STATE_DIR", "VLLMTUI_DATA_DIR", "VLLMTUI_CONFIG_DIR", "VLLMTUI_PROFILES"):
        monkeypatch.delenv(name, raising=False)
    a_file = tmp_path / "f"
    a_file.write_text("")
    ok = replace(Settings(), state_dir=tmp_path / "state", config_dir=tmp_path / "cfg",
                 data_dir=tmp_path / "data")
    assert check_dirs(ok) == []
    assert (tmp_path / "state").is_dir() and not (tmp_path / "cfg").exists()  # only the state dir is made
    assert check_dirs(replace(ok, config_dir=a_file)) == [
        f"the config directory {a_file} is a file, not a directory: point $VLLMTUI_CONFIG_DIR at a directory"]
    monkeypatch.setenv("VLLMTUI_DATA_DIR", str(a_file / "x"))
    assert check_dirs(replace(ok, data_dir=a_file / "x")) == [
        f"$VLLMTUI_DATA_DIR {a_file / 'x'} cannot be created: {a_file} is a file:"
        " point $VLLMTUI_DATA_DIR at a directory"]
    monkeypatch.delenv("VLLMTUI_DATA_DIR")
    bad_state = replace(ok, state_dir=tmp_path / "new" / "state")
    (tmp_path / "new").write_text("")
    assert check_dirs(bad_state, state_option=str(bad_state.state_dir)) == [
        f"--state-dir {bad_state.state_dir} cannot be created: {tmp_path / 'new'} is a file:"
        " give a writable directory with --state-dir DIR or $VLLMTUI_STATE_DIR"]
    assert check_dirs(ok, profiles_options=[str(tmp_path / "none")]) == [
        f"--profiles-dir {tmp_path / 'none'} does not exist: give a directory of profiles"]
