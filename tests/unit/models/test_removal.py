"""Removing models from a real hub cache (`models.removal`): huggingface_hub's own deletion
strategy, one revision leaving the blobs another still links to, the refusals (unknown model
or revision, a local directory, a running server, a process holding a file) changing nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import wait_for
from tests.support.hf_cache import add_revision, hub, repo_dir, tiny_model  # noqa: F401
from vllmtui.core.errors import UsageError
from vllmtui.core.humanize import fmt_bytes
from vllmtui.core.settings import Settings
from vllmtui.models.cache import CacheReport, cache_report
from vllmtui.models.removal import plan_removal, remove
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.model_use import servers_using
from vllmtui.servers.status import ServerStatus


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def cached(hub: Path) -> tuple[Path, Path]:  # noqa: F811
    """org/tiny at main and at v2 (v2 shares every file but the weights); their snapshots."""
    main = tiny_model(weights=4096)
    snap_main = add_revision(hub, "org/tiny", main)
    snap_v2 = add_revision(hub, "org/tiny", {**main, "model.safetensors": b"\x02" * 8192}, ref="v2")
    add_revision(hub, "org/other", tiny_model(weights=100))
    return snap_main, snap_v2


def read(settings: Settings, tmp_path: Path, **profiles: dict[str, object]) -> CacheReport:
    import yaml

    loaded = []
    for i, (name, fields) in enumerate(profiles.items()):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"port": 8100 + i, **fields}))
        loaded.append(load_profile_file(path))
    return cache_report(settings, loaded)


def test_one_revision_goes_and_the_blobs_it_shares_stay(cached, hub: Path, settings: Settings,  # noqa: F811
                                                        tmp_path: Path) -> None:
    snap_main, snap_v2 = cached
    before = files_of(snap_main)
    removal = plan_removal(read(settings, tmp_path), "org/tiny", "v2")
    assert removal.freed_bytes == 8192 and not removal.whole_repo
    question = removal.question()
    assert question.startswith(f"remove org/tiny revision {snap_v2.name[:7]} (v2) (1 of 2 revisions) from {hub}?")
    assert question.endswith(f"This frees {fmt_bytes(8192)}.")

    result = remove(removal)

    assert result.freed_bytes == 8192 and result.left == ()
    assert not snap_v2.exists() and not (repo_dir(hub, "org/tiny") / "refs" / "v2").exists()
    assert files_of(snap_main) == before  # config, tokenizer and main's weights still read
    after = cache_report(settings, []).find("org/tiny")
    assert after is not None and [r.refs for r in after.revisions] == [("main",)]


def test_the_whole_model_goes(cached, hub: Path, settings: Settings, tmp_path: Path) -> None:  # noqa: F811
    report = read(settings, tmp_path)
    model = report.find("org/tiny")
    assert model is not None
    removal = plan_removal(report, "org/tiny")
    assert removal.whole_repo and removal.freed_bytes == model.size_on_disk
    assert "(all 2 revisions)" in removal.question()
    remove(removal)
    assert not repo_dir(hub, "org/tiny").exists() and repo_dir(hub, "org/other").exists()


def test_wrong_names_change_nothing(cached, hub: Path, settings: Settings, tmp_path: Path) -> None:  # noqa: F811
    local = tmp_path / "local-model"
    local.mkdir()
    (local / "config.json").write_text("{}")
    report = read(settings, tmp_path, mine={"model": str(local)})
    with pytest.raises(UsageError, match=r"no model 'org/tiyn' in the Hugging Face cache .*did you mean org/tiny\?"):
        plan_removal(report, "org/tiyn")
    with pytest.raises(UsageError, match=r"org/tiny has no revision .v9. .*cached: .*\(v2\), .*\(main\)\); nothing removed"):
        plan_removal(report, "org/tiny", "v9")
    with pytest.raises(UsageError, match="is a local directory, not a Hugging Face cache entry"):
        plan_removal(report, str(local))
    assert len(list((repo_dir(hub, "org/tiny") / "snapshots").iterdir())) == 2 and local.exists()


def test_refused_while_a_running_server_uses_it(cached, hub: Path, settings: Settings,  # noqa: F811
                                                tmp_path: Path) -> None:
    report = read(settings, tmp_path, tiny={"model": "org/tiny"}, tiny2={"model": "org/tiny", "revision": "v2"})
    running = [ServerStatus("tiny", "ready", port=8100), ServerStatus("tiny2", "stopped")]
    whole = plan_removal(report, "org/tiny")
    assert servers_using(whole, running) == ["tiny (port 8100)"]
    with pytest.raises(UsageError) as refused:
        remove(whole, servers_using(whole, running))
    assert str(refused.value) == ("org/tiny is in use by the running server tiny (port 8100): stop it first"
                                  " (`vllmtui stop tiny`, or x in the TUI); nothing removed")
    assert repo_dir(hub, "org/tiny").exists()
    only_v2 = plan_removal(report, "org/tiny", "v2")  # tiny loads main: v2 may go
    assert servers_using(only_v2, running) == []


def test_refused_while_a_process_has_a_file_open(cached, hub: Path, settings: Settings,  # noqa: F811
                                                 tmp_path: Path) -> None:
    weights = cached[0] / "model.safetensors"
    reader = subprocess.Popen([sys.executable, "-c", f"f = open({str(weights)!r}, 'rb'); print('open', flush=True);"
                               " import time; time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        removal = plan_removal(read(settings, tmp_path), "org/tiny")
        with pytest.raises(UsageError, match=rf"its files are open in pid {reader.pid} .*end those first; nothing removed"):
            remove(removal)
        assert weights.exists()
    finally:
        reader.kill()
        reader.wait()
    wait_for(lambda: reader.poll() is not None)
    remove(plan_removal(read(settings, tmp_path), "org/tiny"))
    assert not repo_dir(hub, "org/tiny").exists()
