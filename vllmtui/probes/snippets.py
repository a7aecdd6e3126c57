"""Client snippets: ready-to-paste `curl` and Python `openai` code for a server, with the
right base URL (local or a tunnel's local port) and model name. The API key appears only
as the NAME of its environment variable, never its value."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Snippets:
    """The snippets for one server; `base_url` has no `/v1`."""

    base_url: str
    model: str
    api_key_env: str | None
    curl: str
    python: str

    def as_dict(self) -> dict[str, str]:
        return {"curl": self.curl, "python": self.python}


def client_snippets(base_url: str, model: str, api_key_env: str | None = None,
                    prompt: str = "Hello! Who are you?") -> Snippets:
    """curl (list models, one chat) and Python `openai` code for `base_url` and `model`."""
    base = base_url.rstrip("/").removesuffix("/v1")
    auth = f' \\\n  -H "Authorization: Bearer ${api_key_env}"' if api_key_env else ""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})
    curl = (
        f"curl -sS {shlex.quote(base + '/v1/models')}{auth}\n\n"
        f"curl -sS {shlex.quote(base + '/v1/chat/completions')}{auth} \\\n"
        f'  -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(body)}\n"
    )
    key = f"os.environ[{json.dumps(api_key_env)}]" if api_key_env else '"EMPTY"'  # vLLM without a key
    python = (
        ("import os\n\n" if api_key_env else "")
        + "from openai import OpenAI\n\n"
        "client = OpenAI(\n"
        f"    base_url={json.dumps(base + '/v1')},\n"
        f"    api_key={key},\n"
        ")\n"
        "reply = client.chat.completions.create(\n"
        f"    model={json.dumps(model)},\n"
        f"    messages=[{{\"role\": \"user\", \"content\": {json.dumps(prompt)}}}],\n"
        ")\n"
        "print(reply.choices[0].message.content)\n"
    )
    return Snippets(base, model, api_key_env, curl, python)
