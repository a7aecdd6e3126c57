"""What a pull takes from the user before any request: revisions and token variables."""

from __future__ import annotations

import pytest

from vllmtui.core.errors import UsageError
from vllmtui.models import hub


@pytest.mark.parametrize("revision", ["../../x", "/etc", "main/..", "a b", "x\n", "", "refs/.lock"])
def test_a_revision_that_is_not_a_git_name_is_refused(revision: str) -> None:
    with pytest.raises(UsageError, match="not a branch, tag or commit"):
        hub.check_revision(revision)
    for good in ("main", "v1.0", "refs/pr/1", "a" * 40):
        hub.check_revision(good)


def test_a_token_variable_must_be_a_variable_name() -> None:
    with pytest.raises(UsageError, match="not an environment variable name"):
        hub.token_from("A B", required=True)
