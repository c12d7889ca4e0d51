"""What the state keeps of a LiteLLM answer (`user_response`, `user_data`, `key_response`, `key_data`):
the ids and the fields people read, nothing else.

A full answer is ~1 KiB of mostly defaults, and the engine stores each output again in the stack's exports
and rewrites the whole state file at every step, so the state of a large stack grew with every copy. The
kept fields are listed once here (the README's "Outputs" table names them).
"""

from __future__ import annotations

from typing import Any

# Fields kept wherever they appear: the ids (`token` is a key's hash) and what users read. `key` is the raw
# key of an auto-created key in `user_response`; `created_at` and `expires` also drive key rotation;
# `adopted` says the object was taken over (adopt_existing).
KEPT = (
    "user_id", "user_email", "team_id", "token", "key", "key_alias", "key_name", "created_at", "expires",
    "models", "max_budget", "spend", "blocked", "adopted",
)
# Where an answer nests the row: /user/info's `user_info`, /key/info's `info`.
ROWS = ("user_info", "info")


def trim(answer: Any) -> Any:
    """The kept fields of an answer (and of the row it nests), null entries dropped; None stays None."""
    if not isinstance(answer, dict):
        return answer
    out = {name: answer[name] for name in KEPT if answer.get(name) is not None}
    out.update({name: trim(answer[name]) for name in ROWS if isinstance(answer.get(name), dict)})
    return out


def without(answer: Any, *names: str) -> Any:
    """The answer without some of its fields (a value stored in another output already)."""
    return {k: v for k, v in answer.items() if k not in names} if isinstance(answer, dict) else answer


def read_row(data: Any) -> dict[str, Any]:
    """The row a `*_data` output holds (`user_data.user_info`, `key_data.info` with the key's hash as
    `token`): what an answer is stored against."""
    if not isinstance(data, dict):
        return {}
    row = next((data[name] for name in ROWS if isinstance(data.get(name), dict)), {})
    return {**row, "token": data["key"]} if data.get("key") else row


def beside(answer: Any, data: Any) -> Any:
    """An answer as the state keeps it beside the read of the same object: only its fields whose value the
    read (`data`) does not hold already, {} when there are none (never None: the engine drops a null output,
    and an output missing from the state is unknown at preview). The answer and the read are taken moments
    apart, so most fields are the same; stored twice they made ~0.5 KiB of every user's state."""
    if not isinstance(answer, dict):
        return answer
    row = read_row(data)
    return {name: value for name, value in answer.items() if name not in row or row[name] != value}


def rebuilt(rest: Any, data: Any) -> Any:
    """The answer `beside` kept, whole again: the read's row under the fields the answer held otherwise.
    An update keeps the answer's values (LiteLLMProvider.whole); after a refresh, the fields the answer had
    the same as the read show what the refresh read."""
    if rest is not None and not isinstance(rest, dict):
        return rest
    if not rest and not isinstance(data, dict):
        return rest
    return {**read_row(data), **(rest or {})}
