"""Offline starts (`models.offline`, `profiles.launch.offline_setting`, core.box_settings): what
vLLM gets in its environment, and the pre-start check that names a missing file at once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.support.hf_cache import add_revision, hub, tiny_model  # noqa: F401
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.models.offline import offline_problems
from vllmtui.planner.gpu import GpuSnapshot
from vllmtui.profiles.launch import resolve
from vllmtui.profiles.loading import load_profile_file
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.checks import start_problems


def write(folder: Path, name: str, **fields: object) -> LoadedProfile:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"model": "org/tiny", "port": 8200, **fields}, sort_keys=False))
    return load_profile_file(path)


BOX_OFFLINE = {"offline": True, "offline_from": "/etc/box/settings.yaml:1"}


@pytest.mark.parametrize(("fields", "box", "expected"), [
    ({"offline": True}, False, "1"),
    ({}, True, "1"),
    ({"offline": False}, True, "0"),  # the profile beats the box
    ({"env": {"HF_HUB_OFFLINE": "1"}}, False, "1"),  # the other variable follows the one set
    ({"env": {"HF_HUB_OFFLINE": "0"}}, True, "0"),
])
def test_offline_sets_both_variables_for_vllm(tmp_path: Path, settings: Settings, fields: dict[str, object],
                                              box: bool, expected: str) -> None:
    loaded = write(tmp_path, "p", **fields)
    spec = resolve(loaded.profile, replace(settings, **BOX_OFFLINE) if box else settings)
    assert spec.env["HF_HUB_OFFLINE"] == expected and spec.env["TRANSFORMERS_OFFLINE"] == expected


def test_online_sets_neither(tmp_path: Path, settings: Settings) -> None:
    spec = resolve(write(tmp_path, "p").profile, settings)
    assert "HF_HUB_OFFLINE" not in spec.env and "TRANSFORMERS_OFFLINE" not in spec.env


def test_offline_with_every_file_is_fine(hub: Path, tmp_path: Path, settings: Settings) -> None:  # noqa: F811
    add_revision(hub, "org/tiny", tiny_model(shards=2))
    assert offline_problems(write(tmp_path, "p", offline=True), settings) == []


def test_a_missing_shard_is_named_with_the_profile_file_and_the_fix(hub: Path, tmp_path: Path,  # noqa: F811
                                                                    settings: Settings) -> None:
    snapshot = add_revision(hub, "org/tiny", tiny_model(shards=3))
    (snapshot / "model-00002-of-00003.safetensors").unlink()
    loaded = write(tmp_path, "tiny", offline=True)

    problems = offline_problems(loaded, settings)

    assert len(problems) == 1
    problem = problems[0]
    assert problem.level == "error" and problem.field == "model" and problem.where == f"{loaded.path}:1"
    text = problem.line()
    assert "org/tiny (revision main) runs offline (`offline: true` in the profile)" in text
    assert f"the cache ({snapshot}) lacks model-00002-of-00003.safetensors:" in text
    assert "`vllmtui pull tiny`" in text and "set `offline: false`" in text
    # `vllmtui check` and `vllmtui start` use the same checks: the start is refused before tmux
    found = start_problems(loaded, settings, snapshot=GpuSnapshot(error="no GPUs here"))
    assert problem in found


def test_a_model_not_in_the_cache_and_a_missing_tokenizer(hub: Path, tmp_path: Path,  # noqa: F811
                                                          settings: Settings) -> None:
    box = replace(settings, **BOX_OFFLINE)
    absent = offline_problems(write(tmp_path, "away", model="org/absent"), box)
    assert len(absent) == 1
    assert "runs offline (the box is offline (/etc/box/settings.yaml:1))" in absent[0].message
    assert "no snapshot of revision main is in the cache" in absent[0].message
    add_revision(hub, "org/tiny", tiny_model(tokenizer=False))
    lacking = offline_problems(write(tmp_path, "tok", offline=True), settings)
    assert len(lacking) == 1 and "lacks a tokenizer (tokenizer.json" in lacking[0].message


def test_online_checks_no_files(hub: Path, tmp_path: Path, settings: Settings) -> None:  # noqa: F811
    assert offline_problems(write(tmp_path, "p", model="org/absent"), settings) == []
    assert offline_problems(write(tmp_path, "q", model="org/absent", offline=False),
                            replace(settings, **BOX_OFFLINE)) == []


# ---------------------------------------------------------------- the box's settings.yaml


def box(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "settings.yaml").write_text(text)
    monkeypatch.setenv("VLLMTUI_CONFIG_DIR", str(config))
    monkeypatch.delenv("VLLMTUI_OFFLINE", raising=False)
    return Settings.from_env()


def test_the_box_settings_file_switches_offline_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = box(tmp_path, "# the whole box\noffline: true\n", monkeypatch)
    assert settings.offline and settings.offline_from == f"{tmp_path}/config/settings.yaml:2"
    monkeypatch.setenv("VLLMTUI_OFFLINE", "0")
    assert not Settings.from_env().offline  # the variable beats the file
    assert not box(tmp_path, "offline: false\n", monkeypatch).offline
    assert not box(tmp_path, "", monkeypatch).offline


@pytest.mark.parametrize(("text", "message"), [
    ("ofline: true\n", r"settings.yaml:1: ofline: not a setting \(did you mean offline\?\)"),
    ("\noffline: maybe\n", r"settings.yaml:2: offline: 'maybe' is not true or false \(write `offline: true`"),
    ("- offline\n", r"settings.yaml:1: expected lines such as 'offline: true' \(fix or delete the file\)"),
    ("offline: [true\n", r"settings.yaml.*\(fix or delete it\)"),
])
def test_a_wrong_settings_file_names_the_line_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        box(tmp_path, text, monkeypatch)


def test_a_wrong_offline_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLMTUI_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("VLLMTUI_OFFLINE", "sometimes")
    with pytest.raises(UsageError, match=r"\$VLLMTUI_OFFLINE='sometimes': write 1 \(offline\) or 0 \(online\)"):
        Settings.from_env()
