"""`vllmtui pull` and a start that pulls first, with the real huggingface_hub client against the
hub STAND-IN (tests/standin/hf_hub_standin.py) on loopback: only the files vLLM reads, progress,
resume after a dropped connection and after an interrupted run (a Range request), the
free-space refusal before the first byte, a gated repo without a token, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.standin.hf_hub_standin import HubStandin, scan
from tests.support.helpers import ROOT, wait_for
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.models import hub as hubmod
from vllmtui.models.progress import Snapshot
from vllmtui.models.pull import plan_pull, pull
from vllmtui.servers.fleet import Fleet

WEIGHTS = 3_000_000  # > huggingface_hub's read step here (1 MiB): a drop loses at most that


def make_repo(folder: Path, weights: int = WEIGHTS) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(os.urandom(weights))
    (folder / "pytorch_model.bin").write_bytes(os.urandom(20_000))
    (folder / "README.md").write_text("# a model\n")
    (folder / "original").mkdir()
    (folder / "original" / "consolidated.pth").write_bytes(os.urandom(1000))
    return folder


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubStandin]:
    repos = [scan("org/tiny", make_repo(tmp_path / "repo")),
             scan("org/gated", make_repo(tmp_path / "gated-repo", 1000), gated=True),
             scan("org/huge", make_repo(tmp_path / "huge-repo", 1000),
                  declared={"model-00002-of-00002.safetensors": 10 * 10**15})]  # 10 PB
    with HubStandin(repos, token="hf_good") as server:
        yield server


def env_for(hub: HubStandin, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(cache), PYTHONUNBUFFERED="1", **extra)
    return env


def pull_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vllmtui", "pull", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def snapshot_dir(cache: Path, repo: str = "org/tiny") -> Path:
    root = cache / ("models--" + repo.replace("/", "--"))
    return root / "snapshots" / (root / "refs" / "main").read_text()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_only_what_vllm_reads_arrives_with_progress(hub: HubStandin, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hub.rate = 4_000_000  # ~0.75 s for the weights: a few progress readings
    plan = plan_pull("org/tiny", None, cache, None, env_for(hub, cache))
    seen: list[Snapshot] = []
    result = pull(plan, lambda snap, forced: seen.append(snap))
    files = sorted(p.relative_to(result.snapshot).as_posix() for p in result.snapshot.rglob("*"))
    assert files == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert sha(result.snapshot / "model.safetensors") == sha(tmp_path / "repo" / "model.safetensors")
    fetched = {str(r["path"]).rsplit("/", 1)[-1] for r in hub.requests if r["method"] == "GET"
               and "/resolve/" in str(r["path"])}
    assert fetched == {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    # config.json first (the planner reads it while the weights download)
    assert result.fetched_files[0] == "config.json" and result.fetched_files[-1] == "model.safetensors"
    moving = [s for s in seen if s.file == "model.safetensors" and s.rate]
    assert moving, "no progress reading with a rate during the weights"
    assert all(0 < s.done_bytes <= s.total_bytes == plan.choice.total_bytes for s in moving)
    assert any(s.eta is not None and s.eta > 0 for s in moving)
    assert 1e6 < (moving[-1].rate or 0) < 8e6  # about the stand-in's 4 MB/s
    assert "MB/s" in moving[-1].line() and "left" in moving[-1].line()
    assert (cache / "models--org--tiny" / "refs" / "main").read_text() == plan.listing.commit


def test_a_dropped_connection_resumes_with_a_range_request(hub: HubStandin, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hub.drop[("org/tiny", "model.safetensors")] = (1_500_000, 1)  # once, half way
    pull(plan_pull("org/tiny", None, cache, None, env_for(hub, cache)))
    gets = hub.downloads("model.safetensors")
    assert [g["range"] for g in gets] == [None, "bytes=1048576-"]
    assert gets[0]["sent"] == 1_500_000 and gets[1]["sent"] == WEIGHTS - 1_048_576
    assert sha(snapshot_dir(cache) / "model.safetensors") == sha(tmp_path / "repo" / "model.safetensors")


def test_an_interrupted_pull_resumes_in_the_next_run(hub: HubStandin, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = env_for(hub, cache)
    hub.rate = 500_000  # 6 s for the weights
    proc = subprocess.Popen([sys.executable, "-m", "vllmtui", "pull", "org/tiny"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    blobs = cache / "models--org--tiny" / "blobs"
    wait_for(lambda: any(p.name.endswith(".incomplete") and p.stat().st_size >= 1_048_576
                         for p in blobs.glob("*")) if blobs.is_dir() else False, 30, what="a partial file")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not (cache / "models--org--tiny" / "refs" / "main").exists()  # not complete: no ref
    partial = next(p for p in blobs.glob("*.incomplete"))
    have = partial.stat().st_size
    assert 0 < have < WEIGHTS
    hub.rate = None
    second = pull_cli(env, "org/tiny")
    assert second.returncode == 0, second.stderr
    last = hub.downloads("model.safetensors")[-1]
    assert last["range"] == f"bytes={have}-" and last["sent"] == WEIGHTS - have
    assert f"({have / 1e6:.1f}/3.0 MB there: resumes)" in second.stdout
    assert sha(snapshot_dir(cache) / "model.safetensors") == sha(tmp_path / "repo" / "model.safetensors")
    assert not list(blobs.glob("*.incomplete"))


def test_too_little_disk_is_refused_before_the_first_byte(hub: HubStandin, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = pull_cli(env_for(hub, cache), "org/huge")
    assert out.returncode == 1
    assert "org/huge needs 10.0 PB more but" in out.stderr and "free: free space there" in out.stderr
    assert "Traceback" not in out.stderr
    assert not [r for r in hub.requests if "/resolve/" in str(r["path"])]  # not one file asked for
    assert not (cache / "models--org--huge" / "snapshots").exists()


def test_a_gated_repo_without_a_token_names_the_variable(hub: HubStandin, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = pull_cli(env_for(hub, cache), "org/gated")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "org/gated is gated and no token was given" in out.stderr and "export HF_TOKEN=hf_..." in out.stderr
    out = pull_cli(env_for(hub, cache), "org/gated", "--token-env", "MY_HF")
    assert out.returncode == 2 and "environment variable MY_HF is not set" in out.stderr
    out = pull_cli(env_for(hub, cache, MY_HF="hf_wrong"), "org/gated", "--token-env", "MY_HF")
    assert out.returncode == 1 and "the token in MY_HF has no access to it" in out.stderr
    assert "hf_wrong" not in out.stderr + out.stdout  # the token is never printed
    out = pull_cli(env_for(hub, cache, MY_HF="hf_good"), "org/gated", "--token-env", "MY_HF")
    assert out.returncode == 0, out.stderr
    assert all(r["auth"] for r in hub.requests if "/resolve/org/gated" in str(r["path"]) or
               ("/org/gated/resolve/" in str(r["path"]) and r["method"] == "GET"))
    assert (snapshot_dir(cache, "org/gated") / "config.json").is_file()


@pytest.mark.parametrize(("args", "code", "says"), [
    (("org/none",), 1, "no model repo 'org/none' on"),
    (("org/tiny", "--revision", "v9"), 1, "org/tiny has no revision 'v9'"),
    (("not/a/repo!",), 2, "is neither a profile nor a Hugging Face repo id"),
    (("nosuchprofile",), 2, "no profile named 'nosuchprofile'"),
])
def test_bad_input_is_one_message(hub: HubStandin, tmp_path: Path, args: tuple[str, ...], code: int,
                                  says: str) -> None:
    out = pull_cli(env_for(hub, tmp_path / "cache"), *args)
    assert out.returncode == code and says in out.stderr and "Traceback" not in out.stderr


def test_an_unreachable_hub_and_offline_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_CACHE=str(tmp_path / "cache"))
    out = pull_cli(env, "org/tiny")
    assert out.returncode == 1 and "cannot reach http://127.0.0.1:9" in out.stderr
    with pytest.raises(UsageError, match="HF_HUB_OFFLINE is set"):
        plan_pull("org/tiny", None, tmp_path, None, {**env, "HF_HUB_OFFLINE": "1"})
    assert not hubmod.is_repo_id("./org/tiny")


def test_a_start_pulls_first_then_starts(hub: HubStandin, tmp_path: Path, settings: Settings,
                                         standin_profile: Callable[..., Path]) -> None:
    """The pull runs in the server's pane; its status says `downloading ...` meanwhile."""
    from vllmtui.profiles.loading import load_profile_file

    cache = tmp_path / "cache"
    hub.rate = 1_000_000  # 3 s of weights
    path = standin_profile("pulls", model="org/tiny",
                           env={"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(cache)})
    loaded = load_profile_file(path)
    fleet = Fleet(settings)
    said: list[str] = []
    result = fleet.start(loaded, [loaded], on_progress=said.append)
    assert any("pulls it first" in line for line in said)
    assert "vllmtui.models.pull_step" in result.spec.argv
    seen: list[tuple[str, str | None, str]] = []
    final = fleet.wait_ready(loaded, timeout=60,
                             on_change=lambda s: seen.append((s.state, s.phase_label, s.detail)))
    assert final.state == "ready", seen
    downloading = [d for state, _label, d in seen if state == "starting" and d.startswith("downloading ")]
    assert downloading, seen
    assert any("/3.0 MB, " in d and "/s" in d for d in downloading), downloading
    assert (snapshot_dir(cache) / "model.safetensors").is_file()
    progress = json.loads((result.run_dir / "pull.json").read_text())
    assert progress["state"] == "done"
    log = (result.run_dir / "server.log").read_text()
    assert "vllmtui: pulled org/tiny" in log


def test_a_start_whose_pull_fails_says_why(hub: HubStandin, tmp_path: Path, settings: Settings,
                                           standin_profile: Callable[..., Path]) -> None:
    from vllmtui.profiles.loading import load_profile_file

    path = standin_profile("gated", model="org/gated",
                           env={"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "cache")})
    loaded = load_profile_file(path)
    fleet = Fleet(settings)
    fleet.start(loaded, [loaded])
    final = fleet.wait_ready(loaded, timeout=60)
    assert final.state == "crashed"
    assert final.detail.startswith("download failed: org/gated is gated and no token was given")


def test_a_tokenizer_of_another_repo_is_pulled_too(tmp_path: Path, settings: Settings,
                                                   standin_profile: Callable[..., Path]) -> None:
    """A profile whose `tokenizer:` is another repo: the start's pull fetches that repo's
    tokenizer files (no weights) after the model, so vLLM can run offline on both."""
    from vllmtui.profiles.loading import load_profile_file

    tok = tmp_path / "tok-repo"
    tok.mkdir()
    (tok / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (tok / "tokenizer_config.json").write_text("{}")
    (tok / "model.safetensors").write_bytes(os.urandom(5000))  # weights it must leave on the hub
    cache = tmp_path / "cache"
    with HubStandin([scan("org/tiny", make_repo(tmp_path / "repo", 1000)), scan("org/tok", tok)]) as server:
        path = standin_profile("twotok", model="org/tiny", args={"tokenizer": "org/tok"},
                               env={"HF_ENDPOINT": server.url, "HF_HUB_CACHE": str(cache)})
        loaded = load_profile_file(path)
        fleet = Fleet(settings)
        result = fleet.start(loaded, [loaded])
        assert "--tokenizer-repo" in result.spec.argv and "org/tok" in result.spec.argv
        assert "--offline-after" in result.spec.argv
        final = fleet.wait_ready(loaded, timeout=60)
        assert final.state == "ready", final
        fetched = sorted(p.name for p in snapshot_dir(cache, "org/tok").iterdir())
        assert fetched == ["tokenizer.json", "tokenizer_config.json"]
        log = (result.run_dir / "server.log").read_text()
        assert "vllmtui: pulling org/tok" in log
