from pathlib import Path

import pytest

from mta.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mta.toml"
    path.write_text(text)
    return path


def test_embedded_defaults() -> None:
    config = load_config(environ={})
    assert config.smtp.listen == ("0.0.0.0:2525",)
    assert config.smtp.relay_networks == ("127.0.0.0/8", "::1/128")
    assert config.queue.retry_interval == 20 * 60
    assert config.queue.max_age == 7 * 86400
    assert config.delivery.smtp_port == 25
    assert config.routes == ()


def test_file_values_and_durations(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[node]
name = "node-1"
[spool]
path = "/tmp/spool"
min_free_bytes = "1GiB"
[smtp]
listen = ["127.0.0.1:2525", "[::1]:2525"]
max_recipients = 50
idle_timeout = "30s"
[dns]
nameservers = ["127.0.0.1:5353"]
[queue]
retry_interval = "1m"
max_retry_interval = "1h30m"
max_age = "2d"
[[routes]]
domains = ["example.com", "*.example.org"]
relay = "127.0.0.1:2526"
[log]
path = "/tmp/logs"
stdout = false
""",
    )
    config = load_config(path, environ={})
    assert config.node.name == "node-1"
    assert config.spool.path == Path("/tmp/spool")
    assert config.spool.min_free_bytes == 1024**3
    assert config.smtp.listen == ("127.0.0.1:2525", "[::1]:2525")
    assert config.smtp.idle_timeout == 30
    assert config.queue.retry_interval == 60
    assert config.queue.max_retry_interval == 5400
    assert config.queue.max_age == 2 * 86400
    assert config.routes[0].domains == ("example.com", "*.example.org")
    assert config.routes[0].relay == ("127.0.0.1:2526",)  # a string is a one-host list
    assert config.log.stdout is False


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[smtp]\nmax_recipients = 50\n")
    config = load_config(
        path,
        environ={
            "MTA_SMTP__MAX_RECIPIENTS": "7",
            "MTA_SMTP__LISTEN": "127.0.0.1:1025,127.0.0.2:1025",
            "MTA_ROUTES": '[{domains = ["*"], relay = "127.0.0.1:2526"}]',
            "MTA_LOG__STDOUT": "false",
            "UNRELATED": "x",
        },
    )
    assert config.smtp.max_recipients == 7
    assert config.smtp.listen == ("127.0.0.1:1025", "127.0.0.2:1025")
    assert config.routes[0].relay == ("127.0.0.1:2526",)  # a string is a one-host list
    assert config.log.stdout is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[smtp]\nlisten_on = []\n", "smtp.listen_on: unknown key"),
        ("[smpt]\n", "smpt: unknown key"),
        ("[smtp]\nmax_recipients = 'many'\n", "smtp.max_recipients:"),
        ("[smtp]\nmax_recipients = 0\n", "smtp.max_recipients: must be greater than zero"),
        ("[queue]\nmax_age = '7 days'\n", "queue.max_age: invalid duration"),
        ("[smtp]\nlisten = ['nowhere']\n", "smtp.listen[0]:"),
        ("[smtp]\nrelay_networks = ['10.0.0.0/33']\n", "smtp.relay_networks[0]:"),
        ("[delivery]\nenable_tls = 'Sometimes'\n", "delivery.enable_tls: 'Sometimes' is not"),
        ("[[routes]]\ndomains = ['*']\nrelay = 'host:notaport'\n", "routes[0].relay:"),
        ("[[routes]]\ndomains = ['*']\nrelya = 'x:1'\n", "routes[0].relya: unknown key"),
        ("[queue]\nretry_interval = '2h'\nmax_retry_interval = '1h'\n", "queue.max_retry_interval"),
        ("[smtp\n", "invalid TOML"),
    ],
)
def test_bad_config_names_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    assert message in str(info.value)


def test_bad_environment_value_names_key() -> None:
    with pytest.raises(ConfigError, match=r"queue\.retry_interval: invalid duration"):
        load_config(environ={"MTA_QUEUE__RETRY_INTERVAL": "soon"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", environ={})
