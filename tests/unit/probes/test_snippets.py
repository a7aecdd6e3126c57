"""Client snippets name the API key's variable, never the key."""

from __future__ import annotations

from vllmtui.probes.snippets import client_snippets


def test_snippets_name_the_variable_never_the_key() -> None:
    snips = client_snippets("http://127.0.0.1:18100/v1", "my 'model'", "TINY_KEY")
    assert "http://127.0.0.1:18100/v1/chat/completions" in snips.curl
    assert "$TINY_KEY" in snips.curl and 'os.environ["TINY_KEY"]' in snips.python
    assert 'base_url="http://127.0.0.1:18100/v1"' in snips.python
    assert 'model="my \'model\'"' in snips.python
    open_ = client_snippets("http://h:1", "m")
    assert "Authorization" not in open_.curl and '"EMPTY"' in open_.python
