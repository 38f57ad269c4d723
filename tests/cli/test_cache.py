"""msal-async cache list|remove: accounts and tokens of a cache file, never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msal_async._cli import main

from ..conftest import HttpsAuthority
from .test_token import PUBLIC_CLIENT_ID, SCOPE, USER, authority, device_code_users

__all__ = ["authority"]  # the fixture, re-used


@pytest.fixture
def cache_file(
    authority: HttpsAuthority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A cache file holding a user (device code) and an app token, written by the CLI."""
    device_code_users(authority.emulator)
    path = tmp_path / "cache.json"
    user = ["token", "--device-code", "--client-id", PUBLIC_CLIENT_ID, "--scope", "User.Read"]
    assert main([*user, "--cache", str(path)]) == 0
    assert main(["token", "--scope", SCOPE, "--cache", str(path)]) == 0
    capsys.readouterr()
    return path


def secrets_of(path: Path) -> list[str]:
    document = json.loads(path.read_text())
    return [
        entry["secret"]
        for section in ("AccessToken", "RefreshToken", "IdToken")
        for entry in document.get(section, {}).values()
    ]


def test_list_shows_accounts_scopes_and_expiry_but_no_secret(
    cache_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache", "list", str(cache_file)]) == 0
    out = capsys.readouterr().out
    assert f"account {USER}" in out
    assert "User.Read" in out
    assert "api://orders/.default" in out
    assert "expires in 59 min" in out or "expires in 60 min" in out
    assert "RefreshToken" in out
    for secret in secrets_of(cache_file):
        assert secret[:20] not in out


def test_list_as_json(cache_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "list", str(cache_file), "--json"]) == 0
    text = capsys.readouterr().out
    [listing] = json.loads(text).values()
    assert [a["username"] for a in listing["accounts"]] == [USER]
    kinds = sorted(t["kind"] for t in listing["tokens"])
    assert kinds == ["AccessToken", "AccessToken", "IdToken", "RefreshToken"]
    for secret in secrets_of(cache_file):
        assert secret[:20] not in text


def test_remove_one_account_keeps_the_rest(
    cache_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache", "remove", str(cache_file), "--account", USER.upper()]) == 0
    assert capsys.readouterr().out == f"removed {USER.upper()} from {cache_file}\n"
    document = json.loads(cache_file.read_text())
    assert document["Account"] == {}
    assert document["RefreshToken"] == {}
    [app_token] = document["AccessToken"].values()
    assert app_token["target"] == "api://orders/.default"
    assert main(["cache", "remove", str(cache_file), "--account", USER]) == 2
    assert "no account" in capsys.readouterr().err


def test_remove_deletes_the_file_and_its_lock(
    cache_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = cache_file.with_name(cache_file.name + ".lockfile")
    lock.write_text("")
    assert main(["cache", "remove", str(cache_file)]) == 0
    assert not cache_file.exists()
    assert not lock.exists()
    assert main(["cache", "list", str(cache_file)]) == 2
    assert capsys.readouterr().err.startswith("msal-async cache: no cache at")


def test_a_folder_of_partitions_and_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "partitions"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"Account": {}, "AccessToken": {}}))
    (folder / "b.json").write_text(json.dumps({}))
    assert main(["cache", "list", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("(empty)") == 2
    assert main(["cache", "list", str(folder), "--encryption-key-env", "NO_SUCH_VARIABLE"]) == 2
    assert "encryption_key must be 16, 24 or 32 bytes" in capsys.readouterr().err
