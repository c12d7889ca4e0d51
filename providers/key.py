"""LiteLLM virtual keys: fields, validation, diff and CRUD (`pulumi-python:dynamic/litellm:Key`).

A key's identity (the resource id) is the sha256 hash of the raw key; only the hash ever goes into a URL.
Two ways to create one:
- generate: the provider mints a random raw key and /key/generate stores it (`key_response` is that
  answer), so the key's identity is known before the call and a retry never makes a second key;
- adopt: `existing_key` is a raw key minted elsewhere (the user's auto-created key from /user/new); the
  declared settings are applied to it with /key/update, so it is managed for its whole life either way.
Rotation (`rotate_after`, `rotation_trigger`, expiry) is a create-before-delete replacement: see `_rotate`
and providers/rotation.py; the new key is generated blocked when the key is declared `blocked`.
`spend` and `duration` are sent on create and afterwards only when their declared value changes: sending
them again would reset the key's spend or push its expiry out from now.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Callable, Optional

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, ReadResult, Resource, UpdateResult

from . import blocking, owner, payload, rotation, snapshot
from . import fields as f
from .base import (ChangeSet, LiteLLMProvider, client_for, current_client_for, missing, moved, not_at, read_back,
                   registered, with_token)
from .client import Conflict, LiteLLMClient, LiteLLMError, NotFound, token_hash
from .create import PENDING, CreateProtocol, finish, pending
from .rotation import Rotation

KEY_FIELDS: tuple[f.Field, ...] = (
    *f.CREDENTIALS,
    # Creation-time: the key minted by /user/new. It only changes when the user is recreated, and then the
    # key goes with the user (user_id replaces), so it never triggers anything by itself.
    f.Field("existing_key", f.optional(f.text(512)), sent=False, live=False, diffed=False, secret=True),
    f.Field("user_id", f.text(), required=True, replaces=True),
    # Required (check defaults it to user_id): the alias is how a create whose answer was lost is found again.
    f.Field("key_alias", f.text(), required=True),
    f.Field("models", f.string_list, required=True, default=[]),
    f.Field("max_budget", f.budget),
    f.Field("budget_duration", f.duration),
    f.Field("duration", f.duration, live=False),
    f.Field("team_id", f.optional(f.text())),
    # Cleared with {}: LiteLLM cannot delete a key whose metadata is null (500 while archiving it).
    f.Field("metadata", f.json_map, cleared={}),
    f.Field("max_parallel_requests", f.count),
    f.Field("tpm_limit", f.count),
    f.Field("rpm_limit", f.count),
    f.Field("spend", f.spend, live=False, default=0),
    f.Field("model_max_budget", f.model_budgets),
    f.Field("adopt_existing", f.boolean, required=True, sent=False, live=False, diffed=False, default=False),
    # Rotation (providers/rotation.py), never sent: a key at least `rotate_after` old is replaced; a new
    # `rotation_trigger` replaces it on demand; the old key keeps working for `rotation_grace`.
    f.Field("rotate_after", f.duration, sent=False, live=False),
    f.Field("rotation_trigger", f.optional(f.text()), sent=False, live=False, replaces=True),
    f.Field("rotation_grace", f.duration, sent=False, live=False),
    # The kill switch (providers/blocking.py): sent in /key/generate's body, later with /key/block|unblock.
    blocking.FIELD,
    f.OWNER,
)
SECRET_OUTPUTS = ["token", "existing_key", "key", "key_response"]


class KeyProvider(LiteLLMProvider):
    FIELDS = KEY_FIELDS
    TRIMMED = ("key_response", "key_data")
    BESIDE = {"key_response": "key_data"}  # the component gives key_response whole (payload.rebuilt)
    # existing_key is a creation-time input (the raw key, which `key` holds); never diffed, sent or read.
    DROPPED = ("existing_key", f.OWNER.name)  # managed_by: an input only create and update read
    SPARSE = ("adopt_existing", "retired_keys")  # no retired keys: read as [] (`olds.get(...) or []`)

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        user_id = news.get("user_id")
        if news.get("key_alias") is None and (isinstance(user_id, str) or f.is_unknown(user_id)):
            news = {**news, "key_alias": user_id}  # as the module does (unknown at preview stays unknown)
        return super().check(olds, news)

    def delete_before_replace(self, replaces: list[str]) -> bool:
        """Create first, except for a user_id change: a Key's id is its hash, new at every create, so the
        new key never takes the old id; but its alias is unique across the proxy, and the old key, another
        user's, holds it until it is deleted. A rotation creates first: the old key is the same user's, and
        Create moves its alias away."""
        return "user_id" in replaces

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> ChangeSet:
        """The inputs' diff, plus a replacement when the key is due (`rotate_after`) or expired (`expires`),
        decided from the outputs in state with no call."""
        names = f.changed(KEY_FIELDS, with_token(olds), with_token(news))
        due = rotation.due(olds, news)
        replaces = [fl.name for fl in KEY_FIELDS if fl.replaces and fl.name in names] + due
        result = self.change_set(names + [n for n in due if n not in names], replaces, olds)
        if replaces and not result.delete_before_replace:
            rotation.note_replacing(id_, olds, news, due)
        return self.held(id_, olds, result)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_for(props)
        replacing = rotation.take_replacing(props)
        if replacing is not None:
            return self._rotate(client, props, replacing)
        raw: str | None = props.get("existing_key")
        if raw:
            minted = token_hash(raw)
            try:
                response = _match_block(client, minted, client.key_update(minted, _settings(props)), props)
            except NotFound:
                if not _is_gone(client, minted):
                    raise  # a 404 about something else (e.g. a team_id that does not exist)
                # The key /user/new minted is gone (deleted outside Pulumi, then refreshed out of the
                # state): mint one for the user, so `up` restores a key as declared instead of failing.
                raw = None
        if not raw:
            raw, response = self._generate(client, props)
        key_hash = _identity(raw, response, props)
        return self.created(CreateResult(key_hash, _outputs(props, raw, response, read_back(client.key_info, key_hash))))

    def _rotate(self, client: LiteLLMClient, props: dict[str, Any], old: Rotation) -> CreateResult:
        """The next key for the same user: move the declared alias off the old key (the alias is unique),
        generate the new key, then give the old one its grace. Until the new key exists the old one keeps
        working, and a failure puts its alias back. The old key's hash goes into `retired_keys` only when it
        is kept for a grace, so the next rotation or a destroy deletes it."""
        try:
            client.key_update(old.old_hash, {"key_alias": old.rotating_alias})
            renamed = True
        except NotFound:
            renamed = False  # gone already (deleted outside Pulumi): nothing to retire
        except LiteLLMError:
            _put_back(client, old)  # the proxy may have renamed it before the answer was lost
            raise
        try:
            raw, response = self._generate(client, props)
        except LiteLLMError:
            if renamed:
                _put_back(client, old)
            raise
        key_hash = _identity(raw, response, props)
        graced = renamed and _grace(client, props, old)
        key_data = read_back(client.key_info, key_hash)
        return self.created(CreateResult(key_hash, _outputs(props, raw, response, key_data, [old.old_hash] if graced else [])))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = current_client_for(props, follow_url=True)
        row = snapshot.key_row(client, id_)
        # A listed row is /key/info's `info` with the hash as `token`: the same shape either way.
        if row:
            key_data = {"key": id_, "info": payload.without(row, "token")}
        else:
            try:
                key_data = client.key_info(id_)
            except NotFound:
                return missing(f"key {id_[:12]}... (alias {props.get('key_alias')!r})", props, client)
        if (key_data.get("info") or {}).get("status") == "deleted":  # the proxy's archive: it knew the key
            return ReadResult("", {})
        info = key_data.get("info") or {}
        return ReadResult(id_, self.stored({**props, **f.live_values(KEY_FIELDS, info), "key_data": key_data}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        names = f.changed(KEY_FIELDS, olds, news)
        sent = [n for n in names if self.field(n).sent]
        blocked = news["blocked"] if blocking.FIELD.name in names else None  # None: the switch stays
        raw, retired = olds.get("key"), olds.get("retired_keys") or []
        if not sent and blocked is None:  # only credentials or rotation settings changed: nothing to send,
            # but a new url must hold it
            new_url = moved(olds, news)
            if new_url and _is_gone(client_for(news), id_):
                raise not_at(f"key {id_[:12]}... (alias {olds.get('key_alias')!r})", new_url, olds)
            return UpdateResult(_outputs(news, raw, self.whole(olds).get("key_response"), olds.get("key_data"), retired))
        client = client_for(news)
        try:
            response = blocking.around(_switch(client, id_, retired), blocked,
                                       lambda: client.key_update(id_, _body(news, sent)) if sent else None)
        except NotFound:
            if not _is_gone(client, id_):
                raise  # a 404 about something else (e.g. a team_id that does not exist): LiteLLM's words
            raise LiteLLMError(
                "update key",
                f"key {id_[:12]}... (alias {olds.get('key_alias')!r}) no longer exists on the proxy (deleted "
                "outside Pulumi); run `pulumi refresh`, then `pulumi up` creates a new one",
                404,
            ) from None
        return UpdateResult(_outputs(news, raw, response, read_back(client.key_info, id_), retired))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Delete the key and the keys it retired earlier; but a key that a rotation retired with a grace
        is kept (LiteLLM ends it at `expires`): only the keys it retired go. A key already gone is fine.
        A key another resource of this run took over stays, and so do the keys it retired (in their grace,
        LiteLLM ends them)."""
        if self.released(id_, props):
            return
        client = current_client_for(props)
        if not self._in_grace(client, id_, props):
            client.key_delete(id_)
        for retired in props.get("retired_keys") or []:
            client.key_delete(retired)

    @staticmethod
    def _in_grace(client: LiteLLMClient, id_: str, props: dict[str, Any]) -> bool:
        """Told by the rotation of this `up` (same process); otherwise, for a key declared with a grace, by
        the proxy (one read); a key declared without one is never in a grace (no read: destroy stays 1 call)."""
        if rotation.take_graced(id_):
            return True
        return bool(props.get("rotation_grace")) and rotation.in_grace(id_, _row(client, id_), props)

    # ----------------------------------------------------------------------
    def _generate(self, client: LiteLLMClient, props: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """POST /key/generate with a raw key minted here, under the create protocol (providers/create.py).
        Every attempt sends the same raw key, so a retry never makes a second key, and a key with its hash
        is ours and usable however its answer was lost. A key with our alias but another hash is ours only
        if it carries the pending marker (an attempt of an earlier run that landed after that run gave up):
        its raw value is lost, so it is deleted and the create goes on; any other takes the adoption path."""
        raw = mint_key()
        key_hash, alias = token_hash(raw), props["key_alias"]
        body = f.body(KEY_FIELDS, props)
        request = {**body, "key": raw, "metadata": owner.marked({**body.get("metadata", {}), **PENDING}, props),
                   **blocking.on_create(props)}
        done = _body(props, ["metadata"])  # the declared metadata (and the owner mark) replaces the marker

        def attempt() -> tuple[str | None, dict[str, Any]]:
            response = client.key_generate(request)
            finish(lambda: client.key_update(key_hash, done))
            return raw, {**response, **done}

        def lookup() -> dict[str, Any] | None:
            mine = _info_unless_gone(client, key_hash)
            if mine is not None:
                return {**(mine.get("info") or {}), "token": key_hash}
            rows = client.keys_with_alias(alias)
            return next((row for row in rows if not _lost_attempt(row, props)), rows[0] if rows else None)

        def keep(found: dict[str, Any]) -> tuple[str | None, dict[str, Any]] | None:
            if found["token"] == key_hash:
                finish(lambda: client.key_update(key_hash, done))
                return raw, {**found, **done, "key": raw}
            client.key_delete(found["token"])  # an earlier run's late landing: its raw value is lost
            return None

        protocol = CreateProtocol(
            what=f"key with alias {alias!r}",
            attempt=attempt,
            lookup=lookup,
            ours=lambda found: found["token"] == key_hash or _lost_attempt(found, props),
            keep=keep,
            adopt=lambda found, err: self._adopt_alias(client, props, found, err),
            later="the next `pulumi up` finds that key by its alias, deletes it (its raw value is not kept) "
            "and generates the key again",
        )
        return protocol.run(client.budget())

    def _adopt_alias(
        self, client: LiteLLMClient, props: dict[str, Any], row: dict[str, Any] | None, err: Conflict
    ) -> tuple[None, dict[str, Any]]:
        """Take over the key that holds our alias (`row`), if the program opted in or this stack made it (its
        owner mark: a renamed resource, an interrupted `up`)."""
        alias = props["key_alias"]
        if not props["adopt_existing"] and not owner.owned(row, props):
            raise LiteLLMError(
                "generate key",
                f"key_alias {alias!r} is already used by another key on the proxy (aliases are unique across "
                f"the proxy; {owner.whose(row)}). Set adopt_existing=True to manage that key from this stack, or "
                "choose another key_alias",
                err.status,
            ) from None
        if row is None or row.get("user_id") != props["user_id"]:
            raise LiteLLMError(
                "adopt key",
                f"key_alias {alias!r} belongs to a key of another user; only a key of user "
                f"{props['user_id']!r} can be adopted",
                err.status,
            ) from None
        # The raw value of an adopted key was never seen by this stack: `key` stays empty. Its spend is the
        # proxy's accounting of real use: taking the key over must not reset it to the declared value.
        settings = {name: value for name, value in _settings(props).items() if name != "spend"}
        # Its id is the hash we found, whatever the answer holds: an empty id would fail the engine's step.
        response = _match_block(client, row["token"], client.key_update(row["token"], settings), props)
        return None, {**response, "token": row["token"], "adopted": True}


def _info_unless_gone(client: LiteLLMClient, key_hash: str) -> dict[str, Any] | None:
    """/key/info, or None when the key is gone: 404, or LiteLLM's archive answering `status: deleted`."""
    try:
        key_data = client.key_info(key_hash)
    except NotFound:
        return None
    return None if (key_data.get("info") or {}).get("status") == "deleted" else key_data


def mint_key() -> str:
    """A new raw key: 256 random bits with LiteLLM's `sk-` prefix."""
    return f"sk-{secrets.token_urlsafe(32)}"


def _lost_attempt(row: dict[str, Any], props: dict[str, Any]) -> bool:
    """A key with the pending marker for our user and alias whose hash is not this create's: an attempt of
    an earlier run that landed after that run gave up (its raw value is lost), not a key in some state."""
    return row.get("user_id") == props["user_id"] and row.get("key_alias") == props["key_alias"] and pending(row)


def _identity(raw: str | None, response: dict[str, Any], props: dict[str, Any]) -> str:
    """The new key's id: the hash of its raw key, or of an adopted key the one the proxy names."""
    key_hash = token_hash(raw) if raw else response.get("token")
    if not key_hash:  # the engine rejects an empty id, and a key with no id could never be deleted
        raise LiteLLMError("create key", f"the proxy did not say which key has alias {props['key_alias']!r}")
    return key_hash


def _row(client: LiteLLMClient, key_hash: str) -> dict[str, Any] | None:
    key_data = _info_unless_gone(client, key_hash)
    return None if key_data is None else key_data.get("info") or {}


def _put_back(client: LiteLLMClient, old: Rotation) -> None:
    """Give the old key its alias back after a rotation failed before the new key existed."""
    try:
        client.key_update(old.old_hash, {"key_alias": old.old_alias})
    except LiteLLMError as err:
        raise LiteLLMError(
            "rotate key",
            f"the new key was not created, and giving the old key {old.old_hash[:12]}... its alias "
            f"{old.old_alias!r} back failed too ({err}); the old key still works (as {old.rotating_alias!r} "
            "if it was renamed), and the next `pulumi up` rotates again",
        ) from None


def _grace(client: LiteLLMClient, props: dict[str, Any], old: Rotation) -> bool:
    """Give the old key its retired alias and `expires` = now + the declared grace, in one call. False when
    it gets none (no grace declared, or it has expired already: a grace would bring it back to life): it is
    deleted at the end of the `up`. When the call fails, the Delete at the end asks the proxy whether the
    grace was set (an answer may be lost after the proxy acted) and deletes the key unless it was."""
    grace = props.get("rotation_grace")
    if not grace or old.expired:
        return False
    try:
        client.key_update(old.old_hash, {"key_alias": old.retired_alias, "duration": grace})
        rotation.note_graced(old.old_hash)
    except LiteLLMError:
        pass
    return True


def _switch(client: LiteLLMClient, key_hash: str, retired: list[str]) -> Callable[[bool], dict[str, Any]]:
    """The kill switch of a key and of the old keys its rotations keep for a grace (an offboarded user's
    old key must stop too); one of those already ended or deleted is fine. Answers the key's own row."""
    def switch(blocked: bool) -> dict[str, Any]:
        answer = client.key_blocked(key_hash, blocked)
        for old in retired:
            try:
                client.key_blocked(old, blocked)
            except NotFound:
                pass
        return answer

    return switch


def _match_block(client: LiteLLMClient, key_hash: str, row: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """A key taken over (minted by /user/new, or adopted by alias) blocked or unblocked as declared; the
    answer of the last call that changed it."""
    return client.key_blocked(key_hash, props["blocked"]) if blocking.differs(row, props) else row


def _is_gone(client: LiteLLMClient, key_hash: str) -> bool:
    return _info_unless_gone(client, key_hash) is None


def _body(props: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """An update of these fields, declared metadata with the owner mark."""
    return owner.in_body(f.body(KEY_FIELDS, props, names), props)


def _settings(props: dict[str, Any]) -> dict[str, Any]:
    """Every declared setting, unset ones as null, for taking over a key that was minted elsewhere."""
    names = [fl.name for fl in KEY_FIELDS if fl.sent]
    settings = _body(props, names)
    if settings.get("model_max_budget") is None:
        settings.pop("model_max_budget", None)  # null here trips LiteLLM's enterprise-only check
    return settings


def _outputs(
    props: dict[str, Any], raw: str | None, response: Any, key_data: Any, retired: list[str] | None = None
) -> dict[str, Any]:
    # The raw key is stored once, in `key`: a /key/generate answer holds it too, as its `key`.
    return KeyProvider.stored({**props, "key": raw, "key_response": payload.without(response, "key"),
                               "key_data": key_data, "retired_keys": retired or []})


@dataclasses.dataclass
class KeyArgs:
    """Inputs of a `Key`; the field table above says how each is validated and sent."""

    url: pulumi.Input[str]
    token: pulumi.Input[str] = dataclasses.field(repr=False)  # never printed
    user_id: pulumi.Input[str]
    key_alias: pulumi.Input[str]
    models: pulumi.Input[list[str]] = dataclasses.field(default_factory=list)
    existing_key: Optional[pulumi.Input[str]] = dataclasses.field(default=None, repr=False)  # a raw key
    max_budget: Optional[pulumi.Input[float]] = None
    budget_duration: Optional[pulumi.Input[str]] = None
    duration: Optional[pulumi.Input[str]] = None
    team_id: Optional[pulumi.Input[str]] = None
    metadata: Optional[pulumi.Input[dict]] = None
    max_parallel_requests: Optional[pulumi.Input[int]] = None
    tpm_limit: Optional[pulumi.Input[int]] = None
    rpm_limit: Optional[pulumi.Input[int]] = None
    spend: pulumi.Input[float] = 0
    model_max_budget: Optional[pulumi.Input[dict]] = None
    adopt_existing: pulumi.Input[bool] = False
    rotate_after: Optional[pulumi.Input[str]] = None  # a LiteLLM duration such as "90d"
    rotation_trigger: Optional[pulumi.Input[str]] = None  # any new value rotates the key
    rotation_grace: Optional[pulumi.Input[str]] = None  # how long the old key keeps working
    blocked: pulumi.Input[bool] = False  # the kill switch: refused at once, the same key back when false


class Key(Resource, module="litellm", name="Key"):
    """A LiteLLM virtual key. `key` (the raw key), `key_response`, `existing_key` and `token` are secret."""

    key: pulumi.Output[Optional[str]]
    key_response: pulumi.Output[dict]
    key_data: pulumi.Output[dict]
    retired_keys: pulumi.Output[list]  # hashes of the keys it retired that are in their grace

    def __init__(self, resource_name: str, args: KeyArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props, opts = registered(resource_name, args, ["key", "key_response", "key_data", "retired_keys"], SECRET_OUTPUTS, opts, marks=True)
        if args.existing_key is not None:
            props["existing_key"] = pulumi.Output.secret(args.existing_key)
        super().__init__(KeyProvider(), resource_name, props, opts)
