"""Profiles: every rejection has a test with its exact message (file, line, field, fix)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vllmtui.core.errors import ProfileError, UsageError
from vllmtui.profiles.loading import (
    ProfileCache,
    discover,
    find_profile,
    load_profile_file,
    parse_profile,
    parse_set_options,
    port_clashes,
)

P = Path("/p/x.yaml")
REJECTIONS = [
    ("model: m\nmax_model_length: 4096\n",
     "/p/x.yaml:2: max_model_length: unknown field (did you mean max_model_len?)"),
    ("model: m\nruntime:\n  pyhton: /x\n",
     "/p/x.yaml:3: runtime.pyhton: unknown field (did you mean python?)"),
    ("model: m\nbanana: 1\n",
     "/p/x.yaml:2: banana: unknown field; vLLM flags without a typed field go under 'args:'"),
    ("port: 8000\n",
     "/p/x.yaml: model: is required: add 'model: <Hugging Face id or local directory>'"),
    ("model: m\nport: 70000\n",
     "/p/x.yaml:2: port: 70000 is not a TCP port: use 1024-65535 (e.g. 8000)"),
    ("model: m\nport: abc\n",
     "/p/x.yaml:2: port: Input should be a valid integer, unable to parse string as an integer"),
    ("model: m\nmax_model_len: 32q\n",
     "/p/x.yaml:2: max_model_len: must be a whole number such as 4096, 32k (32,000) or 32K (32,768)"),
    ("model: m\nmax_model_len: 1.5\n",
     "/p/x.yaml:2: max_model_len: 1.5 is not a whole number of tokens"),
    ("model: m\ngpu_memory_utilization: 1.5\n",
     "/p/x.yaml:2: gpu_memory_utilization: 1.5 is not a fraction: use a value in (0, 1], e.g. 0.9"),
    ("model: m\ntool_call_parser: hermes\n",
     "/p/x.yaml:2: tool_call_parser: has no effect without enable_auto_tool_choice: add 'enable_auto_tool_choice: true'"),
    ("model: m\nenable_auto_tool_choice: true\n",
     "/p/x.yaml:2: enable_auto_tool_choice: needs tool_call_parser too (e.g. tool_call_parser: hermes), or vLLM refuses to start"),
    ("model: m\napi_key_env: sk-abc123\n",
     "/p/x.yaml:2: api_key_env: must be the NAME of an environment variable holding the key (e.g. VLLM_API_KEY), never the key itself"),
    ("model: m\nargs:\n  api-key: x\n",
     "/p/x.yaml:3: args.api-key: is set by vllmtui: use the field 'api_key_env'"),
    ("model: m\nargs:\n  model: x\n",
     "/p/x.yaml:3: args.model: is set by vllmtui: use the field 'model'"),
    ("model: m\nargs:\n  max-model-len: 4096\n",
     "/p/x.yaml:3: args.max-model-len: has a typed field: write 'max_model_len:' at the top level"),
    ("model: m\ngpus: [0]\ntensor_parallel_size: 2\n",
     "/p/x.yaml:3: tensor_parallel_size: tensor_parallel_size x pipeline_parallel_size = 2 needs 2 GPUs but gpus lists 1: list more GPUs or lower the sizes"),
    ("model: m\ngpus: [0, 0]\n",
     "/p/x.yaml:2: gpus: an index is listed twice"),
    ("model: m\ngpus: 'a,b'\n",
     "/p/x.yaml:2: gpus: must be GPU indices such as [0, 1] or '0,1'"),
    ("model: m\nruntime:\n  venv: /a\n  python: /b\n",
     "/p/x.yaml:2: runtime: set only one of command, venv, python (got venv, python)"),
    ("model: m\nruntime:\n  command: []\n",
     "/p/x.yaml:2: runtime: command is empty: give the program that runs vLLM, e.g. [vllm, serve]"),
    ("model: m\nport: [1,\n",
     "/p/x.yaml:2: not valid YAML: the bracket [ opened on this line is never closed"),
    # an unclosed bracket is named at the line it opened on, not after the file's end
    ("model: m\nargs: {a: 1\n\n",
     "/p/x.yaml:2: not valid YAML: the bracket { opened on this line is never closed"),
    ("model: m\nargs: {a: [1, 2], b: '}'  # }\nport: 1\n",
     "/p/x.yaml:2: not valid YAML: while parsing a flow mapping that starts on this line:"
     " expected ',' or '}', but got '<scalar>' at line 3"),
    ("model: m\nargs: [1, 2\nport: 3\n",
     "/p/x.yaml:2: not valid YAML: while parsing a flow sequence that starts on this line:"
     " expected ',' or ']', but got ':' at line 3"),
    ("model: m\ndescription: \"it's\nport: 1\n",
     "/p/x.yaml:2: not valid YAML: the quote \" opened on this line is never closed"),
    ("model: m\nport: 8000\nport: 8001\n",
     "/p/x.yaml:3: port: given twice (lines 2 and 3): keep one"),
    ("model: m\nargs:\n  seed: 1\n  foo: 2\n  seed: 3\n",
     "/p/x.yaml:5: args.seed: given twice (lines 3 and 5): keep one"),
    ("model: m\nargs:\n  max-num-seqs: 1\n  max_num_seqs: 2\n".replace("max", "x"),
     "/p/x.yaml:4: args.x_num_seqs: is the same vLLM flag as 'x-num-seqs': keep one"),
    ("model: m\nhost: 'not a host!!'\n",
     "/p/x.yaml:2: host: 'not a host!!' is not an IP address or host name: use 127.0.0.1 (this"
     " machine only), 0.0.0.0 (every interface) or a name such as gpu-box-1"),
    ("model: m\nhost: '[::1]'\n",
     "/p/x.yaml:2: host: write the address without brackets: host: '::1'"),
    ("model: m\nhost: ''\n",
     "/p/x.yaml:2: host: '' is not an IP address or host name: use 127.0.0.1 (this"
     " machine only), 0.0.0.0 (every interface) or a name such as gpu-box-1"),
    ("model: m\ngpus: [-1]\n",
     "/p/x.yaml:2: gpus: -1 is not a GPU index: indices start at 0 (nvidia-smi lists them)"),
    ("model: m\ngpus: '0,-2'\n",
     "/p/x.yaml:2: gpus: -2 is not a GPU index: indices start at 0 (nvidia-smi lists them)"),
    ("model: m\ngeneration:\n  temperature: 5\n",
     "/p/x.yaml:3: generation.temperature: 5 is out of range: temperature is 0 to 2, e.g. 0.7"),
    ("model: m\ngeneration:\n  temperature: -0.1\n",
     "/p/x.yaml:3: generation.temperature: -0.1 is out of range: temperature is 0 to 2, e.g. 0.7"),
    ("model: m\ngeneration:\n  top_p: 0\n",
     "/p/x.yaml:3: generation.top_p: 0 is out of range: top_p is above 0 and at most 1, e.g. 0.95"),
    ("model: m\ngeneration:\n  top_k: -5\n",
     "/p/x.yaml:3: generation.top_k: -5 is out of range: top_k is -1 or 0 (off), or a whole number from 1, e.g. 40"),
    ("model: m\ngeneration:\n  max_tokens: 0\n",
     "/p/x.yaml:3: generation.max_tokens: 0 is out of range: max_tokens is a whole number from 1, e.g. 256"),
    ("model: m\ngeneration:\n  presence_penalty: 2.5\n",
     "/p/x.yaml:3: generation.presence_penalty: 2.5 is out of range: presence_penalty is -2 to 2, e.g. 0"),
    ("model: m\ngeneration:\n  frequency_penalty: -3\n",
     "/p/x.yaml:3: generation.frequency_penalty: -3 is out of range: frequency_penalty is -2 to 2, e.g. 0"),
    ("model: m\ngeneration:\n  temperature: .nan\n",
     "/p/x.yaml:3: generation.temperature: Input should be a finite number"),
    ("model: m\nstop:\n  timeout: .inf\n",
     "/p/x.yaml:3: stop.timeout: Input should be a finite number"),
    ("model: m\nmax_model_len: .inf\n",
     "/p/x.yaml:2: max_model_len: inf is not a number of tokens: write a whole number such as 4096"),
    ("model: m\nargs:\n  max num seqs: 4\n",
     "/p/x.yaml:2: args: 'max num seqs' cannot be a vLLM flag: write the flag's name without leading"
     " dashes, with '-' between words (e.g. max-num-seqs)"),
    ("model: m\nargs:\n  --seed: 4\n",
     "/p/x.yaml:2: args: '--seed' cannot be a vLLM flag: write the flag's name without leading"
     " dashes, with '-' between words (e.g. seed)"),
    ("model: --help\n",
     "/p/x.yaml:1: model: '--help' starts with '-': vLLM would read it as a flag, not a model"),
    ("model: '  '\n",
     "/p/x.yaml:1: model: is blank: give a Hugging Face id or a local directory"),
    ("model: ''\n",
     "/p/x.yaml:1: model: String should have at least 1 character"),
    ("model: \"a\\0b\"\n",
     "/p/x.yaml:1: model: holds a NUL character (\\0): remove it"),
    ("model: m\nwhen: 2020-13-45\n",
     "/p/x.yaml:2: '2020-13-45' cannot be read: month must be in 1..12"),
    ("model: m\nx: &a [*a]\n",
     "/p/x.yaml:2: an alias refers to the value that contains it: remove the loop"),
    ("model: m\nx: " + "[" * 70 + "]" * 70 + "\n",
     "/p/x.yaml:2: nested more than 64 levels deep"),
    ("model: m\nx: \x01\n",
     "/p/x.yaml:2: not valid YAML: a control character (0x01) is not allowed in a profile"),
    ("- a\n- b\n",
     "/p/x.yaml:1: a profile is a mapping of fields (model: ..., port: ...)"),
    ("model: m\nname: 'bad name!'\n",
     "/p/x.yaml:2: name: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    ("model: m\nname: tunnel-a\n",
     "/p/x.yaml:2: name: names starting with 'tunnel-' are kept for tunnels' tmux sessions: rename it"),
    ("model: m\nenv:\n  1BAD: x\n",
     "/p/x.yaml:2: env: '1BAD' is not a valid environment variable name"),
    ("model: m\nruntime:\n  entrypoint: exe\n",
     "/p/x.yaml:3: runtime.entrypoint: got 'exe': Input should be 'serve' or 'module'"),
    ("model: m\nstop:\n  timeout: 0\n",
     "/p/x.yaml:3: stop.timeout: Input should be greater than 0"),
    ("model: m\ngeneration:\n  top_p: 2\n",
     "/p/x.yaml:3: generation.top_p: 2 is out of range: top_p is above 0 and at most 1, e.g. 0.95"),
    ("model: m\ngeneration:\n  max_token: 2\n",
     "/p/x.yaml:3: generation.max_token: unknown field (did you mean max_tokens?)"),
]


@pytest.mark.parametrize(("text", "message"), REJECTIONS)
def test_rejection_names_file_line_field_and_fix(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, P)
    assert info.value.problems == [message]


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile("model: m\nprot: 1\nport: x\n", P)
    assert sorted(info.value.problems) == [
        "/p/x.yaml:2: prot: unknown field (did you mean port?)",
        "/p/x.yaml:3: port: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_name_defaults_to_file_stem_and_fields_parse() -> None:
    profile, warnings = parse_profile(
        "model: org/m\nmax_model_len: 32K\nmax_num_batched_tokens: 8k\ngpus: '0,1'\n", Path("/p/my-srv.yaml")
    )
    assert profile.name == "my-srv"
    assert profile.max_model_len == 32768
    assert profile.max_num_batched_tokens == 8000
    assert profile.gpus == [0, 1]
    assert profile.effective_tensor_parallel_size == 2
    assert warnings == ()


def test_explicit_name_wins() -> None:
    profile, _ = parse_profile("name: other\nmodel: m\n", Path("/p/file.yaml"))
    assert profile.name == "other"


def test_warnings_for_open_host_and_remote_code() -> None:
    _, warnings = parse_profile("model: m\nhost: 0.0.0.0\ntrust_remote_code: true\n", P)
    assert warnings == (
        "/p/x.yaml:2: host: 0.0.0.0 listens on every interface without an API key; set api_key_env to the NAME of a variable holding one",
        "/p/x.yaml:3: trust_remote_code: runs Python code shipped with the model; only use it for models you trust",
    )


def test_overrides_beat_the_file_and_errors_say_so() -> None:
    profile, _ = parse_profile("model: m\nport: 8000\n", P, {"port": 9000, "args.seed": 3})
    assert profile.port == 9000 and profile.args == {"seed": 3}
    with pytest.raises(ProfileError) as info:
        parse_profile("model: m\nport: 8000\n", P, {"port": 0})
    assert info.value.problems == [
        "/p/x.yaml:2 (or a --set override): port: 0 is not a TCP port: use 1024-65535 (e.g. 8000)"
    ]


def test_set_options_parse_yaml_scalars() -> None:
    assert parse_set_options(["port=9000", "enforce_eager=true", "model=a/b", "args.x=[1, 2]"]) == {
        "port": 9000, "enforce_eager": True, "model": "a/b", "args.x": [1, 2]}
    with pytest.raises(UsageError, match="write it as key=value"):
        parse_set_options(["port"])
    for bad in (".=1", "args..seed=1", "args.=1"):
        with pytest.raises(UsageError, match="has an empty part"):
            parse_set_options([bad])


def test_lookup_order_first_directory_wins(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "srv.yaml").write_text("model: first\n")
    (second / "srv.yaml").write_text("model: second\n")
    (second / "other.yaml").write_text("model: o\nport: 8001\n")
    s = replace(settings, profiles_dirs=(first, second))
    assert find_profile(s, "srv").profile.model == "first"
    assert find_profile(s, "other").profile.port == 8001
    with pytest.raises(UsageError, match=r"no profile named 'sr'.*did you mean srv\?"):
        find_profile(s, "sr")


def test_env_dirs_are_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmtui.core.settings import Settings

    d = tmp_path / "envdir"
    d.mkdir()
    (d / "envprof.yaml").write_text("model: m\n")
    monkeypatch.setenv("VLLMTUI_PROFILES", str(d))
    monkeypatch.setenv("VLLMTUI_CONFIG_DIR", str(tmp_path / "cfg"))
    s = Settings.from_env(["/nonexistent"])
    assert s.profiles_dirs[:2] == (Path("/nonexistent"), d)
    assert s.profiles_dirs[2] == tmp_path / "cfg" / "profiles"
    assert s.profiles_dirs[3] == Path(os.getcwd()) / "profiles"
    assert find_profile(s, "envprof").profile.name == "envprof"


def test_discover_keeps_broken_profiles_and_port_clashes(profiles_dir: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (profiles_dir / "a.yaml").write_text("model: m\nport: 8000\n")
    (profiles_dir / "b.yaml").write_text("model: m\nport: 8000\n")
    (profiles_dir / "bad.yaml").write_text("model: m\nprot: 1\n")
    good, broken = discover(settings)
    assert [g.profile.name for g in good] == ["a", "b"]
    assert [b.name for b in broken] == ["bad"]
    assert port_clashes(good) == {"a": ["b"], "b": ["a"]}
    with pytest.raises(ProfileError, match="did you mean port"):
        find_profile(settings, "bad")


def test_a_profile_cache_parses_a_file_again_only_when_it_changed(profiles_dir: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (profiles_dir / "a.yaml").write_text("model: m\nport: 8000\n")
    (profiles_dir / "bad.yaml").write_text("model: m\nprot: 1\n")
    cache = ProfileCache()
    good, broken = discover(settings, cache)
    again, broken_again = discover(settings, cache)
    assert again[0] is good[0] and [b.name for b in broken_again] == ["bad"]  # not parsed again
    assert str(broken_again[0].error) == str(broken[0].error)
    (profiles_dir / "a.yaml").write_text("model: m\nport: 8001\n")  # same size: the stat moves
    os.utime(profiles_dir / "a.yaml", ns=(0, 10**9))
    changed, _ = discover(settings, cache)
    assert changed[0].profile.port == 8001
    (profiles_dir / "bad.yaml").write_text("model: m\nport: 9\n")
    assert sorted(g.profile.name for g in discover(settings, cache)[0]) == ["a", "bad"]
    (profiles_dir / "a.yaml").unlink()
    assert [g.profile.name for g in discover(settings, cache)[0]] == ["bad"]


def test_every_shipped_profile_validates() -> None:
    from dataclasses import replace

    from vllmtui.core.settings import Settings

    root = Path(__file__).resolve().parents[3] / "profiles"  # the checkout
    good, broken = discover(replace(Settings(), profiles_dirs=(root,)))
    assert broken == []
    names = {g.profile.name for g in good}
    assert {"tiny-cpu", "qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "gpt-oss-20b",
            "llama-3.3-70b-awq-tp2", "phi-3-mini", "qwen3-30b-a3b-fp8-ep8"} <= names
    assert port_clashes(good) == {}


# ---------------------------------------------------------------- hostile files


def _load_error(path: Path) -> list[str]:
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    return info.value.problems


def test_binary_and_non_utf8_files_are_named_with_the_line(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"model: m\nport: 80\x00\xff\xfe\x80\n")
    assert _load_error(binary) == [
        f"{binary}:2: not UTF-8 text (byte 0xff at offset 18): is it a binary file?"
        " It must be YAML text saved as UTF-8"
    ]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("model: m\ndescription: caf\u00e9\n".encode("latin-1"))
    assert _load_error(latin)[0].startswith(f"{latin}:2: not UTF-8 text (byte 0xe9")
    utf16 = tmp_path / "u16.yaml"
    utf16.write_text("model: m\n", encoding="utf-16")
    assert _load_error(utf16) == [f"{utf16}:1: is UTF-16 text: save it as UTF-8"]
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfmodel: m\n")
    assert load_profile_file(bom).profile.model == "m"


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ["model: m", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb.write_text("\n".join(lines) + "\n")  # 9**10 values once expanded
    assert _load_error(bomb) == [
        f"{bomb}:7: expands to more than 100,000 values (aliases nested in aliases?):"
        " a file written by hand needs a few dozen"
    ]


def test_files_that_are_not_profiles(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("model: m\n" + "#" * (2 << 20) + "\n")
    assert _load_error(big) == [
        f"{big}: is 2.0 MiB: it should be a few lines of YAML (at most 1 MiB)"
    ]
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert _load_error(folder) == [f"{folder}: is a directory: it should be a profile: a .yaml text file"]
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would block forever
    assert _load_error(fifo) == [f"{fifo}: is not a regular file: it should be a profile: a .yaml text file"]
    unreadable = tmp_path / "locked.yaml"
    unreadable.write_text("model: m\n")
    unreadable.chmod(0)
    if os.geteuid() != 0:  # root reads it anyway
        assert _load_error(unreadable) == [f"{unreadable}: cannot read: Permission denied"]
