"""The stack program: one UserWithKey per entry of `litellm:users`, and the module's five outputs per user.

Config (Pulumi.<stack>.yaml):
  litellm:url     the proxy's root URL (else the LITELLM_URL environment variable)
  litellm:token   secret admin token (else LITELLM_MASTER_KEY)
  litellm:users   a list of objects with the module's input names (user_id and user_email required), and
                  optionally `name`: the resource name, which defaults to the user_id
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pulumi

from components import UserWithKey, UserWithKeyArgs

OUTPUTS = ("user_response", "user_data", "key", "key_data", "key_response")
# `name` (default: the user_id) names the stack's resources and outputs. Keep it when changing a user_id, so
# the change replaces the user in place instead of creating a new one before the old is gone (its email
# would still be taken).
USER_KEYS = {f.name for f in dataclasses.fields(UserWithKeyArgs)} - {"url", "token"} | {"name"}


def resource_name(user: dict[str, Any]) -> str:
    return user.get("name") or user["user_id"]


def validate_users(users: Any) -> list[dict[str, Any]]:
    """Stop at preview what LiteLLM would only reject at apply time: unknown input names, and two users
    with the same user_id, email (case-insensitive) or key alias in one stack."""
    if not isinstance(users, list):
        raise ValueError("litellm:users must be a list of objects with the module's input names")
    seen: dict[str, dict[str, int]] = {"name": {}, "user_id": {}, "user_email": {}, "key_alias": {}}
    for index, user in enumerate(users):
        where = f"litellm:users[{index}]"
        if not isinstance(user, dict):
            raise ValueError(f"{where} must be an object with the module's input names")
        unknown = sorted(set(user) - USER_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown input {', '.join(unknown)}; accepted: {', '.join(sorted(USER_KEYS))}")
        for name in ("user_id", "user_email"):
            if not isinstance(user.get(name), str) or not user[name].strip():
                raise ValueError(f"{where}.{name} is required (a non-blank string)")
        if "name" in user and (not isinstance(user["name"], str) or not user["name"].strip()):
            raise ValueError(f"{where}.name must be a non-blank string (it defaults to the user_id)")
        identities = {
            "user_id": user["user_id"],
            "user_email": user["user_email"].lower(),
            "key_alias": user.get("key_alias") or user["user_id"],
            "name": resource_name(user),
        }
        for name, value in identities.items():
            if value in seen[name]:
                raise ValueError(
                    f"{where}.{name} {value!r} is already used by litellm:users[{seen[name][value]}]; "
                    f"each {name} must be unique in the stack (LiteLLM rejects duplicates at apply time)"
                )
            seen[name][value] = index
    return users


def main() -> None:
    config = pulumi.Config("litellm")
    url = config.get("url") or os.environ.get("LITELLM_URL")
    token = config.get_secret("token") or (
        pulumi.Output.secret(os.environ["LITELLM_MASTER_KEY"]) if os.environ.get("LITELLM_MASTER_KEY") else None
    )
    if not url:
        raise ValueError("set litellm:url (pulumi config set litellm:url http://host:4000) or LITELLM_URL")
    if token is None:
        raise ValueError("set litellm:token (pulumi config set --secret litellm:token sk-...) or LITELLM_MASTER_KEY")
    for user in validate_users(config.get_object("users") or []):
        inputs = {key: value for key, value in user.items() if key != "name"}
        managed = UserWithKey(resource_name(user), UserWithKeyArgs(url=url, token=token, **inputs))
        for output in OUTPUTS:
            pulumi.export(f"{resource_name(user)}_{output}", getattr(managed, output))


main()
