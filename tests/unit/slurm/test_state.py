"""Parsing what Slurm's commands print (lines as Slurm 22.05 printed them on the test cluster)."""

from __future__ import annotations

import pytest

from vllmtui.slurm.state import (
    SEP,
    SQUEUE_FIELDS,
    JobState,
    expand_nodelist,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    parse_tag,
    scontrol_pairs,
)

SCONTROL_FAILED = (
    "JobId=3 JobName=vllmtui-oom UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901758 Nice=0"
    " Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0"
    " BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A"
    " SubmitTime=2026-12-04T22:41:16 EligibleTime=2026-12-04T22:41:16 AccrueTime=2026-12-04T22:41:16"
    " StartTime=2026-12-04T22:41:16 EndTime=2026-12-04T22:41:17 Deadline=N/A SuspendTime=None SecsPreSuspend=0"
    " LastSchedEval=2026-12-04T22:41:16 Scheduler=Main Partition=debug AllocNode:Sid=localhost:27633"
    " ReqNodeList=(null) ExcNodeList=(null) NodeList=localhost BatchHost=localhost NumNodes=1 NumCPUs=1"
    " NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=*"
    " NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null)"
    " DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)"
    " Command=/tmp/run dir/job.sbatch WorkDir=/tmp/run dir Comment=vllmtui:oom:8000  StdErr=/tmp/run dir/server.log"
    " StdIn=/dev/null StdOut=/tmp/run dir/server.log Power= "
)


def squeue_line(**values: str) -> str:
    base = {"JobID": "7", "Name": "vllmtui-a", "State": "PENDING", "Reason": "Resources", "NodeList": "",
            "BatchHost": "n/a", "UserName": "alice", "Partition": "gpu", "SubmitTime": "2026-12-04T22:41:16",
            "StartTime": "N/A", "EndTime": "N/A", "TimeLimit": "1-00:00:00", "exit_code": "0",
            "Comment": "vllmtui:a:8000", "STDOUT": "/runs/a/server.log"}
    base.update(values)
    return "".join(base[name] + SEP for name in SQUEUE_FIELDS)


def test_a_pending_line() -> None:
    (job,) = parse_squeue(squeue_line() + "\n")
    assert (job.job_id, job.name, job.state, job.reason, job.nodes, job.batch_host) == (
        "7", "vllmtui-a", "PENDING", "Resources", (), None)
    assert (job.profile, job.port, job.active, job.host, job.start_time) == ("a", 8000, True, None, None)
    assert job.submit_time is not None and job.submit_time.hour == 22 and job.submit_time.tzinfo is not None
    assert job.describe() == "pending: Resources (waiting for nodes with the resources it asks for to become free)"


def test_running_ended_and_signalled_lines() -> None:
    # the last line has another shape: it is skipped
    running, failed, killed = parse_squeue("\n".join([
        squeue_line(State="RUNNING", Reason="None", NodeList="gpu[01-02]", BatchHost="gpu01",
                    StartTime="2026-12-04T22:41:20"),
        squeue_line(JobID="8", State="FAILED", Reason="NonZeroExitCode", exit_code="768", NodeList="gpu03"),
        squeue_line(JobID="9", State="CANCELLED", exit_code="9", Comment="(null)", STDOUT="/o/%x-%j.%u.%%"),
        "not" + SEP + "a line",
    ]))
    assert running.nodes == ("gpu01", "gpu02") and running.host == "gpu01" and running.reason is None
    assert running.describe() == "running on gpu01,gpu02"
    assert (failed.exit_code, failed.signal, failed.active, failed.describe()) == (3, None, False, "failed: exit code 3")
    assert (killed.signal, killed.profile, killed.comment) == (9, None, "")
    assert killed.describe() == "cancelled: killed by signal 9"
    assert killed.output == "/o/vllmtui-a-9.alice.%"


def test_scontrol_line_with_spaces_in_values() -> None:
    pairs = scontrol_pairs(SCONTROL_FAILED)
    assert pairs["Command"] == "/tmp/run dir/job.sbatch" and pairs["Power"] == ""
    assert pairs["TRES"] == "cpu=1,node=1,billing=1" and pairs["AllocNode:Sid"] == "localhost:27633"
    (job,) = parse_scontrol(SCONTROL_FAILED + "\n\n")
    assert (job.job_id, job.state, job.reason, job.exit_code, job.signal) == ("3", "FAILED", "NonZeroExitCode", 3, None)
    assert (job.user, job.nodes, job.batch_host, job.profile, job.port) == ("root", ("localhost",), "localhost", "oom", 8000)
    assert job.output == "/tmp/run dir/server.log" and job.end_time is not None


def test_sacct_lines() -> None:
    out = ("12|vllmtui-a|CANCELLED by 1000|gpu[1-2]|alice|gpu|2026-12-04T10:00:00|2026-12-04T10:00:05|"
           "2026-12-04T11:00:00|01:00:00|0:15|vllmtui:a:8000\n"
           "13|vllmtui-b|PENDING|None assigned|alice|gpu|2026-12-04T10:00:00|Unknown|Unknown|01:00:00|0:0|\n")
    cancelled, pending = parse_sacct(out)
    assert (cancelled.state, cancelled.nodes, cancelled.signal, cancelled.port) == ("CANCELLED", ("gpu1", "gpu2"), 15, 8000)
    assert (pending.state, pending.nodes, pending.start_time, pending.profile) == ("PENDING", (), None, None)


@pytest.mark.parametrize(("text", "names"), [
    ("localhost", ("localhost",)),
    ("gpu[01-03,07],login", ("gpu01", "gpu02", "gpu03", "gpu07", "login")),
    ("a[1-2]-ib[0-1]", ("a1-ib0", "a1-ib1", "a2-ib0", "a2-ib1")),
    ("n[8-10]", ("n8", "n9", "n10")),
    ("", ()), ("(null)", ()),
])
def test_node_lists_expand(text: str, names: tuple[str, ...]) -> None:
    assert expand_nodelist(text) == names


def test_tags() -> None:
    assert parse_tag("vllmtui:qwen-7b:8000") == ("qwen-7b", 8000)
    for other in ("", "vllmtui:a", "vllmtui:a:port", "mine:a:1", "vllmtui:a:1:2"):
        assert parse_tag(other) is None


def test_describe_covers_every_kind_of_state() -> None:
    assert JobState("1", "n", "PENDING").describe() == "pending: no reason given"
    assert JobState("1", "n", "PENDING", reason="Weird").describe() == "pending: Weird"
    assert JobState("1", "n", "COMPLETED", exit_code=0).describe() == "completed: exit code 0"
    assert JobState("1", "n", "TIMEOUT").describe() == "timeout"
    assert JobState("1", "n", "CANCELLED", exit_code=143).describe() == "cancelled"
