"""The User and Key providers against the real LiteLLM proxy and its database: create, read, update,
delete, drift after out-of-band changes and deletions, both auto-key modes, every output, and the
failures recorded in shared/reference/LITELLM-API.md."""

from __future__ import annotations

import ssl
import subprocess
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from providers.client import LiteLLMClient, LiteLLMError, token_hash
from support.passthrough import PassThrough
from support.proxy_state import key_alive, keys_of, user_exists
from support.stack import KEYS, USERS, checked


def user_props(litellm: Any, user_id: str, **overrides: Any) -> dict[str, Any]:
    props = dict(url=litellm.url, token=litellm.master_key, user_id=user_id, user_email=f"{user_id}@example.org",
                 user_alias=user_id, user_role="internal_user", models=["fake-gpt-4o"], max_budget=10.0,
                 tpm_limit=1000, rpm_limit=10, auto_create_key=False, key_alias=user_id, adopt_existing=False)
    return checked(USERS, {**props, **overrides})


def key_props(litellm: Any, user_id: str, **overrides: Any) -> dict[str, Any]:
    props = dict(url=litellm.url, token=litellm.master_key, user_id=user_id, key_alias=user_id,
                 models=["fake-gpt-4o"], max_budget=5.0, budget_duration="30d", duration="365d", team_id=None,
                 metadata={"owner": user_id}, max_parallel_requests=100, tpm_limit=100000, rpm_limit=1000,
                 spend=0, model_max_budget={}, existing_key=None, adopt_existing=False)
    return checked(KEYS, {**props, **overrides})


@pytest.fixture
def cleanup(api: LiteLLMClient):
    """Users to delete after the test, whatever happened (their keys go with them)."""
    user_ids: list[str] = []
    yield user_ids
    for user_id in user_ids:
        USERS.delete(user_id, {"url": api._url, "token": api._token})


def create_pair(litellm: Any, user_id: str, cleanup: list[str], auto: bool = False, **key_overrides: Any):
    cleanup.append(user_id)
    user = USERS.create(user_props(litellm, user_id, auto_create_key=auto))
    existing = (user.outs["user_response"] or {}).get("key") or None  # stored beside user_data: no "" key
    key = KEYS.create(key_props(litellm, user_id, existing_key=existing, **key_overrides))
    return user, key


# ------------------------------------------------------------------ create
@pytest.mark.parametrize("auto", [False, True], ids=["generated-key", "auto-created-key"])
def test_create_both_modes_every_output(litellm, api, unique, cleanup, auto):
    user, key = create_pair(litellm, unique, cleanup, auto=auto)

    assert user.id == unique
    # The answer is stored beside the read: only what user_data lacks (the raw key, the key's name...).
    assert "user_id" not in user.outs["user_response"] and user.outs["user_data"]["user_info"]["user_id"] == unique
    assert bool(user.outs["user_response"]["key"]) is auto
    assert user.outs["user_data"]["user_info"]["user_email"] == f"{unique}@example.org"
    info = api.user_info(unique)["user_info"]
    assert (info["user_role"], info["models"], info["max_budget"], info["tpm_limit"], info["rpm_limit"]) == (
        "internal_user", ["fake-gpt-4o"], 10.0, 1000, 10)
    assert info["user_alias"] == unique

    raw = key.outs["key"]
    assert raw.startswith("sk-") and key.id == token_hash(raw)
    assert key.outs["key_data"]["info"]["key_alias"] == unique
    assert "key_alias" not in key.outs["key_response"] and "token" not in key.outs["key_response"]
    live = api.key_info(key.id)["info"]
    assert (live["models"], live["max_budget"], live["budget_duration"], live["metadata"], live["user_id"]) == (
        ["fake-gpt-4o"], 5.0, "30d", {"owner": unique}, unique)
    assert (live["tpm_limit"], live["rpm_limit"], live["max_parallel_requests"]) == (100000, 1000, 100)
    assert live["expires"] is not None
    # Exactly one key: the auto-created one was adopted, not joined by a second (the module's collision).
    assert [row["token"] for row in keys_of(api, unique)] == [key.id]
    if auto:
        assert raw == user.outs["user_response"]["key"]


def test_zero_budget_and_empty_maps_are_not_sent(litellm, api, unique, cleanup):
    cleanup.append(unique)
    USERS.create(user_props(litellm, unique, max_budget=0))
    key = KEYS.create(key_props(litellm, unique, max_budget=0, metadata={}, model_max_budget={}))
    assert api.user_info(unique)["user_info"]["max_budget"] is None
    live = api.key_info(key.id)["info"]
    assert (live["max_budget"], live["metadata"], live["model_max_budget"]) == (None, {}, {})


# ---------------------------------------------------------- read and drift
def test_noop_read_reports_no_drift(litellm, unique, cleanup):
    user, key = create_pair(litellm, unique, cleanup)
    news_user, news_key = user_props(litellm, unique), key_props(litellm, unique)
    assert USERS.diff(unique, USERS.read(unique, user.outs).outs, news_user).changes is False
    assert KEYS.diff(key.id, KEYS.read(key.id, key.outs).outs, news_key).changes is False


def test_out_of_band_edit_is_drift_and_update_restores_it(litellm, api, unique, cleanup):
    user, key = create_pair(litellm, unique, cleanup)
    api.user_update({"user_id": unique, "max_budget": 99, "user_role": "proxy_admin"})
    api.key_update(key.id, {"models": ["fake-gpt-4o-mini"], "tpm_limit": 1, "metadata": {"x": 1}})

    user_state = USERS.read(unique, user.outs).outs
    key_state = KEYS.read(key.id, key.outs).outs
    user_diff = USERS.diff(unique, user_state, user_props(litellm, unique))
    key_diff = KEYS.diff(key.id, key_state, key_props(litellm, unique))
    assert sorted(user_diff.diffs) == ["max_budget", "user_role"] and user_diff.replaces == []
    assert sorted(key_diff.diffs) == ["metadata", "models", "tpm_limit"] and key_diff.replaces == []

    USERS.update(unique, user_state, user_props(litellm, unique))
    KEYS.update(key.id, key_state, key_props(litellm, unique))
    info = api.user_info(unique)["user_info"]
    live = api.key_info(key.id)["info"]
    assert (info["max_budget"], info["user_role"]) == (10.0, "internal_user")
    assert (live["models"], live["tpm_limit"], live["metadata"]) == (["fake-gpt-4o"], 100000, {"owner": unique})


def test_server_maintained_values_are_not_drift(litellm, api, unique, cleanup):
    user, key = create_pair(litellm, unique, cleanup)
    api.key_update(key.id, {"spend": 3.5})  # spend moves on its own in real use
    api.user_update({"user_id": unique, "spend": 2.0})
    assert KEYS.diff(key.id, KEYS.read(key.id, key.outs).outs, key_props(litellm, unique)).changes is False
    assert USERS.diff(unique, USERS.read(unique, user.outs).outs, user_props(litellm, unique)).changes is False


def test_out_of_band_key_delete_reads_as_gone(litellm, api, unique, cleanup):
    _, key = create_pair(litellm, unique, cleanup)
    api.key_delete(key.id)
    assert api.key_info(key.id)["info"]["status"] == "deleted"  # LiteLLM still answers 200
    gone = KEYS.read(key.id, key.outs)
    assert gone.id == "" and gone.outs == {}


def test_out_of_band_user_delete_reads_as_gone(litellm, api, unique, cleanup):
    user, key = create_pair(litellm, unique, cleanup)
    api.user_delete(unique)
    assert USERS.read(unique, user.outs).id == ""
    assert KEYS.read(key.id, key.outs).id == ""  # deleting a user deletes its keys


def test_update_of_a_user_deleted_out_of_band_fails_clearly_and_creates_nothing(litellm, api, unique, cleanup):
    user, _ = create_pair(litellm, unique, cleanup)
    api.user_delete(unique)
    with pytest.raises(LiteLLMError, match="no longer exists.*pulumi refresh"):
        USERS.update(unique, user.outs, user_props(litellm, unique, max_budget=20))
    assert not user_exists(api, unique)  # /user/update would have upserted a partial user


# ------------------------------------------------------------------ update
def test_key_update_sends_only_what_changed(litellm, api, unique, cleanup, tap):
    _, key = create_pair(litellm, unique, cleanup, spend=1.25)
    api.key_update(key.id, {"spend": 4.0})  # the proxy's own accounting since creation
    expires = api.key_info(key.id)["info"]["expires"]
    news = key_props(litellm, unique, spend=1.25, max_budget=8, url=tap.url)
    diff = KEYS.diff(key.id, key.outs, news)
    assert diff.diffs == ["url", "max_budget"] and diff.replaces == []

    result = KEYS.update(key.id, key.outs, news)
    live = api.key_info(key.id)["info"]
    assert live["max_budget"] == 8.0
    assert live["spend"] == 4.0, "spend was re-sent and reset"
    assert live["expires"] == expires, "duration was re-sent and pushed expiry out"
    assert result.outs["key"] == key.outs["key"] and result.outs["key_data"]["info"]["max_budget"] == 8.0
    assert tap.count(method="POST", path="/key/update") == 1


def test_changing_spend_or_duration_is_sent_when_declared(litellm, api, unique, cleanup):
    _, key = create_pair(litellm, unique, cleanup)
    news = key_props(litellm, unique, spend=2.0, duration="1d")
    assert sorted(KEYS.diff(key.id, key.outs, news).diffs) == ["duration", "spend"]
    KEYS.update(key.id, key.outs, news)
    live = api.key_info(key.id)["info"]
    lifetime = datetime.fromisoformat(live["expires"]) - datetime.fromisoformat(live["created_at"])
    assert live["spend"] == 2.0 and lifetime < timedelta(days=2)


def test_user_update_clears_a_budget_and_keeps_unchanged_fields(litellm, api, unique, cleanup):
    user, _ = create_pair(litellm, unique, cleanup)
    news = user_props(litellm, unique, max_budget=0, rpm_limit=20)
    assert sorted(USERS.diff(unique, user.outs, news).diffs) == ["max_budget", "rpm_limit"]
    USERS.update(unique, user.outs, news)
    info = api.user_info(unique)["user_info"]
    assert (info["max_budget"], info["rpm_limit"], info["tpm_limit"]) == (None, 20, 1000)


def test_only_user_id_replaces(litellm, unique):
    olds = user_props(litellm, unique)
    assert USERS.diff(unique, olds, user_props(litellm, unique + "x")).replaces == ["user_id"]
    for change in (dict(user_email="new@example.org"), dict(user_role="proxy_admin"), dict(models=["a"]),
                   dict(max_budget=3), dict(user_alias="n"), dict(tpm_limit=5), dict(rpm_limit=5)):
        diff = USERS.diff(unique, olds, user_props(litellm, unique, **change))
        assert diff.changes and diff.replaces == [], change
    key_olds = key_props(litellm, unique)
    for change in (dict(key_alias="other"), dict(models=["a"]), dict(max_budget=1), dict(budget_duration="7d"),
                   dict(duration="1d"), dict(team_id="t"), dict(metadata={"a": "b"}), dict(spend=1),
                   dict(max_parallel_requests=1), dict(tpm_limit=1), dict(rpm_limit=1)):
        diff = KEYS.diff("h", key_olds, key_props(litellm, unique, **change))
        assert diff.changes and diff.replaces == [], change


def test_numbers_as_floats_are_no_change(litellm, unique):
    """The plugin hands numbers over as floats (300 -> 300.0)."""
    olds = key_props(litellm, unique)
    news = key_props(litellm, unique, tpm_limit=100000.0, rpm_limit=1000.0, max_parallel_requests=100.0)
    assert KEYS.diff("h", olds, news).changes is False


def test_token_rotation_is_an_update_without_calls(litellm, unique, cleanup, tap):
    user, key = create_pair(litellm, unique, cleanup)
    olds = {**key.outs, "url": tap.url}  # as if created through the pass-through, which counts the calls
    news = key_props(litellm, unique, token="sk-rotated-admin-key", url=tap.url)
    diff = KEYS.diff(key.id, olds, news)
    assert diff.diffs == ["token"] and diff.replaces == []
    assert KEYS.update(key.id, olds, news).outs["token"] == "sk-rotated-admin-key"
    assert tap.count() == 0


def test_a_url_change_checks_the_key_at_the_new_url(litellm, api, unique, cleanup, tap):
    """One GET at the new url; a key that is not there is a clear error, not a silent state change."""
    user, key = create_pair(litellm, unique, cleanup)
    news = key_props(litellm, unique, url=tap.url)
    assert KEYS.update(key.id, key.outs, news).outs["url"] == tap.url
    assert [f"{c.method} {c.path}" for c in tap.calls] == ["GET /key/info"]
    api.key_delete(key.id)
    with pytest.raises(LiteLLMError, match=r"does not exist at http://127\.0\.0\.1:\d+ \(litellm:url changed; "
                       r"the state has it at http://127\.0\.0\.1:\d+\)"):
        KEYS.update(key.id, key.outs, news)


# ------------------------------------------------------------------ delete
def test_delete_twice_is_safe(litellm, api, unique, cleanup):
    user, key = create_pair(litellm, unique, cleanup)
    for _ in range(2):
        KEYS.delete(key.id, key.outs)
        USERS.delete(unique, user.outs)
    assert not key_alive(api, key.id) and not user_exists(api, unique)


# ---------------------------------------------------------------- failures
def test_duplicate_user_says_how_to_adopt(litellm, unique, cleanup):
    create_pair(litellm, unique, cleanup)
    with pytest.raises(LiteLLMError, match="already exists.*adopt_existing=True"):
        USERS.create(user_props(litellm, unique))


def test_duplicate_key_alias_is_a_clear_error(litellm, unique, cleanup):
    create_pair(litellm, unique, cleanup)
    cleanup.append(unique + "b")
    USERS.create(user_props(litellm, unique + "b"))
    with pytest.raises(LiteLLMError, match=f"key_alias '{unique}' is already used"):
        KEYS.create(key_props(litellm, unique + "b", key_alias=unique))


def test_wrong_token_is_a_clear_error_without_the_token(litellm, unique):
    props = user_props(litellm, unique, token="sk-wrong-token-000")
    with pytest.raises(LiteLLMError) as caught:
        USERS.create(props)
    assert caught.value.status == 401 and "Authentication Error" in str(caught.value)
    assert "sk-wrong-token-000" not in str(caught.value)


def test_non_admin_key_cannot_manage_users(litellm, unique, cleanup):
    _, key = create_pair(litellm, unique, cleanup)
    with pytest.raises(LiteLLMError) as caught:
        USERS.create(user_props(litellm, unique + "n", token=key.outs["key"]))
    assert caught.value.status == 401 and key.outs["key"] not in str(caught.value)


def test_enterprise_only_model_max_budget_is_reported(litellm, api, unique, cleanup):
    cleanup.append(unique)
    USERS.create(user_props(litellm, unique))
    with pytest.raises(LiteLLMError, match="enterprise license"):
        KEYS.create(key_props(litellm, unique, model_max_budget={"fake-gpt-4o": 1}))
    assert keys_of(api, unique) == []


def test_legacy_role_is_mapped_not_sent(litellm, api, unique, cleanup):
    cleanup.append(unique)
    USERS.create(user_props(litellm, unique, user_role="app_user"))
    assert api.user_info(unique)["user_info"]["user_role"] == "internal_user_viewer"


def test_tls_is_verified_and_requests_ca_bundle_is_honoured(tmp_path, monkeypatch, unique):
    """The module disabled TLS verification; the client never does, and trusts a private CA given
    through REQUESTS_CA_BUNDLE."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"user_id": "x", "user_info": {}, "keys": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.setenv("LITELLM_RETRY_ATTEMPTS", "0")
        with pytest.raises(LiteLLMError, match="TLS verification failed"):
            LiteLLMClient(url, "sk-x").user_info("x")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        assert LiteLLMClient(url, "sk-x").user_info("x")["user_id"] == "x"
    finally:
        server.shutdown()


# ------------------------------------------------------- review findings
def test_a_404_about_something_else_is_not_taken_for_a_deleted_key(litellm, api, unique, cleanup):
    """/key/update answers 404 for a team_id that does not exist (which /key/generate accepted): that is
    LiteLLM's message to show, not "the key was deleted outside Pulumi"."""
    _, key = create_pair(litellm, unique, cleanup, team_id=f"{unique}-no-such-team")
    with pytest.raises(LiteLLMError) as caught:
        KEYS.update(key.id, key.outs, key_props(litellm, unique, team_id=f"{unique}-no-such-team", max_budget=9))
    assert caught.value.status == 404 and "no longer exists" not in str(caught.value)
    assert "team" in str(caught.value).lower()
    assert key_alive(api, key.id)


def test_a_users_alias_defaults_to_its_user_id(litellm):
    props = {"url": litellm.url, "token": "sk-x", "user_id": "u1", "user_email": "u1@example.org"}
    assert USERS.check({}, props).inputs["user_alias"] == "u1"
    assert USERS.check({}, {**props, "user_alias": "Ann"}).inputs["user_alias"] == "Ann"


def test_a_failed_read_back_does_not_fail_an_update_that_was_made(litellm, api, unique, cleanup, tap):
    """Failing the step would keep the old state, and the next up would send the change (spend and
    duration included) again."""
    _, key = create_pair(litellm, unique, cleanup)
    tap.inject("status", method="GET", path="/key/info", status=500)  # 500: never retried
    result = KEYS.update(key.id, key.outs, key_props(litellm, unique, url=tap.url, spend=2.0))
    assert result.outs["spend"] == 2.0 and result.outs["key_data"] is None
    assert api.key_info(key.id)["info"]["spend"] == 2.0


def test_a_garbled_answer_to_key_generate_keeps_that_key(litellm, api, unique, cleanup, monkeypatch):
    """A 200 whose body is not JSON: the raw key was minted by the provider, so the key it made is found by
    its hash and kept, usable; nothing is generated twice."""
    cleanup.append(unique)
    USERS.create(user_props(litellm, unique))
    garbled = {"left": 1}

    def garble(method, path, query, status, payload, fetch):
        if path == "/key/generate" and garbled["left"]:
            garbled["left"] -= 1
            return status, b"<html>proxy error page</html>"
        return status, payload

    monkeypatch.setenv("LITELLM_RETRY_BACKOFF", "0.05")
    with PassThrough(litellm.url, rewrite=garble) as tap:
        key = KEYS.create(key_props(litellm, unique, url=tap.url))
        assert tap.count(path="/key/generate") == 1
    assert [row["token"] for row in keys_of(api, unique)] == [key.id] and key.id == token_hash(key.outs["key"])
    assert api.key_info(key.id)["info"]["metadata"] == {"owner": unique}  # the pending marker was replaced


def test_a_repeated_generate_with_the_same_raw_key_creates_nothing(api, unique, cleanup):
    """What makes provider-minted keys safe to retry (recorded in docs/faults.md)."""
    cleanup.append(unique)
    api.user_new({"user_id": unique, "user_email": f"{unique}@example.org", "auto_create_key": False})
    raw = f"sk-{unique}-chosen-by-the-caller"
    first = api.key_generate({"key": raw, "user_id": unique, "key_alias": unique, "max_budget": 5})
    assert first["key"] == raw and first["token"] == token_hash(raw)
    with pytest.raises(LiteLLMError, match=r"HTTP 400.*already exists"):
        api.key_generate({"key": raw, "user_id": unique, "key_alias": unique, "max_budget": 7})
    again = api.key_generate({"key": raw, "user_id": unique, "max_budget": 7})  # no alias: 200, echoes the request
    assert again["token"] == token_hash(raw) and again["max_budget"] == 7.0
    assert [(row["token"], row["max_budget"], row["key_alias"]) for row in keys_of(api, unique)] == [
        (token_hash(raw), 5.0, unique)]
