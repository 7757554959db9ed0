"""Who may call what: trusted networks, Basic users (file, directory), bearer tokens, admins."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import aiohttp
import pytest

from tests.integration.http.test_http_support import (
    INJECT_BODY,
    UNTRUSTED,
    basic,
    bcrypt_hash,
    bearer,
    serve_http,
    write_lines,
    write_users_dir,
)

INJECT = "/api/inject/v1"


def sha256_secret(password: str) -> str:
    return "{SHA256}" + base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()


@pytest.fixture
def credential_files(tmp_path):
    users_file = write_lines(
        tmp_path / "users",
        [
            "# comment lines and blank lines are ignored",
            "",
            "plain:s3cret:with:colons",
            f"hashed:{bcrypt_hash('bcrypt-pass')}",
            f"digest:{sha256_secret('digest-pass')}",
            "ops:ops-pass",
        ],
    )
    users_dir = write_users_dir(tmp_path / "secret", {"user1": "PASSWORD\n"})
    tokens = write_lines(tmp_path / "tokens", ["anonymous-token", "ci:ci-token"])
    return {
        "users_file": users_file,
        "users_dir": users_dir,
        "tokens_file": tokens,
        "trusted_networks": UNTRUSTED,
        "admin_users": ("ops", "ci"),
    }


async def post_inject(session, url, headers=None) -> tuple[int, str, aiohttp.ClientResponse]:
    async with session.post(url + INJECT, json=INJECT_BODY, headers=headers) as response:
        return response.status, await response.text(), response


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (basic("plain", "s3cret:with:colons"), 200),
        (basic("plain", "wrong"), 401),
        (basic("hashed", "bcrypt-pass"), 200),
        (basic("hashed", "bcrypt-wrong"), 401),
        (basic("digest", "digest-pass"), 200),
        (basic("digest", "digest-wrong"), 401),
        (basic("user1", "PASSWORD"), 200),
        (basic("user1", "password"), 401),
        (basic("nobody", "PASSWORD"), 401),
        (bearer("anonymous-token"), 200),
        (bearer("ci-token"), 200),
        (bearer("ci"), 401),
        ({"Authorization": "Basic " + base64.b64encode(b"plain").decode()}, 401),
        ({"Authorization": "Digest username=plain"}, 400),
        ({"Authorization": "Basic not*base64"}, 400),
        ({"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()}, 400),
        ({"Authorization": "Bearer"}, 400),
        ({"Authorization": "garbage"}, 400),
    ],
)
async def test_inject_auth_matrix_from_an_untrusted_address(credential_files, headers, status):
    async with serve_http(**credential_files) as served, aiohttp.ClientSession() as session:
        got, text, response = await post_inject(session, served.url, headers)

    assert got == status, text
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="mta"'
        expected = "Missing Authorization header" if not headers else "Invalid Authorization"
        assert text == expected
    if status == 400:
        assert text == "Malformed or unsupported Authorization header"
    if status == 200:
        assert len(served.inject.calls) == 1
    else:
        assert served.inject.calls == []


async def test_secrets_never_appear_in_answers_or_logs(credential_files, caplog):
    async with serve_http(**credential_files) as served, aiohttp.ClientSession() as session:
        for headers in (basic("plain", "guess-1"), basic("hashed", "guess-2"), bearer("guess-3")):
            status, text, _ = await post_inject(session, served.url, headers)
            assert status == 401
            assert "guess" not in text
    assert "guess" not in caplog.text
    assert "s3cret" not in caplog.text


async def test_trusted_network_needs_no_credentials_but_bad_ones_still_fail(credential_files):
    trusted = {**credential_files, "trusted_networks": ("127.0.0.0/8",)}
    async with serve_http(**trusted) as served, aiohttp.ClientSession() as session:
        assert (await post_inject(session, served.url))[0] == 200
        # As KumoMTA: credentials that are sent are checked, whatever the address.
        assert (await post_inject(session, served.url, basic("plain", "wrong")))[0] == 401
        assert (await post_inject(session, served.url, bearer("anonymous-token")))[0] == 200
        async with session.get(served.url + "/metrics") as response:
            assert response.status == 200


@pytest.mark.parametrize("path", ["/metrics", "/api/admin/anything/v1"])
async def test_admin_paths_need_an_admin_user_or_a_trusted_address(credential_files, path):
    async with serve_http(**credential_files) as served, aiohttp.ClientSession() as session:
        url = served.url + path
        async with session.get(url) as response:
            assert response.status == 401
        async with session.get(url, headers=basic("user1", "PASSWORD")) as response:
            assert response.status == 403
            assert await response.text() == "admin rights required"
        async with session.get(url, headers=bearer("anonymous-token")) as response:
            assert response.status == 403
        async with session.get(url, headers=basic("ops", "ops-pass")) as response:
            admin_status = response.status
        async with session.get(url, headers=bearer("ci-token")) as response:
            token_status = response.status

    # Past the auth check: /metrics answers, an unknown admin path is a plain 404.
    expected = 200 if path == "/metrics" else 404
    assert admin_status == token_status == expected


async def test_probes_need_no_credentials(credential_files):
    async with serve_http(**credential_files) as served, aiohttp.ClientSession() as session:
        for path in ("/livez", "/readyz", "/api/check-liveness/v1"):
            async with session.get(served.url + path) as response:
                assert (response.status, await response.text()) == (200, "OK")
        async with session.get(served.url + "/api-docs/openapi.json") as response:
            assert response.status == 401


async def test_rotated_credentials_are_picked_up(tmp_path, credential_files):
    async with serve_http(**credential_files) as served, aiohttp.ClientSession() as session:
        assert (await post_inject(session, served.url, basic("user1", "PASSWORD")))[0] == 200
        # Rotate the Secret the way the kubelet does: a new data dir, then swap ..data.
        secret_dir = credential_files["users_dir"]
        new_data = secret_dir / "..2024_02_02_00_00_00.000000002"
        new_data.mkdir()
        (new_data / "user1").write_text(bcrypt_hash("NEW-PASSWORD"))
        (secret_dir / "..data_tmp").symlink_to(new_data.name)
        (secret_dir / "..data_tmp").rename(secret_dir / "..data")

        deadline = asyncio.get_running_loop().time() + 10
        while (await post_inject(session, served.url, basic("user1", "NEW-PASSWORD")))[0] != 200:
            assert asyncio.get_running_loop().time() < deadline, "new password never accepted"
            await asyncio.sleep(0.2)
        assert (await post_inject(session, served.url, basic("user1", "PASSWORD")))[0] == 401


async def test_unreadable_credentials_stop_the_start(tmp_path):
    users = write_lines(tmp_path / "users", ["broken-line-without-colon"])
    with pytest.raises(ValueError, match=r"users:1: expected user:password"):
        async with serve_http(users_file=users):
            pass
