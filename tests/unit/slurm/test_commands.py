"""Running Slurm's commands: each way they fail becomes a message that says what to do. The
commands here are small scripts on PATH that print what Slurm 22.05 printed in those cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtui.slurm import commands
from vllmtui.slurm.commands import SlurmError


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("SLURM_CONF", raising=False)
    return folder


def fake(folder: Path, name: str, stderr: str, code: int = 1, stdout: str = "") -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\nprintf '%s' '{stdout}'\nprintf '%s\\n' '{stderr}' >&2\nexit {code}\n")
    path.chmod(0o755)


def test_a_missing_command_says_what_to_install(fake_bin: Path) -> None:
    with pytest.raises(SlurmError, match=r"sbatch not found: install Slurm's client commands \(Debian/Ubuntu:"
                                         r" apt-get install slurm-client.*or run vllmtui on a login node"):
        commands.run(["sbatch", "--parsable", "job.sbatch"])


def test_a_slurm_conf_that_does_not_exist_is_named_at_once(fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(fake_bin, "squeue", "never run", stdout="")
    monkeypatch.setenv("SLURM_CONF", "/nowhere/slurm.conf")
    with pytest.raises(SlurmError, match="SLURM_CONF names /nowhere/slurm.conf, which does not exist"):
        commands.run(["squeue", "-h"])


@pytest.mark.parametrize(("stderr", "words"), [
    ("squeue: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n"
     "squeue: fatal: Could not establish a configuration source", "find no cluster configuration: set SLURM_CONF"),
    ("squeue: error: ClusterName needs to be specified\nsqueue: fatal: Unable to process configuration file",
     "find no cluster configuration"),
    ("slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
     r"the Slurm controller does not answer \(slurm_load_jobs error: .*connect failure\)\): check `scontrol ping`"),
    ("squeue: error: If munged is up, restart with --num-threads=10\nsqueue: error: Munge encode failed:"
     " Failed to access \"/run/munge/munge.socket.2\": No such file or directory (Munge socket)",
     "authentication \\(munge\\) failed"),
    ("sbatch: error: invalid partition specified: nope\n"
     "sbatch: error: Batch job submission failed: Invalid partition name specified",
     "squeue failed: sbatch: error: Batch job submission failed: Invalid partition name specified"),
    ("", "squeue failed: no error message"),
])
def test_slurms_errors_are_explained(fake_bin: Path, stderr: str, words: str) -> None:
    fake(fake_bin, "squeue", stderr)
    with pytest.raises(SlurmError, match=words) as err:
        commands.run(["squeue", "-h"])
    assert err.value.stderr.strip() == stderr.strip()


def test_accepted_exit_codes_and_the_added_env(fake_bin: Path) -> None:
    path = fake_bin / "scancel"
    path.write_text("#!/bin/sh\necho \"$EXTRA_VAR\"\nexit 1\n")
    path.chmod(0o755)
    done = commands.run(["scancel", "1"], env={"EXTRA_VAR": "carried"}, ok_codes=(0, 1))
    assert (done.returncode, done.stdout) == (1, "carried\n")


def test_a_command_that_hangs_is_given_up(fake_bin: Path) -> None:
    path = fake_bin / "squeue"
    path.write_text("#!/bin/sh\nexec /bin/sleep 10\n")
    path.chmod(0o755)
    with pytest.raises(SlurmError, match="squeue did not answer within 0.3 s"):
        commands.run(["squeue"], timeout=0.3)
