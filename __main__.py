"""The stack program: one UserWithKey per entry of `litellm:users`, and the module's five outputs per user.

Config (Pulumi.<stack>.yaml):
  litellm:url     the proxy's root URL (else the LITELLM_URL environment variable)
  litellm:token   secret admin token (else LITELLM_MASTER_KEY)
  litellm:users   a list of objects with the module's input names (user_id and user_email required), and
                  optionally `name`: the resource name, which defaults to the user_id
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import pulumi

from components import UserWithKey, UserWithKeyArgs
from components.user_with_key import INPUTS
from providers import fields as f

OUTPUTS = ("user_response", "user_data", "key", "key_data", "key_response")
CONFIG_KEYS = ("litellm:url", "litellm:token", "litellm:users")  # what the program reads
# A user entry: the component's inputs (the credentials come from litellm:url/litellm:token), and `name`
# (default: the user_id), which names the stack's resources and outputs. Keep it when changing a user_id, so
# the change replaces the user in place instead of creating a new one before the old is gone (its email
# would still be taken).
USER_INPUTS: dict[str, f.Field] = {
    **{name: field for name, field in INPUTS.items() if name not in ("url", "token")},
    "name": f.Field("name", f.text()),
}
# Identities LiteLLM requires to be unique, with how a user entry yields each (None: the entry has none).
UNIQUE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "user_id": lambda user: user.get("user_id"),
    "user_email": lambda user: user["user_email"].lower() if isinstance(user.get("user_email"), str) else None,
    "key_alias": lambda user: user.get("key_alias") or user.get("user_id"),
    "name": lambda user: user.get("name") or user.get("user_id"),
}


def resource_name(user: dict[str, Any]) -> str:
    return user.get("name") or user["user_id"]


def where(key: str, index: int, entry: Any, label: str) -> str:
    """`litellm:users[3] (user_id 'carol')`: an entry of a config list, by index and by its own name."""
    named = isinstance(entry, dict) and isinstance(entry.get(label), str)
    return f"{key}[{index}]" + (f" ({label} {entry[label]!r})" if named else "")


def entry_errors(key: str, entries: Any, table: Mapping[str, f.Field], label: str) -> list[str]:
    """Every problem of a config list (`litellm:users`, ...), each naming its entry:
    `litellm:users[3] (user_id 'carol'): max_budget must be a number >= 0; got -5`."""
    if not isinstance(entries, list):
        return [f"{key} must be a list of objects with these names: {', '.join(sorted(table))}"]
    errors = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors.append(f"{key}[{index}] must be an object with these names: {', '.join(sorted(table))}")
            continue
        errors += [f"{where(key, index, entry, label)}: {problem}" for problem in f.problems(table, entry)]
    return errors


def collisions(key: str, entries: list[Any], unique: Mapping[str, Callable[[dict[str, Any]], Any]], label: str) -> list[str]:
    """Entries that share an identity LiteLLM requires to be unique: it would refuse them only at apply time."""
    errors: list[str] = []
    seen: dict[str, dict[str, int]] = {name: {} for name in unique}
    for index, entry in enumerate(entries):
        reported = set()  # one message per entry and clash: a user_id twice is not also a key_alias twice
        for name, identity in unique.items():
            value = identity(entry) if isinstance(entry, dict) else None
            if not isinstance(value, str) or not value.strip():
                continue
            if value in seen[name] and (value, seen[name][value]) not in reported:
                reported.add((value, seen[name][value]))
                errors.append(
                    f"{where(key, index, entry, label)}: {name} {value!r} is already used by {key}[{seen[name][value]}]; "
                    f"each {name} must be unique in the stack (LiteLLM rejects duplicates at apply time)"
                )
            seen[name].setdefault(value, index)
    return errors


def user_errors(users: Any) -> list[str]:
    errors = entry_errors("litellm:users", users, USER_INPUTS, "user_id")
    return errors + (collisions("litellm:users", users, UNIQUE, "user_id") if isinstance(users, list) else [])


def report(errors: list[str]) -> str:
    """One message for every error of the config, so a single run shows them all."""
    if len(errors) == 1:
        return errors[0]
    return f"{len(errors)} errors in the stack config:\n" + "\n".join(f"  {error}" for error in errors)


def validate_users(users: Any) -> list[dict[str, Any]]:
    """Stop at preview what LiteLLM would only reject at apply time: unknown input names, bad values, and
    two users with the same user_id, email (case-insensitive) or key alias in one stack; every one at once."""
    errors = user_errors(users)
    if errors:
        raise ValueError(report(errors))
    return users


def config_errors(url: Any, users: Any) -> list[str]:
    """Every error of the stack's config as this program reads it (the token aside: a secret it never shows)."""
    errors = [] if url else ["set litellm:url (pulumi config set litellm:url http://host:4000) or LITELLM_URL"]
    errors += f.problems({"litellm:url": INPUTS["url"]}, {"litellm:url": url}) if url else []
    return errors + user_errors(users)


def main() -> None:
    config = pulumi.Config("litellm")
    url = config.get("url") or os.environ.get("LITELLM_URL")
    token = config.get_secret("token") or (
        pulumi.Output.secret(os.environ["LITELLM_MASTER_KEY"]) if os.environ.get("LITELLM_MASTER_KEY") else None
    )
    users = config.get_object("users") or []
    errors = config_errors(url, users)
    if token is None:
        errors.insert(0, "set litellm:token (pulumi config set --secret litellm:token sk-...) or LITELLM_MASTER_KEY")
    if errors:
        raise ValueError(report(errors))
    for user in users:
        inputs = {key: value for key, value in user.items() if key != "name"}
        managed = UserWithKey(resource_name(user), UserWithKeyArgs(url=url, token=token, **inputs))
        for output in OUTPUTS:
            pulumi.export(f"{resource_name(user)}_{output}", getattr(managed, output))


if __name__ == "__main__":  # the language host runs the program as __main__; scripts/check imports it
    main()
