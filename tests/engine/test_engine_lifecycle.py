"""The stack program on the real engine: up, the rows on the proxy, keys that work, and no-ops that stay
no-ops for preview, up and refresh; then destroy leaves nothing of the stack on the proxy."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests

from providers.client import LiteLLMClient, NotFound

from .conftest import Project


def chat(url: str, raw_key: str) -> int:
    """The status of one completion with `fake-mock` (answered by the proxy itself)."""
    answer = requests.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {raw_key}"},
                           json={"model": "fake-mock", "messages": [{"role": "user", "content": "hi"}]},
                           timeout=60)
    return answer.status_code


def key_status(api: LiteLLMClient, raw: str) -> str:
    """The key's status on the proxy: "active" while it exists, "deleted" once deleted."""
    info = api.key_info(hashlib.sha256(raw.encode()).hexdigest())["info"]
    return info.get("status") or "active"


def eppn_users(unique: str) -> list[dict[str, Any]]:
    """Two EPPN users: one with a generated key, one whose key /user/new creates (auto_create_key)."""
    return [
        {"user_id": f"jdoe-{unique}@example.edu", "user_email": f"jdoe-{unique}@example.edu",
         "user_role": "internal_user", "max_budget": 10, "models": ["fake-mock"], "user_models": ["fake-mock"]},
        {"user_id": f"asmith-{unique}@example.edu", "user_email": f"asmith-{unique}@example.edu",
         "user_role": "internal_user", "auto_create_key": True, "key_alias": f"asmith-{unique}-key",
         "max_budget": 5, "models": ["fake-mock"], "user_models": ["fake-mock"]},
    ]


def test_up_then_every_no_op_is_a_no_op_and_destroy_leaves_nothing(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    users = eppn_users(unique)
    project.configure({"litellm:users": users})
    project.up()

    jdoe, asmith = (u["user_id"] for u in users)
    assert api.user_info(jdoe)["user_info"]["user_email"] == f"jdoe-{unique}@example.edu"
    assert api.user_info(asmith)["user_info"]["max_budget"] == 5.0

    keys = project.outputs(secrets=True)["key"]  # one map by user_id
    assert sorted(keys) == sorted([jdoe, asmith])
    for user, raw in keys.items():
        assert raw.startswith("sk-"), user
        row = api.key_info(hashlib.sha256(raw.encode()).hexdigest())["info"]
        assert row["user_id"] == user
        assert chat(litellm.url, raw) == 200, user
    assert api.key_info(hashlib.sha256(keys[asmith].encode()).hexdigest())["info"]["key_alias"] == f"asmith-{unique}-key"
    # Without --show-secrets the keys stay hidden.
    assert project.outputs()["key"] == "[secret]"

    project.run("preview", "--expect-no-changes")
    project.up("--expect-no-changes")
    project.run("refresh", "--yes", "--expect-no-changes")

    project.run("destroy", "--yes", "--skip-preview")
    for user, raw in keys.items():
        with pytest.raises(NotFound):
            api.user_info(user)
        assert key_status(api, raw) == "deleted", user  # LiteLLM answers deleted keys from an archive
        assert chat(litellm.url, raw) == 401, user
    assert project.resources() == []
