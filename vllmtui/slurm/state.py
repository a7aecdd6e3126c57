"""A batch job's state as Slurm's controller reports it, parsed into `JobState`.

Sources, best first: `squeue -h -t all -j ID -O ...` (every field, one line, our own
separator), `scontrol show job ID -o` (key=value; works where squeue's -O fields differ), and
`sacct` where the cluster keeps accounting (the only one that knows a job the controller has
forgotten, MinJobAge after it ended).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

SEP = "\x1f"  # the unit separator: in no job name, node list, path or comment

# squeue -O fields, in JobState order; each ends with our separator (and so is never padded)
SQUEUE_FIELDS = ("JobID", "Name", "State", "Reason", "NodeList", "BatchHost", "UserName", "Partition",
                 "SubmitTime", "StartTime", "EndTime", "TimeLimit", "exit_code", "Comment", "STDOUT")
SQUEUE_FORMAT = ",".join(f"{name}:{SEP}" for name in SQUEUE_FIELDS)

ACTIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "RESIZING",
                    "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SIGNALING", "STAGE_OUT", "STOPPED"})

TAG = "vllmtui"  # the comment of every job vllmtui submits: vllmtui:PROFILE:PORT

# what a pending reason means, in words a user can act on
REASON_HINTS = {
    "Resources": "waiting for nodes with the resources it asks for to become free",
    "Priority": "other jobs with a higher priority are ahead of it in the queue",
    "JobHeldUser": "held by its owner: `scontrol release JOBID` lets it run",
    "JobHeldAdmin": "held by an administrator",
    "BeginTime": "its start time (--begin) has not come yet",
    "Dependency": "waiting for the jobs it depends on",
    "DependencyNeverSatisfied": "the jobs it depends on failed: it will never start; cancel it",
    "PartitionNodeLimit": "asks for more nodes than the partition allows: lower `nodes`",
    "PartitionTimeLimit": "asks for more time than the partition allows: lower `time`",
    "PartitionConfig": "asks for more than the partition's nodes have (nodes, CPUs, memory, GPUs)",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "ReqNodeNotAvail": "a node it needs is down, drained or reserved",
    "NodeDown": "a node it needs is down",
    "InvalidAccount": "the account is not valid for this user: fix `account`",
    "InvalidQOS": "the QOS is not valid for this user or account",
    "BadConstraints": "no node has the features it asks for (--constraint)",
    "QOSMaxJobsPerUserLimit": "the QOS allows no more running jobs for this user",
    "AssocGrpGRES": "the account's GPU limit is reached",
    "AssocMaxJobsLimit": "the account's job limit is reached",
}


@dataclass(frozen=True)
class JobState:
    """One batch job: what it is, where it runs, how it ended."""

    job_id: str
    name: str
    state: str  # Slurm's word: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    reason: str | None = None  # why it is pending (or why it ended); None when Slurm says None
    nodes: tuple[str, ...] = ()  # the node names (expanded from Slurm's node list)
    batch_host: str | None = None  # the node the script runs on: the API server's node
    user: str = ""
    partition: str = ""
    submit_time: datetime | None = None
    start_time: datetime | None = None  # while pending: Slurm's expected start, if it has one
    end_time: datetime | None = None
    time_limit: str = ""
    exit_code: int | None = None
    signal: int | None = None  # the signal that ended it, if one did
    comment: str = ""
    output: str | None = None  # the output file (Slurm's pattern, %j and such expanded)

    @property
    def active(self) -> bool:
        """Pending, running or winding down: not over yet."""
        return self.state in ACTIVE

    @property
    def profile(self) -> str | None:
        """The profile vllmtui submitted it for (from its comment tag), else None."""
        tag = parse_tag(self.comment)
        return tag[0] if tag else None

    @property
    def port(self) -> int | None:
        tag = parse_tag(self.comment)
        return tag[1] if tag else None

    @property
    def host(self) -> str | None:
        """The node the server listens on: the batch host, else the first node."""
        return self.batch_host or (self.nodes[0] if self.nodes else None)

    def describe(self) -> str:
        """One line for a status column: `pending: Resources (waiting for ...)`."""
        word = self.state.lower()
        if self.state == "PENDING":
            hint = REASON_HINTS.get(self.reason or "")
            reason = self.reason or "no reason given"
            return f"pending: {reason} ({hint})" if hint else f"pending: {reason}"
        if self.state in ("RUNNING", "COMPLETING", "SUSPENDED"):
            return f"{word} on {','.join(self.nodes) or '?'}"
        if self.signal:
            return f"{word}: killed by signal {self.signal}"
        if self.exit_code is not None and self.state != "CANCELLED":
            return f"{word}: exit code {self.exit_code}"
        return word


def make_tag(profile: str, port: int) -> str:
    return f"{TAG}:{profile}:{port}"


def parse_tag(comment: str) -> tuple[str, int] | None:
    parts = comment.strip().split(":")
    if len(parts) == 3 and parts[0] == TAG and parts[2].isdigit():
        return parts[1], int(parts[2])
    return None


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip()).astimezone()  # Slurm prints local time
    except ValueError:
        return None  # N/A, Unknown, None


def _none(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", "None", "(null)", "N/A", "n/a") else text


def expand_nodelist(text: str) -> tuple[str, ...]:
    """Slurm's compressed host list as names: `gpu[01-03,07],login` -> gpu01 gpu02 gpu03 gpu07 login."""
    text = text.strip()
    if text in ("", "(null)", "None", "N/A"):
        return ()
    names: list[str] = []
    for item in re.findall(r"[^,\[]+(?:\[[^\]]*\][^,\[]*)*", text):
        names += _expand_one(item)
    return tuple(names)


def _expand_one(item: str) -> list[str]:
    match = re.match(r"^([^\[]*)\[([^\]]*)\](.*)$", item)
    if not match:
        return [item]
    prefix, ranges, rest = match.groups()
    out: list[str] = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        if high and low.isdigit() and high.isdigit():
            out += [f"{prefix}{n:0{len(low)}d}" for n in range(int(low), int(high) + 1)]
        else:
            out.append(prefix + part)
    return [name + tail for name in out for tail in _expand_one(rest)] if rest else out


def _exit_status(raw: str) -> tuple[int | None, int | None]:
    """squeue's exit_code is the raw wait status: exit code << 8, or the signal number."""
    text = raw.strip()
    if ":" in text:  # scontrol / sacct spelling: CODE:SIGNAL
        code, _, sig = text.partition(":")
        if code.isdigit() and sig.isdigit():
            return int(code), (int(sig) or None)
        return None, None
    if not text.isdigit():
        return None, None
    status = int(text)
    return (status >> 8) & 0xFF, (status & 0x7F) or None


def _output_path(pattern: str, job_id: str, name: str, user: str, host: str | None) -> str | None:
    """The output file's name from its pattern (the few patterns vllmtui and users write)."""
    if not _none(pattern):
        return None
    values = {"j": job_id, "A": job_id, "x": name, "u": user, "N": host or "%N", "%": "%"}
    return re.sub(r"%([jAxuN%])", lambda m: values[m.group(1)], pattern)


def parse_squeue(stdout: str) -> list[JobState]:
    """Lines of `squeue -h -O SQUEUE_FORMAT`; a line of another shape is skipped."""
    jobs: list[JobState] = []
    for line in stdout.splitlines():
        fields = line.split(SEP)
        if len(fields) < len(SQUEUE_FIELDS) or not fields[0].strip():
            continue
        values = dict(zip(SQUEUE_FIELDS, (f.strip() for f in fields), strict=False))
        jobs.append(_from_fields(values))
    return jobs


def _from_fields(v: dict[str, str]) -> JobState:
    code, sig = _exit_status(v.get("exit_code", ""))
    batch_host = _none(v.get("BatchHost", ""))
    return JobState(
        job_id=v["JobID"], name=v["Name"], state=v["State"].split()[0] if v["State"] else "UNKNOWN",
        reason=_none(v.get("Reason", "")), nodes=expand_nodelist(v.get("NodeList", "")),
        batch_host=batch_host, user=v.get("UserName", ""), partition=v.get("Partition", ""),
        submit_time=_time(v.get("SubmitTime", "")), start_time=_time(v.get("StartTime", "")),
        end_time=_time(v.get("EndTime", "")), time_limit=v.get("TimeLimit", ""),
        exit_code=code, signal=sig, comment=_none(v.get("Comment", "")) or "",
        output=_output_path(v.get("STDOUT", ""), v["JobID"], v["Name"], v.get("UserName", ""), batch_host),
    )


_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9/:_]*)=")


def parse_scontrol(stdout: str) -> list[JobState]:
    """`scontrol show job -o`: one job a line of Key=Value pairs (values may hold spaces)."""
    jobs: list[JobState] = []
    for line in stdout.splitlines():
        pairs = scontrol_pairs(line)
        if "JobId" not in pairs:
            continue
        user = pairs.get("UserId", "").split("(")[0]
        jobs.append(_from_fields({
            "JobID": pairs["JobId"], "Name": pairs.get("JobName", ""), "State": pairs.get("JobState", ""),
            "Reason": pairs.get("Reason", ""), "NodeList": pairs.get("NodeList", ""),
            "BatchHost": pairs.get("BatchHost", ""), "UserName": user,
            "Partition": pairs.get("Partition", ""), "SubmitTime": pairs.get("SubmitTime", ""),
            "StartTime": pairs.get("StartTime", ""), "EndTime": pairs.get("EndTime", ""),
            "TimeLimit": pairs.get("TimeLimit", ""), "exit_code": pairs.get("ExitCode", ""),
            "Comment": pairs.get("Comment", ""), "STDOUT": pairs.get("StdOut", ""),
        }))
    return jobs


def scontrol_pairs(line: str) -> dict[str, str]:
    """`Key=Value Key2=Value with spaces` -> a dict; a value runs up to the next ` Key=`."""
    marks = list(_KEY.finditer(line))
    pairs: dict[str, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        pairs.setdefault(mark.group(1), line[mark.end():end].strip())
    return pairs


SACCT_FIELDS = ("JobID", "JobName", "State", "NodeList", "User", "Partition", "Submit", "Start", "End",
                "Timelimit", "ExitCode", "Comment")


def parse_sacct(stdout: str) -> list[JobState]:
    """`sacct -n -P -X -o SACCT_FIELDS` (the allocation lines only)."""
    jobs: list[JobState] = []
    for line in stdout.splitlines():
        fields = line.split("|")
        if len(fields) < len(SACCT_FIELDS):
            continue
        v = dict(zip(SACCT_FIELDS, fields, strict=False))
        nodes = expand_nodelist(v["NodeList"]) if v["NodeList"] != "None assigned" else ()
        jobs.append(_from_fields({
            "JobID": v["JobID"], "Name": v["JobName"], "State": v["State"], "NodeList": v["NodeList"]
            if nodes else "", "BatchHost": nodes[0] if nodes else "", "UserName": v["User"],
            "Partition": v["Partition"], "SubmitTime": v["Submit"], "StartTime": v["Start"],
            "EndTime": v["End"], "TimeLimit": v["Timelimit"], "exit_code": v["ExitCode"],
            "Comment": v["Comment"],
        }))
    return jobs
