"""DKIM key files: formats we read, errors that name the file, reload on change."""

import base64
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mta.config import ConfigError
from mta.dkim.keys import DkimKeyError, KeyFile, generate_key, key_pem, load_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pkcs8(private) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_rsa_pkcs1_and_pkcs8(tmp_path) -> None:
    key = generate_key("rsa-sha256")
    (tmp_path / "pkcs1.key").write_bytes(key_pem(key))
    (tmp_path / "pkcs8.key").write_bytes(pkcs8(key.private))

    assert key_pem(key).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    for name in ("pkcs1.key", "pkcs8.key"):
        loaded = load_key(tmp_path / name, "rsa-sha256")
        assert loaded.public_value() == key.public_value()


def test_ed25519_pem_and_dkimpy_seed(tmp_path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    (tmp_path / "pem.key").write_bytes(pkcs8(private))
    (tmp_path / "seed.key").write_bytes(base64.b64encode(seed) + b"\n")

    values = {
        load_key(tmp_path / n, "ed25519-sha256").public_value() for n in ("pem.key", "seed.key")
    }

    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert values == {base64.b64encode(raw).decode()}  # RFC 8463: p= is the raw 32 bytes


@pytest.mark.parametrize(
    ("content", "algorithm", "reason"),
    [
        (None, "rsa-sha256", "cannot read DKIM key"),
        (b"not a key\n", "rsa-sha256", "not a usable PEM private key"),
        (b"bm90IDMyIGJ5dGVz\n", "ed25519-sha256", "not a usable PEM private key"),
        ("ed25519", "rsa-sha256", "does not sign rsa-sha256"),
        ("rsa", "ed25519-sha256", "does not sign ed25519-sha256"),
    ],
)
def test_unusable_key_names_the_file(tmp_path, content, algorithm, reason) -> None:
    path = tmp_path / "example.com" / "s1.key"
    path.parent.mkdir()
    if content == "ed25519":
        content = key_pem(generate_key("ed25519-sha256"))
    elif content == "rsa":
        content = key_pem(generate_key("rsa-sha256"))
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(DkimKeyError) as caught:
        load_key(path, algorithm)

    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)


def test_reloaded_when_the_file_changes(tmp_path) -> None:
    path = tmp_path / "s1.key"
    first, second = generate_key("ed25519-sha256"), generate_key("ed25519-sha256")
    path.write_bytes(key_pem(first))
    clock = Clock()
    keys = KeyFile(path, "ed25519-sha256", check_seconds=2, clock=clock)

    path.write_bytes(key_pem(second))
    before_check = keys.current().public_value()
    clock.now += 2
    after_check = keys.current().public_value()

    assert before_check == first.public_value()  # looked at most every check_seconds
    assert after_check == second.public_value()


def test_secret_symlink_swap_is_a_change(tmp_path) -> None:
    """A Secret volume replaces ..data (a symlink) atomically; the key path stays the same."""
    old, new = tmp_path / "..2026_01", tmp_path / "..2026_02"
    keys = [generate_key("rsa-sha256"), generate_key("rsa-sha256")]
    for directory, key in zip((old, new), keys, strict=True):
        directory.mkdir()
        (directory / "s1.key").write_bytes(key_pem(key))
    (tmp_path / "..data").symlink_to(old.name)
    (tmp_path / "s1.key").symlink_to("..data/s1.key")
    clock = Clock()
    key_file = KeyFile(tmp_path / "s1.key", "rsa-sha256", clock=clock)

    (tmp_path / "..data_tmp").symlink_to(new.name)
    (tmp_path / "..data_tmp").rename(tmp_path / "..data")
    clock.now += 60

    assert key_file.current().public_value() == keys[1].public_value()


@pytest.mark.parametrize("broken", ["garbage", "deleted", "wrong type"])
def test_failed_reload_keeps_the_last_good_key(tmp_path, caplog, broken) -> None:
    path = tmp_path / "s1.key"
    good = generate_key("rsa-sha256")
    path.write_bytes(key_pem(good))
    clock = Clock()
    keys = KeyFile(path, "rsa-sha256", clock=clock)

    if broken == "garbage":
        path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nhalf written")
    elif broken == "deleted":
        path.unlink()
    else:
        path.write_bytes(key_pem(generate_key("ed25519-sha256")))
    clock.now += 60
    with caplog.at_level(logging.ERROR, logger="mta.dkim.keys"):
        current = keys.current()

    assert current.public_value() == good.public_value()
    assert [r.getMessage() for r in caplog.records if str(path) in r.getMessage()]


def test_rsa_signature_through_openssl_is_pkcs1_v1_5(tmp_path) -> None:
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = generate_key("rsa-sha256")
    digest = hashlib.sha256(b"data").digest()
    signature = key.sign_digest(digest)

    assert isinstance(key.private, rsa.RSAPrivateKey)
    key.private.public_key().verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())
