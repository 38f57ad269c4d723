"""TokenCache: add, search, modify and remove through its indexes, thread-safely and atomically."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import pytest

from msal_async._cache.token_cache import SerializableTokenCache, TokenCache

from .conftest import at_candidates

NOW = 1_700_000_000
ENV = "login.microsoftonline.com"
AT = TokenCache.CredentialType.ACCESS_TOKEN
RT = TokenCache.CredentialType.REFRESH_TOKEN
IDT = TokenCache.CredentialType.ID_TOKEN
ACCOUNT = TokenCache.CredentialType.ACCOUNT


def b64url_json(obj: Any) -> str:
    """Encode a value as unpadded base64url JSON."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def app_event(
    *, tenant: str = "t1", client_id: str = "c1", scope: str = "s/.default", **data: Any
) -> dict[str, Any]:
    """A client-credentials event for one tenant and client."""
    return {
        "client_id": client_id,
        "scope": [scope],
        "token_endpoint": f"https://{ENV}/{tenant}/oauth2/v2.0/token",
        "environment": ENV,
        "grant_type": "client_credentials",
        "data": data,
        "response": {"access_token": f"at-{tenant}-{client_id}-{scope}", "expires_in": 3600},
    }


def user_event(
    *, uid: str = "u1", scopes: tuple[str, ...] = ("User.Read", "openid")
) -> dict[str, Any]:
    """An auth-code event for one user."""
    claims = {"sub": f"sub-{uid}", "oid": f"oid-{uid}", "preferred_username": f"{uid}@x"}
    return {
        "client_id": "pc",
        "scope": list(scopes),
        "token_endpoint": f"https://{ENV}/common/oauth2/v2.0/token",
        "environment": ENV,
        "grant_type": "authorization_code",
        "data": {"code": "the-auth-code"},
        "response": {
            "access_token": f"user-at-{uid}",
            "refresh_token": f"user-rt-{uid}",
            "id_token": f"h.{b64url_json(claims)}.s",
            "client_info": b64url_json({"uid": uid, "utid": "tid"}),
            "expires_in": 3600,
        },
    }


def user_query(uid: str = "u1") -> dict[str, Any]:
    """The AT partition of a user of the ``pc`` client."""
    return {
        "home_account_id": f"{uid}.tid",
        "environment": ENV,
        "client_id": "pc",
        "realm": "common",
    }


def secrets(entries: Any) -> list[str]:
    """The secrets of some entries, in order."""
    return [e["secret"] for e in entries]


# --- search ---


def test_search_superset_target_and_query() -> None:
    cache = TokenCache()
    cache.add(user_event(scopes=("User.Read", "Mail.Read", "openid")), now=NOW)
    assert secrets(cache.search(AT, ["Mail.Read"], user_query(), now=NOW)) == ["user-at-u1"]
    assert secrets(cache.search(AT, ["mail.read"], user_query(), now=NOW)) == []
    assert secrets(cache.search(AT, ["Calendars.Read"], user_query(), now=NOW)) == []
    assert secrets(cache.search(AT, query={"environment": ENV.upper()}, now=NOW)) == ["user-at-u1"]
    assert secrets(cache.search(AT, now=NOW)) == ["user-at-u1"]


def test_search_exact_key_probe_is_case_insensitive_like_msal() -> None:
    cache = TokenCache()
    cache.add(app_event(scope="API://R/.default"), now=NOW)
    query = {"home_account_id": None, "environment": ENV, "client_id": "c1", "realm": "t1"}
    assert len(list(cache.search(AT, ["api://r/.default"], query, now=NOW))) == 1


def test_search_ext_cache_key_isolation() -> None:
    cache = TokenCache()
    cache.add(app_event(fmi_path="a/b"), now=NOW)
    query = {"home_account_id": None, "environment": ENV, "client_id": "c1", "realm": "t1"}
    assert list(cache.search(AT, ["s/.default"], query, now=NOW)) == []
    (entry,) = cache.search(AT, now=NOW, query={"ext_cache_key": cache_ext_key(cache)})
    with_key = {**query, "ext_cache_key": entry["ext_cache_key"]}
    assert secrets(cache.search(AT, ["s/.default"], with_key, now=NOW)) == ["at-t1-c1-s/.default"]


def cache_ext_key(cache: TokenCache) -> str:
    """The ext_cache_key of the only atext entry."""
    (entry,) = [e for e in cache._cache[AT].values() if "ext_cache_key" in e]
    return str(entry["ext_cache_key"])


def test_expired_ats_are_skipped_and_purged_only_when_exhausted() -> None:
    cache = SerializableTokenCache()
    cache.add(app_event(tenant="t1"), now=NOW)
    cache.add(app_event(tenant="t2"), now=NOW)
    cache.serialize()
    later = NOW + 7200
    gen = cache.search(AT, query={"environment": ENV}, now=later)
    assert list(gen) == []
    assert cache._cache[AT] == {}
    assert cache.has_state_changed

    cache.add(app_event(tenant="t1"), now=NOW)
    first = cache.search(AT, query={"environment": ENV}, now=NOW)
    assert next(first)["realm"] == "t1"
    first.close()  # an early exit purges nothing
    assert len(list(cache.search(AT, now=NOW))) == 1


def test_purge_spares_an_entry_replaced_while_iterating() -> None:
    cache = TokenCache()
    cache.add(app_event(tenant="t1"), now=NOW)
    cache.add(app_event(tenant="t2"), now=NOW + 7200)
    gen = cache.search(AT, query={"environment": ENV}, now=NOW + 7200)
    assert next(gen)["realm"] == "t2"  # the lock is not held here: writers proceed
    cache.add(app_event(tenant="t1"), now=NOW + 7200)  # a fresh t1 token lands
    assert list(gen) == []
    assert sorted(e["realm"] for e in cache.search(AT, now=NOW + 7200)) == ["t1", "t2"]


def test_find_is_deprecated() -> None:
    cache = TokenCache()
    cache.add(app_event(), now=NOW)
    with pytest.warns(DeprecationWarning, match="list"):
        found = cache.find(AT, now=NOW)
    assert secrets(found) == ["at-t1-c1-s/.default"]


# --- access_token_candidates ---


def test_access_token_candidates_probe_first_then_supersets() -> None:
    cache = TokenCache()
    cache.add(user_event(scopes=("A", "B", "C")), now=NOW)
    exact = user_event(scopes=("A",))
    exact["response"]["access_token"] = "exact"
    cache.add(exact, now=NOW)
    kwargs: dict[str, Any] = {"client_id": "pc", "environment": ENV.upper(), "realm": "common"}
    found = at_candidates(cache, scopes=["A"], home_account_id="u1.tid", **kwargs)
    assert secrets(found) == ["exact", "user-at-u1"]
    found = at_candidates(cache, scopes=["C", "B"], home_account_id="u1.tid", **kwargs)
    assert secrets(found) == ["user-at-u1"]
    assert at_candidates(cache, scopes=["A"], **kwargs) == []  # app partition
    later = at_candidates(cache, scopes=["A"], home_account_id="u1.tid", **kwargs)
    assert len(later) == 2  # expiry is the caller's business


def test_access_token_candidates_key_id_and_ext_cache_key() -> None:
    cache = TokenCache()
    cache.add(app_event(key_id="k1"), now=NOW)
    cache.add(app_event(scope="other", fmi_path="p"), now=NOW)
    kwargs: dict[str, Any] = {"client_id": "c1", "environment": ENV, "realm": "t1"}
    assert len(at_candidates(cache, scopes=["s/.default"], key_id="k1", **kwargs)) == 1
    assert at_candidates(cache, scopes=["s/.default"], key_id="k2", **kwargs) == []
    assert at_candidates(cache, scopes=["other"], **kwargs) == []
    ext = cache_ext_key(cache)
    found = at_candidates(cache, scopes=["other"], ext_cache_key=ext, **kwargs)
    assert secrets(found) == ["at-t1-c1-other"]


class NoScanDict(dict[str, Any]):
    """A section that fails any full scan: only key lookups are allowed."""

    def _refuse(self, *_args: Any) -> NoReturn:
        raise AssertionError("the section was scanned")

    __iter__ = values = items = keys = _refuse


def test_lookups_touch_only_their_partition() -> None:
    cache = TokenCache()
    for i in range(10_000):
        cache.add(app_event(tenant=f"tenant{i % 100}", client_id=f"client{i // 100}"), now=NOW)
    cache.add(user_event(), now=NOW)
    cache.add(app_event(tenant="mine", client_id="me"), now=NOW)
    assert len(cache._cache[AT]) == 10_002
    assert AT not in cache._indexes  # access tokens have their own index, by partition and scope
    assert len(cache._ats.groups) == 10_002
    assert list(cache._ats.groups[(None, ENV, "me", "mine")].keys) == [
        "-login.microsoftonline.com-accesstoken-me-mine-s/.default"
    ]

    cache._cache[AT] = NoScanDict(cache._cache[AT])
    found = at_candidates(
        cache, client_id="me", environment=ENV, realm="mine", scopes=["s/.default"]
    )
    assert secrets(found) == ["at-mine-me-s/.default"]
    assert secrets(cache.search(AT, ["User.Read"], user_query(), now=NOW)) == ["user-at-u1"]
    by_account = {"home_account_id": "u1.tid", "environment": ENV}
    assert len(list(cache.search(AT, query=by_account, now=NOW))) == 1
    assert cache._remove_app_tokens(client_id="me", environments=[ENV]) == {"me_mine_AppTokenCache"}
    with pytest.raises(AssertionError, match="scanned"):
        list(cache.search(AT, query={"realm": "mine"}))  # no partition fields: a scan


def test_indexes_follow_modify_and_deserialize() -> None:
    cache = SerializableTokenCache()
    cache.add(user_event(), now=NOW)
    (rt,) = cache.search(RT, query={"home_account_id": "u1.tid", "environment": ENV})
    cache.modify(RT, rt, {"home_account_id": "moved"})  # same key, new partition
    assert list(cache.search(RT, query={"home_account_id": "u1.tid", "environment": ENV})) == []
    assert len(list(cache.search(RT, query={"home_account_id": "moved", "environment": ENV}))) == 1

    clone = SerializableTokenCache()
    clone.deserialize(cache.serialize())
    assert len(list(clone.search(RT, query={"home_account_id": "moved", "environment": ENV}))) == 1
    clone.remove_rt(rt)  # the stored key still derives from the original fields
    assert clone._indexes[RT][0].buckets == {}
    assert clone._indexes[RT][1].buckets == {}
    assert_indexes_consistent(clone)


# --- writes ---


def test_modify_update_and_delete() -> None:
    cache = TokenCache()
    cache.add(app_event(), now=NOW)
    (at,) = cache.search(AT, now=NOW)
    cache.modify(AT, at, {"secret": "new"})
    assert secrets(cache.search(AT, now=NOW)) == ["new"]
    cache.modify(AT, at)
    assert list(cache.search(AT, now=NOW)) == []


def test_remove_and_update_helpers() -> None:
    cache = TokenCache()
    cache.add(user_event(), now=NOW)
    (rt,) = cache.search(RT)
    before = int(time.time())
    cache.update_rt(rt, "rotated")
    (rt,) = cache.search(RT)
    assert rt["secret"] == "rotated"
    assert before <= int(rt["last_modification_time"]) <= int(time.time())
    cache.remove_rt(rt)
    for remover, section in ((cache.remove_at, AT), (cache.remove_idt, IDT)):
        (entry,) = cache.search(section, now=NOW)
        remover(entry)
    (account,) = cache.search(ACCOUNT)
    cache.remove_account(account)
    assert all(list(cache.search(s, now=NOW)) == [] for s in (AT, RT, IDT, ACCOUNT))


def test_remove_helpers_reject_the_wrong_entry_type() -> None:
    cache = TokenCache()
    with pytest.raises(ValueError, match="rt_item"):
        cache.remove_rt({"credential_type": AT})
    with pytest.raises(ValueError, match="rt_item"):
        cache.update_rt({"credential_type": AT}, "x")
    with pytest.raises(ValueError, match="at_item"):
        cache.remove_at({"credential_type": RT})
    with pytest.raises(ValueError, match="idt_item"):
        cache.remove_idt({})
    with pytest.raises(ValueError, match="account_item"):
        cache.remove_account({"credential_type": IDT})


def test_remove_app_tokens() -> None:
    cache = TokenCache()
    cache.add(app_event(tenant="t1"), now=NOW)
    cache.add(app_event(tenant="t2", fmi_path="p"), now=NOW)
    cache.add(app_event(client_id="other"), now=NOW)
    cache.add(user_event(), now=NOW)
    removed = cache._remove_app_tokens(client_id="c1", environments=[ENV.upper(), "elsewhere"])
    assert removed == {"c1_t1_AppTokenCache", "c1_t2_AppTokenCache"}
    assert sorted(secrets(cache.search(AT, now=NOW))) == ["at-t1-other-s/.default", "user-at-u1"]


def test_add_is_all_or_nothing() -> None:
    cache = SerializableTokenCache()
    cache.add(app_event(), now=NOW)
    before = cache.serialize()
    broken = user_event()
    broken["response"]["id_token"] = "not-a-jwt"
    with pytest.raises(ValueError, match="id_token"):
        cache.add(broken, now=NOW)

    def failing_key_maker(**_entry: Any) -> str:
        raise RuntimeError("boom")

    cache.key_makers[RT] = failing_key_maker  # fails after the AT key was made
    with pytest.raises(RuntimeError, match="boom"):
        cache.add(user_event(), now=NOW)
    assert cache.serialize() == before


def test_has_state_changed_and_deserialize_of_nothing() -> None:
    cache = SerializableTokenCache()
    assert not cache.has_state_changed
    cache.add(app_event(), now=NOW)
    assert cache.has_state_changed
    cache.serialize()
    assert not cache.has_state_changed
    list(cache.search(AT, now=NOW))  # reading changes nothing
    assert not cache.has_state_changed
    cache.modify(AT, {"credential_type": AT})
    assert cache.has_state_changed
    for state in (None, "", b""):
        cache.deserialize(state)
        assert not cache.has_state_changed
        assert cache.serialize() == "{}"
    for bad in ("[]", '{"AccessToken": []}'):
        with pytest.raises(ValueError, match="JSON object"):
            cache.deserialize(bad)
    cache.deserialize('{"Foreign": [1], "AccessToken": {"k": "odd"}}')  # kept, never matched
    assert list(cache.search(AT)) == []
    assert json.loads(cache.serialize())["Foreign"] == [1]
    with pytest.raises(ValueError):  # noqa: PT011 - json's own message
        cache.deserialize("{not json")


def test_add_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="msal_async.token_cache"):
        event = user_event()
        event["data"].update(client_secret="the-client-secret", client_assertion="the-jwt")
        TokenCache().add(event, now=NOW)
    text = caplog.text
    assert "event=" in text
    for secret in ("user-at-u1", "user-rt-u1", "the-auth-code", "the-client-secret", "the-jwt"):
        assert secret not in text
    assert event["response"]["id_token"] not in text


# --- threads ---


def test_threads_adding_and_searching_concurrently() -> None:
    cache = SerializableTokenCache()
    stop = threading.Event()

    def writer(n: int) -> None:
        for i in range(200):
            cache.add(app_event(tenant=f"w{n}", client_id=f"c{i}"), now=NOW)
            cache.add(user_event(uid=f"w{n}u{i % 10}"), now=NOW)

    def reader() -> int:
        rounds = 0
        while True:  # at least one round, however late this thread starts
            for _ in cache.search(AT, query={"environment": ENV}, now=NOW):
                pass
            json.loads(cache.serialize())
            rounds += 1
            if stop.is_set():
                return rounds

    with ThreadPoolExecutor(max_workers=10) as pool:
        readers = [pool.submit(reader) for _ in range(2)]
        writers = [pool.submit(writer, n) for n in range(8)]
        for future in writers:
            future.result(timeout=60)  # re-raises a writer's exception
        stop.set()
        assert all(future.result(timeout=60) >= 1 for future in readers)
    assert len(cache._cache[AT]) == 8 * 200 + 8 * 10
    assert_indexes_consistent(cache)


def test_a_paused_search_does_not_block_other_threads() -> None:
    cache = TokenCache()
    cache.add(app_event(tenant="t1"), now=NOW)
    cache.add(app_event(tenant="t2"), now=NOW)
    gen = cache.search(AT, now=NOW)
    next(gen)
    done = threading.Event()

    def add_another() -> None:
        cache.add(app_event(tenant="t3"), now=NOW)
        done.set()

    thread = threading.Thread(target=add_another)
    thread.start()
    assert done.wait(timeout=10)
    thread.join()
    assert len(list(gen)) == 1


def assert_indexes_consistent(cache: TokenCache) -> None:
    """Every entry sits in exactly its bucket of every index, and nothing else does."""
    for ct, indexes in cache._indexes.items():
        section = cache._cache.get(ct, {})
        for index in indexes:
            indexed = {k: b for b, keys in index.buckets.items() for k in keys}
            assert indexed == {k: index.bucket_of(e) for k, e in section.items()}


def test_accounts_for_username_uses_a_case_insensitive_index() -> None:
    """get_accounts(username=...) must not scan every account (issue 3's benchmark)."""
    from msal_async._cache.indexes import FoldedIndex

    cache = TokenCache()
    for i in range(50):
        cache.modify(
            "Account",
            {"home_account_id": f"uid{i}.utid", "environment": "login.microsoftonline.com"},
            {
                "home_account_id": f"uid{i}.utid",
                "environment": "login.microsoftonline.com",
                "realm": "utid",
                "username": f"User{i}@Contoso.com",
                "authority_type": "MSSTS",
                "local_account_id": f"uid{i}",
            },
        )
    found = cache._accounts_for_username("LOGIN.microsoftonline.com", "user7@contoso.COM")
    assert [a["home_account_id"] for a in found] == ["uid7.utid"]
    index = cache._indexes["Account"][-1]
    assert isinstance(index, FoldedIndex)
    assert len(index.keys_for({"environment": "login.microsoftonline.com", "username": "x"})) == 0
