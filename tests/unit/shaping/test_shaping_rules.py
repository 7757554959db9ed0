"""Shaping files: merging, provenance, providers, MX rollup, sources, errors, reload."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from shaping.loader import ShapingError
from shaping.rules import DEFAULT_SHAPING_FILE, Rules, ShapingRules, site_name_for
from shaping.spec import parse_throttle_spec

WriteFile = Callable[[str, str], Path]
GOOGLE_MX = ("gmail-smtp-in.l.google.com.", "alt1.gmail-smtp-in.l.google.com")
YAHOO_MX = ("mta5.am0.yahoodns.net", "mta6.am0.yahoodns.net")


@pytest.fixture
def write(tmp_path: Path) -> WriteFile:
    def make(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


def test_shipped_default_file_loads_cleanly() -> None:
    rules = Rules.load([DEFAULT_SHAPING_FILE])
    assert rules.warnings == ()
    assert {"google", "outlook", "office365", "yahoo", "apple"} <= set(rules.providers)
    gmail = rules.resolve("gmail.com", mx_hosts=GOOGLE_MX, source="ip-1")
    assert gmail.providers == ("google",)
    assert gmail.config.provider_name == "google"
    assert gmail.config.additional_connection_limits == {"shaping-provider-google-ip-1-limit": 8}
    assert gmail.config.max_deliveries_per_connection == 50
    # No rate for destinations without a rule of their own (concurrency only, as Postfix).
    assert rules.resolve("example.org").config.max_message_rate is None


def test_later_files_merge_over_earlier_ones_with_provenance(write: WriteFile) -> None:
    base = write("base.toml", '["default"]\nconnection_limit = 10\nmax_message_rate = "100/s"\n')
    local = write("local.toml", '["default"]\nconnection_limit = 5\n')
    resolved = Rules.load([base, local]).resolve("example.org")
    assert resolved.config.connection_limit == 5
    assert resolved.config.max_message_rate == parse_throttle_spec("100/s")
    assert str(resolved.origin("connection_limit")) == f'{local} ["default"]'
    assert str(resolved.origin("max_message_rate")) == f'{base} ["default"]'
    assert resolved.origin("smtp_port") is None  # built-in default
    lines = resolved.explain()
    assert f'connection_limit = 5  # {local} ["default"]' in lines
    assert "smtp_port = 25  # built-in default" in lines
    assert 'max_message_rate = "100/s"  # ' + f'{base} ["default"]' in lines


def test_named_limits_merge_entry_by_entry(write: WriteFile) -> None:
    first = write(
        "a.toml",
        '["default"]\nadditional_message_rate_throttles = {global = "4000/s", eu = "10/s"}\n'
        '["example.org"]\nadditional_message_rate_throttles = {eu = "20/s"}\n',
    )
    second = write("b.toml", '["default"]\nadditional_connection_limits = {global = 100}\n')
    resolved = Rules.load([first, second]).resolve("example.org")
    assert resolved.config.additional_message_rate_throttles == {
        "global": parse_throttle_spec("4000/s"),
        "eu": parse_throttle_spec("20/s"),
    }
    assert resolved.config.additional_connection_limits == {"global": 100}
    origin = resolved.origin("additional_message_rate_throttles.eu")
    assert origin is not None
    assert origin.table == '["example.org"]'
    names = [name for name, _ in resolved.config.message_throttles()]
    assert names == ["eu", "global"]  # slowest first


KUMO_ROLLUP_EXAMPLE = """
["default"]
connection_limit = 10
max_connection_rate = "100/min"
max_deliveries_per_connection = 100
max_message_rate = "100/s"
idle_timeout = "60s"
enable_tls = "Opportunistic"
consecutive_connection_failures_before_delay = 100

["yahoo.com"]
max_deliveries_per_connection = 20

["foo.com"]
mx_rollup = false
max_deliveries_per_connection = 50
connection_limit = 3

["foo.com".sources."IP-1"]
max_deliveries_per_connection = 5
"""


def test_kumomta_rollup_example(write: WriteFile) -> None:
    rules = Rules.load([write("shaping.toml", KUMO_ROLLUP_EXAMPLE)])
    yahoo_site = site_name_for(YAHOO_MX)
    rules = rules.with_sites({"yahoo.com": yahoo_site})
    foo = rules.resolve("foo.com", mx_hosts=YAHOO_MX, source="IP-1")
    assert foo.config.connection_limit == 3
    assert foo.config.max_deliveries_per_connection == 5
    assert foo.config.max_connection_rate == parse_throttle_spec("100/min")
    assert foo.origin("max_deliveries_per_connection") is not None
    assert foo.provenance["max_deliveries_per_connection"].table == '["foo.com".sources."IP-1"]'
    # Another domain on Yahoo's MX hosts shares yahoo.com's table through the site...
    ymail = rules.resolve("ymail.com", mx_hosts=YAHOO_MX)
    assert ymail.config.max_deliveries_per_connection == 20
    assert ymail.provenance["max_deliveries_per_connection"].table == '["yahoo.com"]'
    # ...while foo.com without that source gets its own table, and others the default.
    assert rules.resolve("foo.com", mx_hosts=YAHOO_MX).config.max_deliveries_per_connection == 50
    assert rules.resolve("other.net", mx_hosts=["mx.other.net"]).config.connection_limit == 10


def test_rollup_table_applies_to_its_own_domain_without_binding(write: WriteFile) -> None:
    rules = Rules.load([write("s.toml", KUMO_ROLLUP_EXAMPLE)])
    assert rules.rollup_domains == ("yahoo.com",)
    assert rules.resolve("yahoo.com").config.max_deliveries_per_connection == 20
    unbound = rules.resolve("ymail.com", mx_hosts=YAHOO_MX)
    assert unbound.config.max_deliveries_per_connection == 100


PROVIDERS = """
["default"]
connection_limit = 10

[provider."google"]
match = [{MXSuffix = ".google.com"}, {MXSuffix = ".googlemail.com"}]
provider_connection_limit = 5
provider_max_message_rate = "100/s"
max_deliveries_per_connection = 50

[provider."google".sources."ip-2"]
max_deliveries_per_connection = 7

[provider."corp"]
match = [{DomainSuffix = ".corp.example"}, {HostName = "mx.corp.example"}]
connection_limit = 2
"""


@pytest.mark.parametrize(
    ("domain", "hosts", "expected"),
    [
        ("gmail.com", GOOGLE_MX, ("google",)),
        ("custom.org", ("ASPMX.L.GOOGLE.COM.", "alt1.aspmx.l.googlemail.com"), ("google",)),
        ("vanity.org", ("aspmx.l.google.com", "mx.other.net"), ()),  # every host must match
        ("gmail.com", (), ()),  # no MX hosts known: MX rules cannot match
        ("eu.corp.example", ("mx.elsewhere.net",), ("corp",)),  # DomainSuffix suffices
        ("partner.net", ("mx.corp.example",), ("corp",)),
        ("partner.net", ("mx2.corp.example",), ()),  # HostName is exact
        ("notgoogle.com", ("mx.notgoogle.com",), ()),
    ],
)
def test_provider_matching(
    write: WriteFile, domain: str, hosts: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    rules = Rules.load([write("p.toml", PROVIDERS)])
    assert rules.resolve(domain, mx_hosts=hosts).providers == expected


def test_provider_limits_and_sources(write: WriteFile) -> None:
    rules = Rules.load([write("p.toml", PROVIDERS)])
    plain = rules.resolve("gmail.com", mx_hosts=GOOGLE_MX, source="ip-1").config
    assert plain.max_deliveries_per_connection == 50
    assert plain.connection_limit == 10  # per site: the default still applies
    assert plain.additional_connection_limits == {"shaping-provider-google-ip-1-limit": 5}
    assert plain.additional_message_rate_throttles == {
        "shaping-provider-google-ip-1-rate": parse_throttle_spec("100/s")
    }
    other = rules.resolve("gmail.com", mx_hosts=GOOGLE_MX, source="ip-2")
    assert other.config.max_deliveries_per_connection == 7
    assert other.provenance["max_deliveries_per_connection"].table == (
        '[provider."google".sources."ip-2"]'
    )
    unnamed = rules.resolve("gmail.com", mx_hosts=GOOGLE_MX).config
    assert "shaping-provider-google-unspecified-limit" in unnamed.additional_connection_limits


def test_resolution_order(write: WriteFile) -> None:
    text = """
["default"]
max_ready = 1
["default".sources."s"]
max_ready = 2
[provider."p"]
match = [{MXSuffix = ".example.net"}]
max_ready = 3
[provider."p".sources."s"]
max_ready = 4
["site.org"]
max_ready = 5
smtp_port = 2525
["site.org".sources."s"]
max_ready = 6
["dom.org"]
mx_rollup = false
max_ready = 7
["dom.org".sources."s"]
max_ready = 8
"""
    rules = Rules.load([write("o.toml", text)])
    hosts = ("mx.example.net",)
    rules = rules.with_sites({"site.org": site_name_for(hosts)})
    assert rules.resolve("x.org", source="s").config.max_ready == 2
    elsewhere = ("mx2.example.net",)  # the provider's, but not site.org's site
    assert rules.resolve("x.org", mx_hosts=elsewhere).config.max_ready == 3
    assert rules.resolve("x.org", mx_hosts=elsewhere, source="s").config.max_ready == 4
    assert rules.resolve("x.org", mx_hosts=hosts).config.max_ready == 5
    assert rules.resolve("x.org", mx_hosts=hosts, source="s").config.max_ready == 6
    dom = rules.resolve("dom.org", mx_hosts=hosts)
    assert (dom.config.max_ready, dom.config.smtp_port) == (7, 2525)  # site, then domain
    assert rules.resolve("dom.org", mx_hosts=hosts, source="s").config.max_ready == 8


def test_replace_base(write: WriteFile) -> None:
    first = write(
        "a.toml",
        '["default"]\nconnection_limit = 10\nmax_ready = 50\n'
        '["example.org"]\nmx_rollup = false\nsmtp_port = 2525\nmax_message_rate = "1/s"\n',
    )
    second = write(
        "b.toml", '["example.org"]\nmx_rollup = false\nreplace_base = true\nmax_ready = 7\n'
    )
    config = Rules.load([first, second]).resolve("example.org").config
    assert (config.smtp_port, config.max_message_rate) == (25, None)  # earlier table dropped
    assert (config.max_ready, config.connection_limit) == (7, 32)  # and the default too
    assert Rules.load([first]).resolve("example.org").config.connection_limit == 10


def test_domain_names_are_case_insensitive(write: WriteFile) -> None:
    rules = Rules.load([write("c.toml", '["Example.ORG."]\nmx_rollup = false\nmax_ready = 9\n')])
    assert rules.resolve("example.org").config.max_ready == 9
    assert rules.resolve("EXAMPLE.org.").config.max_ready == 9


def test_kumomta_options_we_do_not_implement_are_warnings(write: WriteFile) -> None:
    path = write("k.toml", '["default"]\nprohibited_hosts = ["127.0.0.0/8"]\nuse_lmtp = false\n')
    rules = Rules.load([path])
    assert len(rules.warnings) == 2
    assert all("not implemented" in warning for warning in rules.warnings)
    assert any('["default"] prohibited_hosts' in warning for warning in rules.warnings)


def test_single_label_domain_is_a_warning(write: WriteFile) -> None:
    rules = Rules.load([write("w.toml", '["localhost"]\nmax_ready = 3\n')])
    assert "one label" in rules.warnings[0]


@pytest.mark.parametrize(
    ("text", "table", "key", "message"),
    [
        ('["default"]\nconection_limit = 5\n', '["default"]', "conection_limit", "unknown option"),
        ('["a.org"]\nmax_message_rate = "10/fortnight"\n', '["a.org"]', "max_message_rate",
         "unknown period 'fortnight'"),
        ('["a.org"]\nenable_tls = "Sometimes"\n', '["a.org"]', "enable_tls", "invalid enable_tls"),
        ('["a.org"]\nconnection_limit = "ten"\n', '["a.org"]', "connection_limit", "invalid"),
        ('["a.org"]\nidle_timeout = "soon"\n', '["a.org"]', "idle_timeout", "invalid duration"),
        ('["a.org"]\nmx_rollup = "no"\n', '["a.org"]', "mx_rollup", "true or false"),
        ('["a.org".sources."ip"]\nbogus = 1\n', '["a.org".sources."ip"]', "bogus", "unknown"),
        ('[gmail.com]\nmax_ready = 5\n', '["gmail"]', "com", "Quote domains"),
        ('[provider."x"]\nmatch = [{MXPrefix = "mx."}]\n', '[provider."x"]', "match", "kinds"),
        ('[provider."x"]\nmx_rollup = true\n', '[provider."x"]', "mx_rollup", "unknown option"),
        ('["a.org"]\nadditional_message_rate_throttles = {g = "x"}\n', '["a.org"]',
         "additional_message_rate_throttles.g", "invalid throttle spec"),
        ('[[ "default".automation ]]\nregex = "(unclosed"\naction = "Suspend"\nduration = "1h"\n',
         '[["default".automation]] #1', "regex", "invalid regular expression"),
        ('[["a.org".automation]]\nregex = "x"\naction = "Suspend"\n',
         '[["a.org".automation]] #1', "duration", "missing"),
        ('[[provider."p".automation]]\nregex = "x"\naction = "Explode"\nduration = "1h"\n',
         '[[provider."p".automation]] #1', "action", "unknown action 'Explode'"),
    ],
)  # fmt: skip
def test_errors_name_file_table_and_key(
    write: WriteFile, text: str, table: str, key: str, message: str
) -> None:
    path = write("bad.toml", text)
    with pytest.raises(ShapingError) as info:
        Rules.load([path])
    error = info.value
    assert (error.file, error.table, error.key) == (str(path), table, key)
    assert str(error).startswith(f"{path}: {table} {key}: ")
    assert message in str(error)


def test_unreadable_and_invalid_files(write: WriteFile, tmp_path: Path) -> None:
    with pytest.raises(ShapingError, match="cannot read"):
        Rules.load([tmp_path / "missing.toml"])
    with pytest.raises(ShapingError, match="invalid TOML"):
        Rules.load([write("broken.toml", '["default"\n')])


def test_reload_keeps_the_last_good_rules(
    write: WriteFile, caplog: pytest.LogCaptureFixture
) -> None:
    path = write("live.toml", KUMO_ROLLUP_EXAMPLE)
    live = ShapingRules.load([path])
    live.bind_sites({"yahoo.com": site_name_for(YAHOO_MX)})
    assert live.resolve("ymail.com", mx_hosts=YAHOO_MX).config.max_deliveries_per_connection == 20
    path.write_text('["default"]\nconnection_limit = "many"\n')
    with caplog.at_level(logging.ERROR, logger="shaping"):
        error = live.reload()
    assert isinstance(error, ShapingError)
    assert error.key == "connection_limit"
    assert live.generation == 1
    assert live.last_error is error
    assert "keeping the previous ones" in caplog.text
    assert live.resolve("foo.com", mx_hosts=YAHOO_MX).config.connection_limit == 3
    path.write_text(KUMO_ROLLUP_EXAMPLE.replace("connection_limit = 3", "connection_limit = 4"))
    assert live.reload() is None
    assert (live.generation, live.last_error) == (2, None)
    assert live.resolve("foo.com", mx_hosts=YAHOO_MX).config.connection_limit == 4
    # Site bindings learnt before the reload still hold.
    assert live.resolve("ymail.com", mx_hosts=YAHOO_MX).config.max_deliveries_per_connection == 20


def test_resolved_automation_collects_applicable_rules(write: WriteFile) -> None:
    text = """
[["default".automation]]
regex = "default-rule"
action = "Suspend"
duration = "1h"
[provider."google"]
match = [{MXSuffix = ".google.com"}]
[[provider."google".automation]]
regex = "google-rule"
action = "Suspend"
duration = "1h"
[["other.org".automation]]
regex = "other-rule"
action = "Suspend"
duration = "1h"
"""
    rules = Rules.load([write("a.toml", text)])
    resolved = rules.resolve("gmail.com", mx_hosts=GOOGLE_MX)
    patterns = [rule.regex[0].pattern for rule, _ in resolved.automation]
    assert patterns == ["default-rule", "google-rule"]
    assert resolved.automation[1][1].table == '[[provider."google".automation]] #1'
