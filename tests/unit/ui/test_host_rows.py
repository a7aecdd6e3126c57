"""The table's rows of other hosts (pure): keys, a host's own row when it has a problem, the
sent mark, the filter and the grouping."""

from __future__ import annotations

from vllmtui.hosts.fleet import HostReading, ProfileSource
from vllmtui.servers.status import ServerStatus
from vllmtui.ui.host_rows import HostView, remote_rows, remote_statuses, row_key, split_key
from vllmtui.ui.rows import Readings, table_rows


def _reading(name: str, *servers: str, reachable: bool = True, version: str | None = "0.1.0",
             sent: tuple[str, ...] = ()) -> HostReading:
    statuses = tuple(ServerStatus(s, "ready", port=8000 + i, started=0.0, taken_at=30.0)
                     for i, s in enumerate(servers))
    profiles = tuple(ProfileSource(s, f"/home/u/{s}.yaml", s in sent) for s in servers)
    return HostReading(name, reachable, None if reachable else "ssh: connection refused",
                       version if reachable else None, statuses, None, profiles)


def test_keys_split_back() -> None:
    assert row_key("qwen", "gpu1") == "qwen@gpu1" and row_key("qwen", None) == "qwen"
    assert row_key("qwen", "local") == "qwen"
    assert split_key("qwen@gpu1") == ("qwen", "gpu1") and split_key("qwen") == ("qwen", None)


def test_rows_of_hosts_with_and_without_problems() -> None:
    readings = {"gpu1": _reading("gpu1", "qwen", "llama", sent=("llama",)),
                "gpu2": _reading("gpu2", reachable=False),
                "gpu3": _reading("gpu3", "old", version="0.0.9")}
    rows = {r.name: r for r in remote_rows(readings, 60)}
    assert list(rows) == ["qwen@gpu1", "llama@gpu1", "@gpu2", "@gpu3", "old@gpu3"]
    assert rows["llama@gpu1"].cells["name"] == "llama (sent)" and rows["qwen@gpu1"].cells["name"] == "qwen"
    assert rows["qwen@gpu1"].cells["host"] == "gpu1" and rows["qwen@gpu1"].cells["uptime"] == "30s"
    assert str(rows["@gpu2"].cells["status"]).startswith("unreachable: ssh: connection refused")
    assert "hosts install gpu3" in str(rows["@gpu3"].cells["status"])  # skew: the fix
    assert set(remote_statuses(readings)) == {"qwen@gpu1", "llama@gpu1", "old@gpu3"}


def test_the_table_groups_by_host_or_lists_by_name_and_filters() -> None:
    r = Readings(statuses={"zeta": ServerStatus("zeta", "stopped")}, order=["zeta"],
                 host_names=("gpu1", "gpu2"))
    r.hosts = {"gpu2": _reading("gpu2", "alpha"), "gpu1": _reading("gpu1", "beta")}
    r.remote = remote_statuses(r.hosts)
    assert [x.name for x in table_rows(r, 40)] == ["zeta", "beta@gpu1", "alpha@gpu2"]
    r.view = HostView(grouped=False)
    assert [x.name for x in table_rows(r, 40)] == ["alpha@gpu2", "beta@gpu1", "zeta"]
    r.view = HostView(filter="gpu2")
    assert [x.name for x in table_rows(r, 40)] == ["alpha@gpu2"]
    r.view = HostView(filter="STOPPED")  # the state too, any case
    assert [x.name for x in table_rows(r, 40)] == ["zeta"]
    one = Readings(statuses={"a": ServerStatus("a", "ready"), "b": ServerStatus("b", "stopped")},
                   order=["a", "b"], view=HostView(filter="b"))
    assert [x.name for x in table_rows(one, 40)] == ["b"]  # one machine: the filter still works
