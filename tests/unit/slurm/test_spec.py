"""The profile's `runtime: {slurm: ...}` section: what it accepts, what it refuses and how it says so."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vllmtui.slurm.spec import SlurmSpec, check_time


def test_defaults_ask_for_one_node_of_the_default_partition() -> None:
    spec = SlurmSpec()
    assert (spec.partition, spec.nodes, spec.gpus_per_node, spec.time, spec.account, spec.extra) == (
        None, 1, None, None, None, [])
    assert spec.sbatch_options() == ["--nodes=1"]


def test_every_field_becomes_its_sbatch_option_in_order() -> None:
    spec = SlurmSpec.model_validate({"partition": "gpu", "nodes": 2, "gpus_per_node": 4, "time": "12:00:00",
                                     "account": "proj-1", "extra": ["--mem=64G", "--qos=high", "--exclusive"]})
    assert spec.gpus_per_node == "4"
    assert spec.sbatch_options() == ["--partition=gpu", "--nodes=2", "--gpus-per-node=4", "--time=12:00:00",
                                     "--account=proj-1", "--mem=64G", "--qos=high", "--exclusive"]


@pytest.mark.parametrize(("given", "written"), [
    (90, "90"), (90.0, "90"), ("90", "90"), ("30:00", "30:00"), ("12:00:00", "12:00:00"), ("100:00:00", "100:00:00"),
    ("2-0", "2-0"), ("1-12", "1-12"), ("1-12:30", "1-12:30"), ("0-01:00:00", "0-01:00:00"), ("2-00:00:00", "2-00:00:00"),
    ("UNLIMITED", "UNLIMITED"), ("infinite", "UNLIMITED"), (" 1:00:00 ", "1:00:00"),
])
def test_slurm_time_forms_are_accepted(given: Any, written: str) -> None:
    assert SlurmSpec(time=given).time == written


@pytest.mark.parametrize("given", ["1h", "12:60:00", "1:2:3:4", "-1", "1-", "1-24", "1-1:60", "0", "00:00:00",
                                   "0-0", "abc", "1.5", ":30", "12::00"])
def test_other_times_are_refused_with_the_forms_slurm_takes(given: str) -> None:
    with pytest.raises(ValidationError, match=r"is not a Slurm time limit: write minutes \(90\), MM:SS, HH:MM:SS"):
        SlurmSpec(time=given)


@pytest.mark.parametrize(("given", "words"), [
    (0, "give at least 1 minute"), (True, "is not a time limit"), (1.5, "is not a time limit"),
])
def test_time_numbers_are_whole_minutes(given: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_time(given)


@pytest.mark.parametrize(("given", "written"), [(4, "4"), ("4", "4"), ("a100:4", "a100:4"), ("h200_141g:8", "h200_141g:8")])
def test_gpus_per_node_is_a_count_or_type_and_count(given: Any, written: str) -> None:
    assert SlurmSpec(gpus_per_node=given).gpus_per_node == written


@pytest.mark.parametrize(("given", "words"), [
    ("four", "write a whole number \\(4\\) or TYPE:COUNT \\(a100:4\\)"), ("a100:", "TYPE:COUNT"),
    (1.5, "is not a GPU count"), (True, "is not a GPU count"), (0, "leave it out for a job without GPUs"),
    ("a100:0", "at least 1"),
])
def test_gpus_per_node_refusals(given: Any, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        SlurmSpec(gpus_per_node=given)


@pytest.mark.parametrize(("fields", "words"), [
    ({"nodes": 0}, "greater than or equal to 1"),
    ({"nodes": 1.5}, "is not a number of nodes"),
    ({"nodes": True}, "is not a number of nodes"),
    ({"partition": "gpu partition"}, "is not a Slurm name.*sinfo -s"),
    ({"account": "-A"}, "is not a Slurm name.*sacctmgr"),
    ({"partiton": "gpu"}, "Extra inputs are not permitted"),
])
def test_field_refusals(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        SlurmSpec.model_validate(fields)


@pytest.mark.parametrize(("option", "words"), [
    ("--job-name=x", "vllmtui sets --job-name itself .*finds the job again"),
    ("-J x", "vllmtui sets --job-name itself"),
    ("-Jx", "vllmtui sets --job-name itself"),
    ("--output=/tmp/o", "vllmtui sets --output itself .*server.log"),
    ("-o /tmp/o", "vllmtui sets --output itself"),
    ("--error=/tmp/e", "vllmtui sets --error itself"),
    ("--parsable", "vllmtui sets --parsable itself"),
    ("--comment=x", "vllmtui sets --comment itself"),
    ("--export=NONE", "vllmtui sets --export itself .*secrets"),
    ("--wrap=x", "vllmtui sets --wrap itself"),
    ("--partition=gpu", "use the slurm section's `partition` field"),
    ("-p gpu", "use the slurm section's `partition` field"),
    ("-N2", "use the slurm section's `nodes` field"),
    ("--time=1:00:00", "use the slurm section's `time` field"),
    ("-A proj", "use the slurm section's `account` field"),
    ("--gpus-per-node=2", "use the slurm section's `gpus_per_node` field"),
])
def test_extra_refuses_the_options_vllmtui_sets(option: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        SlurmSpec(extra=[option])


@pytest.mark.parametrize(("option", "words"), [
    ("mem=64G", "is not an sbatch option: write each option with its value as one item"),
    ("64G", "is not an sbatch option"),
    ("--mem=1\n#SBATCH --output=/x", "an option cannot span lines"),
    ("", "is not an sbatch option"),
])
def test_extra_refuses_what_is_not_an_option(option: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        SlurmSpec(extra=[option])


def test_extra_as_one_string_is_split_like_a_shell() -> None:
    assert SlurmSpec(extra="--mem=64G --constraint='a100|h100' --exclusive").extra == [  # type: ignore[arg-type]
        "--mem=64G", "--constraint=a100|h100", "--exclusive"]
    assert SlurmSpec(extra=["--constraint a100"]).extra == ["--constraint a100"]
    with pytest.raises(ValidationError, match="cannot split"):
        SlurmSpec(extra="--comment='unclosed")  # type: ignore[arg-type]


def test_the_spec_is_frozen() -> None:
    with pytest.raises(ValidationError):
        SlurmSpec().nodes = 3
