"""`mta dkim keygen`: the key file is private, the printed records parse as zone-file TXT
records, and a signature made with the written key verifies against the printed record."""

import stat

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from mta.cli import main
from mta.config import DkimDomainConfig
from mta.dkim.signer import build_signer
from tests.support.dkim import verify_all

MESSAGE = b"From: Alice <alice@example.org>\r\nSubject: hi\r\n\r\nHello.\r\n"


def keygen(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["dkim", "keygen", *args])
    out, err = capsys.readouterr()
    return code, out, err


def records(output: str) -> dict[str, dns.rdata.Rdata]:
    """Every non-comment line: `name IN TXT "..." ...`, parsed by dnspython."""
    parsed = {}
    for line in output.splitlines():
        if line.startswith(";") or not line.strip():
            continue
        name, klass, rdtype, rdata = line.split(" ", 3)
        assert (klass, rdtype) == ("IN", "TXT")
        parsed[name] = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, rdata)
    return parsed


@pytest.mark.parametrize(("algorithm", "strings"), [("rsa-sha256", 2), ("ed25519-sha256", 1)])
async def test_keygen_record_verifies_a_signature(
    tmp_path, capsys, dns_server, algorithm, strings
) -> None:
    code, out, _ = keygen(
        capsys,
        "--domain", "example.org", "--selector", "k1", "--algorithm", algorithm,
        "--out", str(tmp_path),
    )  # fmt: skip
    key_file = tmp_path / "example.org" / "k1.key"
    published = records(out)
    key_txt = published["k1._domainkey.example.org."]
    for name, rdata in published.items():
        dns_server.add(name, "TXT", rdata.to_text())
    table = DkimDomainConfig(selector="k1", key_file=key_file, algorithm=algorithm)
    signer = build_signer({"example.org": table})
    assert signer is not None
    try:
        signed = await signer.sign(MESSAGE, "alice@example.org")
    finally:
        signer.close()

    assert code == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_txt.strings) == strings  # RSA-2048: 392 characters, two strings
    assert all(len(part) <= 255 for part in key_txt.strings)
    assert b"".join(key_txt.strings).startswith(b"v=DKIM1; k=")
    assert published["example.org."].strings[0].startswith(b"v=spf1 ")
    assert published["_dmarc.example.org."].strings[0].startswith(b"v=DMARC1; p=")
    assert [r.ok for r in await verify_all(signed, dns_server.port)] == [True]


def test_keygen_never_overwrites_without_force(tmp_path, capsys) -> None:
    args = ("--domain", "example.org", "--selector", "k1", "--out", str(tmp_path))
    assert keygen(capsys, *args, "--algorithm", "ed25519-sha256")[0] == 0
    first = (tmp_path / "example.org" / "k1.key").read_bytes()

    code, _, err = keygen(capsys, *args)
    kept = (tmp_path / "example.org" / "k1.key").read_bytes()
    forced = keygen(capsys, *args, "--force")[0]

    assert code == 2 and "--force" in err
    assert kept == first
    assert forced == 0
    assert (tmp_path / "example.org" / "k1.key").read_bytes() != first


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--domain", "example.org", "--selector", "bad selector"), "--selector"),
        (("--domain", "nodots", "--selector", "s1"), "--domain"),
        (("--domain", "example.org", "--selector", "s1", "--bits", "512"), "--bits"),
    ],
)
def test_keygen_refuses_bad_arguments(tmp_path, capsys, args, complaint) -> None:
    code, _, err = keygen(capsys, *args, "--out", str(tmp_path))

    assert code == 2
    assert complaint in err
    assert not any(tmp_path.iterdir())
