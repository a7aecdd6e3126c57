"""The model files at a glance (`models.cache.cache_report`, `models.listing`) over a real hub
cache laid out in the test's folder (tests/support/hf_cache.py) and read by huggingface_hub."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from tests.support.hf_cache import add_revision, hub, repo_dir, set_used, tiny_model  # noqa: F401
from vllmtui.core.settings import Settings
from vllmtui.models.cache import cache_report
from vllmtui.models.listing import not_cached_lines, report_rows, table, totals_text
from vllmtui.profiles.loading import load_profile_file
from vllmtui.profiles.model import LoadedProfile

DAY = 86400.0


def profile(folder: Path, name: str, **fields: object) -> LoadedProfile:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"port": 8000 + len(name), **fields}))
    return load_profile_file(path)


def two_revisions(hub: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:  # noqa: F811
    """org/tiny at main (4 KiB of weights) and v2 (8 KiB of other weights, the rest shared)."""
    main = tiny_model(weights=4096)
    v2 = {**main, "model.safetensors": b"\x02" * 8192}
    add_revision(hub, "org/tiny", main)
    add_revision(hub, "org/tiny", v2, ref="v2")
    return main, v2


def test_lists_every_model_with_sizes_revisions_profiles_and_totals(hub: Path, tmp_path: Path,  # noqa: F811
                                                                    settings: Settings) -> None:
    main, v2 = two_revisions(hub)
    add_revision(hub, "org/sharded", tiny_model(weights=1000, shards=3))
    set_used(repo_dir(hub, "org/sharded"), time.time() - 3 * DAY)
    local = tmp_path / "my-model"
    local.mkdir()
    (local / "config.json").write_bytes(b"{}" * 50)
    (local / "model.safetensors").write_bytes(b"\0" * 3000)
    folder = tmp_path / "p"
    folder.mkdir()
    profiles = [profile(folder, "tiny", model="org/tiny"), profile(folder, "tinyv2", model="org/tiny", revision="v2"),
                profile(folder, "mine", model=str(local)), profile(folder, "gone", model="org/not-here")]

    report = cache_report(settings, profiles)

    assert [m.repo_id for m in report.models] == ["org/sharded", "org/tiny", str(local)]
    tiny = report.find("org/tiny")
    assert tiny is not None and tiny.kind == "hub" and tiny.cache_dir == hub
    shared = sum(len(c) for n, c in main.items() if n != "model.safetensors")
    assert tiny.size_on_disk == shared + 4096 + 8192  # a blob both revisions link to counts once
    assert sorted(tiny.profiles) == ["tiny", "tinyv2"]
    by_ref = {r.refs: r for r in tiny.revisions}
    assert by_ref[("main",)].profiles == ("tiny",) and by_ref[("v2",)].profiles == ("tinyv2",)
    assert by_ref[("v2",)].size_on_disk == shared + 8192 and by_ref[("v2",)].files == len(v2)
    assert by_ref[("main",)].label == by_ref[("main",)].commit[:7] + " (main)"
    sharded = report.find("org/sharded")
    assert sharded is not None and sharded.profiles == ()
    assert sharded.last_used is not None and abs(sharded.last_used - (time.time() - 3 * DAY)) < 5
    mine = report.find(str(local))
    assert mine is not None and mine.kind == "local" and mine.size_on_disk == 3100 and mine.profiles == ("mine",)
    assert report.total_bytes == sum(m.size_on_disk for m in report.models)
    assert [n.repo_id for n in report.not_cached] == ["org/not-here"]
    assert report.free_bytes is not None and report.free_bytes > 0
    assert report.disks and report.disks[0].total_bytes >= report.disks[0].free_bytes
    assert report.problems == ()
    data = json.loads(json.dumps(report.to_json()))
    assert data["models"][1]["repo_id"] == "org/tiny" and len(data["models"][1]["revisions"]) == 2


def test_the_listing_rows_and_totals(hub: Path, tmp_path: Path, settings: Settings) -> None:  # noqa: F811
    two_revisions(hub)
    set_used(repo_dir(hub, "org/tiny"), time.time() - 2 * DAY - 60)
    folder = tmp_path / "p"
    folder.mkdir()
    report = cache_report(settings, [profile(folder, "tiny", model="org/tiny"),
                                     profile(folder, "nope", model="org/absent")])

    rows = report_rows(report, time.time())
    assert [r.revision for r in rows][0] == "2 revisions"
    assert rows[0].model == "org/tiny" and rows[0].last_used.startswith("2d0h0") and rows[0].profiles == "tiny"
    assert {r.revision.split(" ")[1] for r in rows[1:]} == {"(main)", "(v2)"}
    lines = table(rows)
    assert lines[0].split() == ["MODEL", "REVISION", "SIZE", "LAST", "USED", "PROFILES"]
    assert "KiB" in lines[1]
    totals = totals_text(report)
    assert totals.startswith("total: ") and "1 in the cache" in totals and " free of " in totals
    assert not_cached_lines(report) == ["not in the cache: org/absent (profile nope): `vllmtui pull nope` fetches it"]


def test_an_empty_or_missing_cache_is_no_error(tmp_path: Path, settings: Settings,
                                               monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "never-made"))
    report = cache_report(settings, [])
    assert report.models == () and report.problems == () and report.total_bytes == 0
    assert report.free_bytes is not None  # the nearest existing parent's filesystem


def test_a_damaged_entry_is_a_problem_line_not_an_error(hub: Path, settings: Settings) -> None:  # noqa: F811
    two_revisions(hub)
    (hub / "models--org--broken").mkdir()  # no snapshots/ folder: huggingface_hub skips it
    report = cache_report(settings, [])
    assert [m.repo_id for m in report.models] == ["org/tiny"]
    assert len(report.problems) == 1 and "models--org--broken" in report.problems[0]
    assert "pull the model again" in report.problems[0]


def test_a_profiles_download_dir_is_read_too(hub: Path, tmp_path: Path, settings: Settings) -> None:  # noqa: F811
    other = tmp_path / "big-disk"
    add_revision(other, "org/elsewhere", tiny_model())
    folder = tmp_path / "p"
    folder.mkdir()
    report = cache_report(settings, [profile(folder, "far", model="org/elsewhere",
                                             args={"download-dir": str(other)})])
    assert report.cache_dirs == (hub, other)
    found = report.find("org/elsewhere")
    assert found is not None and found.cache_dir == other and found.profiles == ("far",)
