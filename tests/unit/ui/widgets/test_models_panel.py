"""The Models tab's text and its removal picker (pure: a reading in, text out)."""

from __future__ import annotations

import time

from tests.support.hf_cache import sample_report
from vllmtui.ui.widgets.models_panel import models_text, removal_choices


def test_the_text_of_a_reading() -> None:
    text = models_text(sample_report(), time.time()).plain
    lines = text.splitlines()
    assert lines[0] == "Hugging Face cache /srv/hf/hub"
    assert lines[1].split()[:3] == ["MODEL", "REVISION", "SIZE"]
    assert lines[2].startswith("Qwen/Qwen3-8B") and "2 revisions" in lines[2] and "2d3h00m ago" in lines[2]
    assert "+295.6 MiB partial" in text and "local directory" in text
    assert "not in the cache: openai/gpt-oss-20b" in text
    assert "756.2 GiB free of 1.6 TiB at /srv/hf/hub" in text


def test_before_the_first_reading_and_after_a_failed_one() -> None:
    assert models_text(None, 0.0).plain == "reading the model files...\n"
    assert models_text(None, 0.0, error="PermissionError: x").plain == "cannot read the model files: PermissionError: x\n"
    stale = models_text(sample_report(), time.time(), error="OSError: gone", pending="removing x...").plain
    assert stale.startswith("removing x...\n") and "the last reading failed (OSError: gone)" in stale


def test_the_picker_offers_models_then_their_revisions() -> None:
    choices = removal_choices(sample_report())
    assert [(c.repo_id, c.revision) for c in choices] == [
        ("Qwen/Qwen3-8B", None), ("Qwen/Qwen3-8B", "9c925d64d72725edaf899c6cb9c377fd0709d9c5"),
        ("Qwen/Qwen3-8B", "b968826d9c46dd6066d109eabc6255188de91218"), ("meta-llama/Llama-3.2-1B", None)]
    assert choices[0].label == "Qwen/Qwen3-8B  17.2 GiB (all 2 revisions, used by qwen3-8b, qwen3-8b-long)"
    assert choices[2].label == "Qwen/Qwen3-8B revision b968826 (v1.1)"
