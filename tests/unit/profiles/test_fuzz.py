"""Property-based: random bytes and random YAML fed to the profile loader never end in a
traceback: a profile loads, or a ProfileError comes whose every problem names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vllmtui.core.errors import ProfileError
from vllmtui.profiles.loading import load_profile_file
from vllmtui.profiles.model import Profile

FIELDS = sorted(Profile.model_fields) + ["args", "generation", "stop", "runtime", "bogus", "--x", "a b"]
SUB_FIELDS = ["temperature", "top_p", "max_tokens", "timeout", "venv", "command", "seed", "0"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["32k", "0.0.0.0", "::", "demo:tiny", "@vllm-cpu", "-1", "1e400", "0,1", "\x00", "é"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(SUB_FIELDS) | st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8)
# YAML-ish text: the characters YAML syntax is made of, so the parser's error paths are hit
YAMLISH = st.text(alphabet=st.sampled_from(list("abc:-[]{},&*!|>'\"#%@` \n\t0123456789.?\\\x00\x85é")),
                  max_size=120)


def check(path: Path) -> None:
    """Loads, or fails with every problem naming the file; anything else is a bug."""
    try:
        load_profile_file(path)
    except ProfileError as exc:
        assert exc.problems
        assert all(str(path) in problem for problem in exc.problems), exc.problems


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(raw)
    check(path)


@FUZZ
@given(text=YAMLISH)
def test_random_yaml_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


@FUZZ
@given(data=DOCUMENTS, with_model=st.booleans())
def test_random_profiles(tmp_path: Path, data: dict[str, Any], with_model: bool) -> None:
    if with_model:
        data.setdefault("model", "m")
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    check(path)
