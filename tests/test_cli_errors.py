"""A user's mistakes at the command line: one clear line naming the file, line or variable,
a non-zero exit, and no traceback (``--debug`` shows it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillbridge.streams.ops.cli import EXIT_USAGE, main

KAFKA = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SCHEMA_REGISTRY_URL": "http://127.0.0.1:1"}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    err = capsys.readouterr().err
    code = ended.value.code
    return (code if isinstance(code, int) else 1), err


@pytest.fixture()
def kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in KAFKA.items():
        monkeypatch.setenv(key, value)


def _one_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: "), err
    return "\n".join(lines)


def test_publish_missing_file(kafka_env: None, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    code, err = _run(["publish", str(missing)], capsys)
    assert code == EXIT_USAGE
    assert _one_error(err) == f"error: {missing}: No such file or directory"


def test_publish_names_every_bad_line(kafka_env: None, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'# a comment\n{"event_type": "sale", "x": 1}\nnot json\n'
                    b'{"event_type": "bogus"}\n{"event_type": "sale"}\n\xff\xfe\n')
    code, err = _run(["publish", str(bad)], capsys)
    assert code == EXIT_USAGE
    text = _one_error(err)
    assert f"{bad}:2: sale: event: unknown field(s) ['x']" in text
    assert f"{bad}:3: not valid JSON" in text
    assert f"{bad}:4: event_type 'bogus' unknown" in text
    assert f"{bad}:5: sale: " in text and "required field missing" in text
    assert f"{bad}:6: not UTF-8 text" in text


def test_publish_a_directory(kafka_env: None, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["publish", str(tmp_path)], capsys)
    assert code == EXIT_USAGE and _one_error(err) == f"error: {tmp_path}: Is a directory"


@pytest.mark.parametrize(("env", "named"), [
    ({"NETSUITE_TIMEOUT_S": "abc"}, "NETSUITE_TIMEOUT_S"),
    ({"TILLBRIDGE_WEB_PORT": "eighty"}, "TILLBRIDGE_WEB_PORT"),
    ({"NETSUITE_TOKEN_SECRET_FILE": "/nonexistent/secret"}, "NETSUITE_TOKEN_SECRET_FILE"),
])
def test_a_bad_setting_names_its_variable(env: dict[str, str], named: str,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, err = _run(["settings"], capsys)
    assert code == EXIT_USAGE
    assert named in _one_error(err)


def test_debug_shows_the_traceback(kafka_env: None, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        main(["--debug", "publish", str(tmp_path / "nope.jsonl")])


@pytest.mark.slow
def test_publish_exits_non_zero_when_events_are_not_delivered(
        kafka_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listens on the broker or registry addresses: every event fails, and the
    command says how many instead of printing the Kafka client's retries."""
    example = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "sales.jsonl"
    code, err = _run(["publish", str(example)], capsys)
    assert code == 1
    assert "error: 5 of 5 events were not delivered" in err and "Traceback" not in err
