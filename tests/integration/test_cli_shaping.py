"""`mta shaping resolve` and `mta shaping check` as a real subprocess: effective settings with
their provenance, providers by MX (given or from DNS), relay routes, bad files named."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.support.dns_server import TestDNSServer

TIMEOUT_SECONDS = 30

SHAPING = """\
["example.com"]
connection_limit = 3
max_message_rate = "20/s"

["gmail.com"]
max_message_rate = "7/s"

["example.com".sources."ip-1"]
max_message_rate = "5/s"
"""

BAD_SHAPING = """\
["example.com"]
connection_limit = 3
max_mesage_rate = "20/s"
"""


async def run_mta(*args: str) -> tuple[int, str, str]:
    """`python -m mta ARGS` without the caller's MTA_* environment: (exit code, out, err)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mta",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(TIMEOUT_SECONDS):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_config(tmp_path: Path, shaping: str, *, dns_port: int = 9, extra: str = "") -> Path:
    shaping_file = tmp_path / "shaping.toml"
    shaping_file.write_text(shaping)
    config = tmp_path / "mta.toml"
    config.write_text(
        f"[shaping]\nfiles = [{json.dumps(str(shaping_file))}]\n"
        f'[dns]\nnameservers = ["127.0.0.1:{dns_port}"]\ntimeout = "2s"\n{extra}'
    )
    return config


def header(out: str) -> dict[str, str]:
    """The `key: value` lines before the first blank line."""
    lines = out.split("\n\n", 1)[0].splitlines()
    return dict(line.split(": ", 1) for line in lines)


def setting(out: str, option: str) -> str:
    """The `option = value  # origin` line for `option`."""
    found = [line for line in out.splitlines() if line.startswith(f"{option} = ")]
    assert len(found) == 1, out
    return found[0]


async def test_a_domain_table_value_and_its_provenance(tmp_path: Path) -> None:
    config = write_config(tmp_path, SHAPING)
    shaping_file = tmp_path / "shaping.toml"
    code, out, err = await run_mta(
        "shaping", "resolve", "Example.COM", "--config", str(config), "--mx", "mx1.example.com"
    )

    assert code == 0, err
    assert header(out) == {
        "domain": "example.com",
        "site": "mx1.example.com",
        "mx": "mx1.example.com (--mx)",
        "source": "(none)",
        "providers": "(none)",
    }
    assert setting(out, "max_message_rate") == (
        f'max_message_rate = "20/s"  # {shaping_file} ["example.com"]'
    )
    assert setting(out, "connection_limit") == (
        f'connection_limit = 3  # {shaping_file} ["example.com"]'
    )
    assert setting(out, "smtp_port") == "smtp_port = 25  # mta.toml [delivery]"
    assert "# automation rule: " in out  # the built-in file's default rules


async def test_a_source_table_applies_with_source(tmp_path: Path) -> None:
    config = write_config(tmp_path, SHAPING)
    code, out, err = await run_mta(
        "shaping", "resolve", "example.com", "--config", str(config), "--mx", "mx1.example.com",
        "--source", "ip-1",
    )  # fmt: skip

    assert code == 0, err
    assert header(out)["source"] == "ip-1"
    assert setting(out, "max_message_rate").startswith('max_message_rate = "5/s"  # ')
    assert setting(out, "max_message_rate").endswith('["example.com".sources."ip-1"]')


async def test_google_mx_hosts_match_the_google_provider(tmp_path: Path) -> None:
    config = write_config(tmp_path, SHAPING)
    code, out, err = await run_mta(
        "shaping", "resolve", "customer.example", "--config", str(config),
        "--mx", "aspmx.l.google.com", "--mx", "alt1.aspmx.l.google.com",
    )  # fmt: skip

    assert code == 0, err
    assert header(out)["providers"] == "google"
    assert header(out)["site"] == "alt1.aspmx.l.google.com|aspmx.l.google.com"
    assert setting(out, "provider_name").startswith('provider_name = "google"  # ')
    assert 'default_shaping.toml [provider."google"]' in setting(out, "provider_name")


async def test_mx_from_dns_and_mx_rollup(tmp_path: Path, dns_server: TestDNSServer) -> None:
    dns_server.add("gmail.com", "MX", "5 gmail-smtp-in.l.google.com.")
    dns_server.add("customer.example", "MX", "5 gmail-smtp-in.l.google.com.")
    config = write_config(tmp_path, SHAPING, dns_port=dns_server.port)
    code, out, err = await run_mta(
        "shaping", "resolve", "customer.example", "--config", str(config)
    )

    assert code == 0, err
    assert header(out) == {
        "domain": "customer.example",
        "site": "gmail-smtp-in.l.google.com",
        "mx": "gmail-smtp-in.l.google.com (DNS)",
        "source": "(none)",
        "providers": "google",
    }
    # ["gmail.com"] (mx_rollup) applies to every domain on gmail.com's site.
    line = setting(out, "max_message_rate")
    assert line == f'max_message_rate = "7/s"  # {tmp_path / "shaping.toml"} ["gmail.com"]'
    assert dns_server.query_count("customer.example", "MX") >= 1


async def test_a_failed_mx_lookup_still_shows_the_domain_settings(
    tmp_path: Path, dns_server: TestDNSServer
) -> None:
    config = write_config(tmp_path, SHAPING, dns_port=dns_server.port)
    code, out, err = await run_mta("shaping", "resolve", "example.com", "--config", str(config))

    assert code == 1
    assert "MX lookup failed" in err and "example.com" in err
    assert header(out)["providers"] == "(none)"
    assert setting(out, "connection_limit").startswith("connection_limit = 3  # ")


async def test_a_relay_route_means_the_relay_host(tmp_path: Path) -> None:
    route = '[[routes]]\ndomains = ["*"]\nrelay = "smtp.aspmx.l.google.com:2525"\n'
    config = write_config(tmp_path, SHAPING, extra=route)
    code, out, err = await run_mta("shaping", "resolve", "example.org", "--config", str(config))

    assert code == 0, err
    assert header(out)["site"] == "relay:smtp.aspmx.l.google.com:2525"
    assert header(out)["mx"] == "smtp.aspmx.l.google.com (relay route)"
    assert header(out)["providers"] == "google"


async def test_a_bad_shaping_file_names_file_table_and_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, BAD_SHAPING)
    shaping_file = tmp_path / "shaping.toml"
    resolve = await run_mta("shaping", "resolve", "example.com", "--config", str(config))
    check = await run_mta("shaping", "check", "--config", str(config))
    check_file = await run_mta("shaping", "check", str(shaping_file))

    expected = f'{shaping_file}: ["example.com"] max_mesage_rate: unknown option'
    for code, out, err in (resolve, check, check_file):
        assert code == 2
        assert out == ""
        assert expected in err


async def test_check_reports_ok(tmp_path: Path) -> None:
    config = write_config(tmp_path, SHAPING)
    by_config = await run_mta("shaping", "check", "--config", str(config))
    by_files = await run_mta("shaping", "check", str(tmp_path / "shaping.toml"))

    assert by_config[:2] == (0, "ok\n"), by_config[2]
    assert by_files[:2] == (0, "ok\n"), by_files[2]


async def test_a_bad_config_is_named(tmp_path: Path) -> None:
    config = tmp_path / "mta.toml"
    config.write_text("[shaping]\nfile = []\n")
    resolve = await run_mta("shaping", "resolve", "example.com", "--config", str(config))
    missing = await run_mta("shaping", "check", "--config", str(tmp_path / "absent.toml"))

    assert resolve[0] == 2
    assert "config error: shaping.file: unknown key" in resolve[2]
    assert missing[0] == 2
    assert "config file not found" in missing[2]
