"""gateway.yaml and the profile's gateway policies (idle, restart), validated like profiles:
every problem as file:line: field: message, nothing used from a file with problems."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from vllmtui.core.errors import ProfileError
from vllmtui.core.settings import Settings
from vllmtui.profiles.gateway_config import GatewayConfig, load_gateway, served_profiles
from vllmtui.profiles.loading import discover, load_profile_file
from vllmtui.profiles.model import Profile


@pytest.fixture
def gsettings(tmp_path: Path) -> Settings:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "config").mkdir()
    return replace(Settings(), profiles_dirs=(tmp_path / "profiles",), config_dir=tmp_path / "config",
                   state_dir=tmp_path / "state")


def _write(settings: Settings, text: str) -> Path:
    path = settings.config_dir / "gateway.yaml"
    path.write_text(text)
    return path


def _profile(settings: Settings, name: str) -> None:
    (settings.profiles_dirs[0] / f"{name}.yaml").write_text(f"name: {name}\nmodel: m/{name}\n")


def test_no_file_means_the_defaults(gsettings):
    loaded, problems = load_gateway(gsettings)
    assert problems == [] and not loaded.exists
    assert loaded.config == GatewayConfig()
    assert (loaded.config.host, loaded.config.port) == ("127.0.0.1", 8080)
    assert loaded.config.base_url == "http://127.0.0.1:8080/v1"


def test_settings_and_durations(gsettings):
    _profile(gsettings, "a")
    _profile(gsettings, "b")
    _write(gsettings, "host: 0.0.0.0\nport: 9000\napi_key_env: GW_KEY\nprofiles: [b]\n"
                      "start_timeout: 5m\nidle_check: 30s\nretry_after: 12\n")
    profiles, broken = discover(gsettings)
    loaded, problems = load_gateway(gsettings, profiles, broken)
    assert problems == []
    c = loaded.config
    assert (c.port, c.api_key_env, c.start_timeout, c.idle_check, c.retry_after) == (9000, "GW_KEY", 300.0, 30.0, 12)
    assert c.base_url == "http://127.0.0.1:9000/v1"  # a client here reaches 0.0.0.0 on loopback
    assert [p.profile.name for p in served_profiles(c, profiles)] == ["b"]
    assert [p.profile.name for p in served_profiles(GatewayConfig(), profiles)] == ["a", "b"]


@pytest.mark.parametrize(("text", "expected"), [
    ("port: 70000\n", r"gateway.yaml:1: port: Input should be less than or equal to 65535"),
    ("host: 127.0.0.1\nprot: 9000\n", r"gateway.yaml:2: prot: unknown setting \(did you mean port\?\)"),
    ("api_key_env: sk-123abc\n", r"gateway.yaml:1: api_key_env: must be the NAME of an environment variable"),
    ("host: 'not a host!'\n", r"gateway.yaml:1: host: 'not a host!' is not an IP address or host name"),
    ("start_timeout: soon\n", r"gateway.yaml:1: start_timeout: 'soon' is not a duration"),
    ("start_timeout: -1\n", r"gateway.yaml:1: start_timeout: Input should be greater than 0"),
    ("idle_check: .inf\n", r"gateway.yaml:1: idle_check:"),
    ("- port\n", r"gateway.yaml:1: write a mapping of settings"),
    ("port: [1\n", r"gateway.yaml:1:"),
    ("port: 1\nport: 2\n", r"gateway.yaml:2: port: given twice"),
    ("tunnels:\n  - destination: box\n    direction: sideways\n", r"gateway.yaml:3: tunnels.0.direction:"),
])
def test_problems_name_the_file_line_and_field(gsettings, text, expected):
    _write(gsettings, text)
    loaded, problems = load_gateway(gsettings)
    assert problems, text
    assert any(re.search(expected, p) for p in problems), problems
    assert loaded.config == GatewayConfig()  # nothing of a bad file is used


def test_a_profile_not_found_is_named_with_a_suggestion(gsettings):
    _profile(gsettings, "qwen-7b")
    _write(gsettings, "profiles:\n  - qwen-7b\n  - qwen-7\n")
    profiles, broken = discover(gsettings)
    _loaded, problems = load_gateway(gsettings, profiles, broken)
    assert problems == [f"{gsettings.config_dir / 'gateway.yaml'}:3: profiles.1: no profile named"
                        " 'qwen-7' (did you mean qwen-7b?)"]


def test_idle_and_restart_shorthands():
    p = Profile(name="a", model="m", idle="stop 90s", restart="on-failure")
    assert (p.idle.action, p.idle.after) == ("stop", 1.5)
    assert (p.restart.policy, p.restart.limit, p.restart.window, p.restart.backoff) == ("on-failure", 3, 10.0, 5.0)
    p = Profile(name="a", model="m", idle="keep")
    assert p.idle.action == "keep" and p.restart.policy == "never"
    p = Profile(name="a", model="m", enable_sleep_mode=True, idle={"action": "sleep", "after": "1h", "level": 2})
    assert (p.idle.after, p.idle.level, p.sleep_mode) == (60.0, 2, True)
    p = Profile(name="a", model="m", args={"enable-sleep-mode": True}, idle="sleep 5")
    assert p.idle.after == 5.0


@pytest.mark.parametrize(("text", "expected"), [
    ("idle: sleep 10m\n", r":3: idle: sleep needs vLLM's sleep mode: add `enable_sleep_mode: true`"),
    ("idle: nap\n", r":3: idle: 'nap': write keep, 'sleep 10m' or 'stop 30m'"),
    ("idle: {action: stop, after: 0}\n", r":3: idle.after: Input should be greater than 0"),
    ("idle: {action: sleep, level: 3}\nenable_sleep_mode: true\n", r":3: idle.level:"),
    ("restart: always\n", r":3: restart: 'always': write never or on-failure"),
    ("restart: {policy: on-failure, limit: 0}\n", r":3: restart.limit: Input should be greater than or equal to 1"),
    ("restart: {policy: on-failure, window: forever}\n", r":3: restart.window: 'forever' is not a duration"),
    ("restart: {policy: on-failure, limits: 3}\n", r":3: restart.limits:"),
])
def test_policy_problems_name_the_line(tmp_path, text, expected):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nmodel: m\n" + text)
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    assert re.search(expected, str(info.value)), str(info.value)


def test_gateway_is_not_a_profile_name():
    with pytest.raises(ValueError, match="kept for the gateway's tmux session"):
        Profile(name="gateway", model="m")
