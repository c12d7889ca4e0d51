"""The exact request bodies of every create and update, as the proxy received them (the pass-through
records them, raw keys redacted). Expected bodies are literals: what was declared, in LiteLLM's names.

Changing one managed field sends only that field (plus the object's identity); `spend` and `duration` are
never sent again unless their own declared value changed (sending them would reset the key's spend or push
its expiry out from now)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from providers.client import LiteLLMClient, token_hash
from support.stack import KEYS, USERS, checked

REDACTED = "sk-[redacted]"


def user_props(url: str, token: str, uid: str, **changes: Any) -> dict[str, Any]:
    return checked(USERS, {"url": url, "token": token, "user_id": uid, "user_email": f"{uid}@example.org",
                           "user_alias": f"{uid}-alias", "user_role": "internal_user", "models": ["fake-gpt-4o"],
                           "max_budget": 10, "tpm_limit": 1000, "rpm_limit": 10, "auto_create_key": False,
                           "key_alias": uid, "adopt_existing": False, **changes})


def key_props(url: str, token: str, uid: str, **changes: Any) -> dict[str, Any]:
    return checked(KEYS, {"url": url, "token": token, "user_id": uid, "key_alias": uid, "models": ["fake-gpt-4o"],
                          "max_budget": 5, "budget_duration": "30d", "duration": "365d", "team_id": None,
                          "metadata": {"owner": uid}, "max_parallel_requests": 100, "tpm_limit": 100000,
                          "rpm_limit": 1000, "spend": 0, "model_max_budget": None, "existing_key": None,
                          "adopt_existing": False, **changes})


@pytest.fixture
def team(created, litellm, unique):
    """A real team with the user in it (LiteLLM's /key/update refuses a team that does not exist, or one
    the key's user is not a member of)."""
    auth = {"Authorization": f"Bearer {litellm.master_key}"}
    team_id = f"{unique}-team"
    members = [{"role": "user", "user_id": unique}]
    requests.post(f"{litellm.url}/team/new", json={"team_id": team_id, "members_with_roles": members},
                  headers=auth, timeout=30).raise_for_status()
    yield team_id
    requests.post(f"{litellm.url}/team/delete", json={"team_ids": [team_id]}, headers=auth, timeout=30)


@pytest.fixture
def created(litellm, api: LiteLLMClient, tap, unique):
    """A user and its generated key, created through the pass-through; the bodies of both creates."""
    user = USERS.create(user_props(tap.url, litellm.master_key, unique))
    key = KEYS.create(key_props(tap.url, litellm.master_key, unique))
    bodies = [(c.method, c.path, c.body) for c in tap.calls if c.method == "POST"]
    tap.reset()
    yield user, key, bodies
    api.user_delete(unique)
    api.key_delete(key.id)


def test_create_bodies_are_exactly_what_was_declared(created, unique) -> None:
    user, key, bodies = created
    assert bodies == [
        ("POST", "/user/new", {"user_id": unique, "user_email": f"{unique}@example.org", "user_alias": f"{unique}-alias",
                               "user_role": "internal_user", "models": ["fake-gpt-4o"], "max_budget": 10.0,
                               "tpm_limit": 1000, "rpm_limit": 10, "auto_create_key": False,
                               "metadata": {"pulumi_create": "pending"}}),
        ("POST", "/user/update", {"user_id": unique, "metadata": {"pulumi_create": "done"}}),
        ("POST", "/key/generate", {"key": REDACTED, "user_id": unique, "key_alias": unique, "models": ["fake-gpt-4o"],
                                   "max_budget": 5.0, "budget_duration": "30d", "duration": "365d",
                                   "metadata": {"owner": unique, "pulumi_create": "pending"},
                                   "max_parallel_requests": 100, "tpm_limit": 100000, "rpm_limit": 1000,
                                   "spend": 0.0}),
        ("POST", "/key/update", {"key": key.id, "metadata": {"owner": unique}}),
    ]
    assert key.id == token_hash(key.outs["key"])  # the minted key is the one sent


USER_CHANGES: dict[str, tuple[Any, Any]] = {  # field: (declared value, what the body carries)
    "user_email": ("changed@example.org", "changed@example.org"),
    "user_alias": ("Ann", "Ann"),
    "user_role": ("internal_user_viewer", "internal_user_viewer"),
    "models": (["fake-gpt-4o", "fake-gpt-4o-mini"], ["fake-gpt-4o", "fake-gpt-4o-mini"]),
    "max_budget": (12.5, 12.5),
    "tpm_limit": (2000, 2000),
    "rpm_limit": (20, 20),
}


KEY_CHANGES: dict[str, tuple[Any, Any]] = {
    "key_alias": ("renamed", "renamed"),
    "models": (["fake-gpt-4o-mini"], ["fake-gpt-4o-mini"]),
    "max_budget": (7, 7.0),
    "budget_duration": ("7d", "7d"),
    "duration": ("30d", "30d"),
    "metadata": ({"owner": "someone else"}, {"owner": "someone else"}),
    "max_parallel_requests": (3, 3),
    "tpm_limit": (500, 500),
    "rpm_limit": (50, 50),
    "spend": (1.5, 1.5),
}


CHANGES = [("User", name) for name in USER_CHANGES] + [("Key", name) for name in KEY_CHANGES]


@pytest.mark.parametrize("resource, name", CHANGES, ids=[f"{r}.{n}" for r, n in CHANGES])
def test_an_update_sends_only_the_changed_field(resource, name, created, litellm, tap, unique) -> None:
    user, key, _ = created
    declared, sent = (USER_CHANGES if resource == "User" else KEY_CHANGES)[name]
    if name == "key_alias":
        declared = sent = f"{unique}-{declared}"
    if resource == "User":
        USERS.update(unique, user.outs, user_props(tap.url, litellm.master_key, unique, **{name: declared}))
        assert tap.bodies(path="/user/update") == [{"user_id": unique, name: sent}]
    else:
        KEYS.update(key.id, key.outs, key_props(tap.url, litellm.master_key, unique, **{name: declared}))
        assert tap.bodies(path="/key/update") == [{"key": key.id, name: sent}]
    assert tap.count(method="POST") == 1


def test_a_key_team_change_sends_only_team_id(team, created, litellm, tap, unique) -> None:
    _, key, _ = created
    KEYS.update(key.id, key.outs, key_props(tap.url, litellm.master_key, unique, team_id=team))
    assert tap.bodies(path="/key/update") == [{"key": key.id, "team_id": team}]


def test_spend_and_duration_are_never_sent_again(created, litellm, tap, unique) -> None:
    """Every other key field changed at once: the body has all of them, and neither spend nor duration."""
    _, key, _ = created
    news = key_props(tap.url, litellm.master_key, unique, models=["fake-gpt-4o-mini"], max_budget=7,
                     budget_duration="7d", metadata={"v": 2}, max_parallel_requests=3, tpm_limit=500, rpm_limit=50)
    KEYS.update(key.id, key.outs, news)
    assert tap.bodies(path="/key/update") == [{"key": key.id, "models": ["fake-gpt-4o-mini"], "max_budget": 7.0,
                                                "budget_duration": "7d", "metadata": {"v": 2},
                                                "max_parallel_requests": 3, "tpm_limit": 500, "rpm_limit": 50}]


def test_clearing_fields_sends_their_cleared_values(created, litellm, tap, unique) -> None:
    """A budget, a limit or metadata removed from the declaration is cleared on the proxy, not kept."""
    user, key, _ = created
    KEYS.update(key.id, key.outs, key_props(tap.url, litellm.master_key, unique, max_budget=0, metadata=None,
                                            tpm_limit=None))
    USERS.update(unique, user.outs, user_props(tap.url, litellm.master_key, unique, max_budget=None))
    assert tap.bodies(path="/key/update") == [{"key": key.id, "max_budget": None, "metadata": {}, "tpm_limit": None}]
    assert tap.bodies(path="/user/update") == [{"user_id": unique, "max_budget": None}]


def test_bodies_are_recorded_with_raw_keys_redacted(created, api, tap) -> None:
    """The pass-through's records never hold a raw key (the minted key went out in /key/generate)."""
    _, key, bodies = created
    assert key.outs["key"] not in repr(bodies) and REDACTED in repr(bodies)
