"""`mta log search` parsing and matching, and the [log] / [[webhooks]] config keys."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mta.cli import main
from mta.cli_log import Query, parse_since, search
from mta.config import WEBHOOK_DEFAULT_TYPES, ConfigError, config_from_mapping, load_config
from mta.webhooks.channel import webhook_key

NOW = 1_750_000_000.0


def test_since_accepts_an_age_a_time_or_epoch_seconds() -> None:
    assert parse_since("2h", now=NOW) == NOW - 7200
    assert parse_since("1d12h", now=NOW) == NOW - 1.5 * 86400
    assert parse_since("1750000000") == NOW
    moment = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC).timestamp()
    assert parse_since("2025-06-01T12:00:00Z") == moment
    assert parse_since("2025-06-01T12:00:00") == moment  # no zone: UTC
    assert parse_since("2025-06-01T14:00:00+02:00") == moment
    with pytest.raises(ValueError, match="--since"):
        parse_since("last tuesday")


def test_query_matches_exact_id_and_recipient_in_any_case() -> None:
    record = {"id": "abc", "recipient": "Bob@Example.com", "timestamp": NOW}
    assert Query(id="abc").matches(record)
    assert not Query(id="ab").matches(record)
    assert Query(recipient="bob@example.COM").matches(record)
    assert Query(recipient="BOB@EXAMPLE.COM").quick(b'{"recipient":"Bob@Example.com"}')
    assert not Query(recipient="bob@example.co").matches(record)
    assert Query(id="abc", since=NOW).matches(record)
    assert not Query(id="abc", since=NOW + 1).matches(record)


def test_search_sorts_by_time_and_skips_damaged_lines(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_text(
        '{"id": "m", "timestamp": 20, "n": 2}\n'
        "not json but has m in it\n"
        '{"id": "m", "timestamp": 10, "n": 1}\n'
        '{"id": "other", "timestamp": 5}\n'
    )
    (tmp_path / "records-20250101-000000-000000.jsonl").write_text(
        '{"id": "m", "timestamp": 20, "n": 3}\n{"id": "m", "timest'  # torn: being written
    )
    assert [r["n"] for r in search(tmp_path, Query(id="m"))] == [1, 2, 3]


def test_search_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "records.jsonl").write_text('{"id": "m", "recipient": "a@b", "timestamp": 1}\n')
    assert main(["log", "search", "--path", str(tmp_path), "--id", "m"]) == 0
    assert capsys.readouterr().out == '{"id":"m","recipient":"a@b","timestamp":1}\n'
    assert main(["log", "search", "--path", str(tmp_path), "--recipient", "x@b"]) == 1
    assert main(["log", "search", "--path", str(tmp_path)]) == 2
    assert "--id ID or --recipient ADDR" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a node connection option makes no sense here
        main(["--endpoint", "http://127.0.0.1:1", "log", "search", "--id", "m"])


def test_search_finds_the_directory_in_the_config(tmp_path: Path, capsys) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "records.jsonl").write_text('{"id": "m", "timestamp": 1}\n')
    config = tmp_path / "mta.toml"
    config.write_text(f'[log]\npath = "{logs}"\n')
    assert main(["log", "search", "--config", str(config), "--id", "m"]) == 0
    config.write_text("[log]\nstdout = true\n")
    assert main(["log", "search", "--config", str(config), "--id", "m"]) == 2
    assert "give --path" in capsys.readouterr().err


def test_log_keys() -> None:
    config = config_from_mapping(
        {"log": {"segment_max_bytes": "10MiB", "segment_max_age": "15m", "retention": "30d"}}
    )
    assert config.log.segment_max_bytes == 10 * 2**20
    assert (config.log.segment_max_age, config.log.retention) == (900, 30 * 86400)
    assert config_from_mapping({"log": {"retention": 0}}).log.retention == 0
    with pytest.raises(ConfigError, match="segment_max_bytes"):
        config_from_mapping({"log": {"segment_max_bytes": 0}})


def test_webhook_keys_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mta.toml"
    path.write_text(
        '[[webhooks]]\nurl = "https://hooks.example/mta"\nsecret_file = "/run/secret"\n'
        '[[webhooks]]\nname = "tsa-feed"\nurl = "http://10.0.0.1/in"\ntypes = ["Bounce"]\n'
        'batch_size = 10\nmax_delay = "5s"\nmax_backlog = 1000\n'
    )
    first, second = load_config(path, environ={}).webhooks
    assert first.types == WEBHOOK_DEFAULT_TYPES and "Reception" not in first.types
    assert (first.batch_size, first.max_delay, first.timeout) == (100, 1.0, 10.0)
    assert first.secret_file == Path("/run/secret")
    assert (second.types, second.batch_size, second.max_delay) == (("Bounce",), 10, 5.0)
    assert webhook_key(second) == "tsa-feed"
    assert len(webhook_key(first)) == 32 and "hooks" not in webhook_key(first)


@pytest.mark.parametrize(
    ("webhook", "message"),
    [
        ({}, "webhooks[0].url: expected an http"),
        ({"url": "ftp://x"}, "webhooks[0].url"),
        ({"url": "http://x", "types": ["Sent"]}, "webhooks[0].types[0]"),
        ({"url": "http://x", "name": "../up"}, "webhooks[0].name"),
        ({"url": "http://x", "batch_size": 0}, "webhooks[0].batch_size"),
        ({"url": "http://x", "colour": "red"}, "webhooks[0].colour: unknown key"),
        ({"url": "http://x", "retry_interval": "1m", "max_retry_interval": "1s"}, "max_retry"),
    ],
)
def test_bad_webhooks_are_refused_with_their_path(webhook: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_from_mapping({"webhooks": [webhook]})


def test_two_webhooks_need_distinct_names() -> None:
    with pytest.raises(ConfigError, match="distinct name"):
        config_from_mapping({"webhooks": [{"url": "http://x"}, {"url": "http://x"}]})
    both = [{"url": "http://x", "name": "a"}, {"url": "http://x", "name": "b"}]
    assert len(config_from_mapping({"webhooks": both}).webhooks) == 2


def test_webhooks_from_the_environment() -> None:
    config = load_config(None, environ={"MTA_WEBHOOKS": '[{url="http://127.0.0.1:9/h"}]'})
    assert [hook.url for hook in config.webhooks] == ["http://127.0.0.1:9/h"]
