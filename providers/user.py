"""LiteLLM proxy users: fields, validation, diff and CRUD (`pulumi-python:dynamic/litellm:User`).

Outputs are the canonical inputs (so Diff, which receives old outputs, compares like with like) plus
`user_response` (the /user/new answer; it holds the raw key when /user/new minted one: secret) and
`user_data` (/user/info). `read` overwrites the managed fields with their live values, which is how a
refresh surfaces drift; server-maintained values (spend, budget_reset_at, timestamps) stay in user_data.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, ReadResult, Resource, UpdateResult

from . import fields as f
from . import owner, snapshot
from .base import LiteLLMProvider, client_for, current_client_for, missing, moved, not_at, read_back, registered
from .client import Conflict, LiteLLMClient, LiteLLMError, NotFound
from .create import DONE, PENDING, CreateProtocol, finish, pending

USER_FIELDS: tuple[f.Field, ...] = (
    *f.CREDENTIALS,
    f.Field("user_id", f.text(), required=True, replaces=True),
    f.Field("user_email", f.email, required=True),
    # /user/update ignores null, so an alias cannot be removed: check defaults it to user_id, as the module does.
    f.Field("user_alias", f.optional(f.text()), clearable=False),
    f.Field("user_role", f.role, required=True, default="internal_user_viewer"),
    # /user/update ignores an empty list, so a user's models cannot be cleared once set.
    f.Field("models", f.string_list, required=True, clearable=False, default=[]),
    f.Field("max_budget", f.budget),
    f.Field("tpm_limit", f.count),
    f.Field("rpm_limit", f.count),
    # Creation-time settings: they shape /user/new and are never sent again.
    f.Field("auto_create_key", f.boolean, required=True, sent=False, live=False, diffed=False, default=False),
    f.Field("key_alias", f.optional(f.text()), sent=False, live=False, diffed=False),
    f.Field("adopt_existing", f.boolean, required=True, sent=False, live=False, diffed=False, default=False),
    f.OWNER,
)
SECRET_OUTPUTS = ["token", "user_response"]
EMPTIED_MODELS = (
    "models cannot be emptied once set: LiteLLM ignores an empty list on /user/update, so the user would keep "
    "its models. List the models it should keep, or give the user a new user_id (a new user) to start with none"
)


class UserProvider(LiteLLMProvider):
    FIELDS = USER_FIELDS
    TRIMMED = ("user_response", "user_data")
    DROPPED = (f.OWNER.name,)  # an input only create and update read
    BESIDE = {"user_response": "user_data"}  # the component gives user_response whole (payload.rebuilt)

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        user_id = news.get("user_id")
        if news.get("user_alias") is None and (isinstance(user_id, str) or f.is_unknown(user_id)):
            news = {**news, "user_alias": user_id}  # coalesce(user_alias, user_id), as the module does
        result = super().check(olds, news)
        same_user = olds.get("user_id") == result.inputs.get("user_id")  # a new user_id is a new user
        if olds.get("models") and result.inputs.get("models") == [] and same_user:
            result.failures.append(CheckFailure("models", EMPTIED_MODELS))
        return result

    def delete_before_replace(self, replaces: list[str]) -> bool:
        """Always: a User's id is its user_id (a forced replacement reuses it), and LiteLLM keeps
        user_email unique, so the old user must be gone before a new user_id can take its email."""
        return True

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_for(props)
        request = f.body(USER_FIELDS, props)
        request["auto_create_key"] = props["auto_create_key"]
        request["metadata"] = owner.marked(PENDING, props)  # the User does not manage metadata: the marks are all
        if props["auto_create_key"] and props.get("key_alias"):
            _refuse_taken_alias(client, props)
            request["key_alias"] = props["key_alias"]
        response = self._create(client, props, request)
        return self.created(CreateResult(props["user_id"], _outputs(props, response, read_back(client.user_info, props["user_id"]))))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = current_client_for(props, follow_url=True)
        row = snapshot.user_row(client, id_)
        try:
            user_data = {"user_id": id_, "user_info": row} if row else client.user_info(id_)
        except NotFound:
            return missing(f"user {id_!r}", props, client)
        live = f.live_values(USER_FIELDS, user_data.get("user_info") or {})
        return ReadResult(id_, self.stored({**props, **live, "user_data": user_data}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        names = f.changed(USER_FIELDS, olds, news)
        sent = [n for n in names if self.field(n).sent]
        if not sent:  # only credentials changed: nothing to change on the proxy, but a new url must hold it
            new_url = moved(olds, news)
            if new_url and not _exists(client_for(news), id_):
                raise not_at(f"user {id_!r}", new_url, olds)
            return UpdateResult(_outputs(news, self.whole(olds).get("user_response"), olds.get("user_data")))
        if "models" in sent and not news["models"]:  # check refuses it; a guard for a diff it never saw
            raise ValueError(EMPTIED_MODELS)
        client = client_for(news)
        _require_exists(client, id_)  # /user/update would silently create a missing user
        client.user_update({"user_id": id_, **f.body(USER_FIELDS, news, sent)})
        return UpdateResult(_outputs(news, self.whole(olds).get("user_response"), read_back(client.user_info, id_)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if not self.released(id_, props):  # a user already gone is fine: deleting twice is safe
            current_client_for(props).user_delete(id_)

    # ----------------------------------------------------------------------
    def _adopt(self, client: LiteLLMClient, props: dict[str, Any], found: dict[str, Any] | None,
               err: Conflict) -> dict[str, Any]:
        """Take over a user that already exists, if the program opted in or this stack made it (its owner
        mark: a renamed resource, an interrupted `up`); reconcile it to the declaration."""
        user_id = props["user_id"]
        row = (found or {}).get("user_info")
        if not props["adopt_existing"] and not owner.owned(row, props):
            why = owner.whose(row) if row else "the email belongs to another user"
            raise LiteLLMError(
                "create user",
                f"user_id {user_id!r} or user_email already exists on the proxy ({err.detail}; {why}). To manage "
                "the existing user from this stack, set adopt_existing=True; otherwise choose another user_id/email",
                err.status,
            ) from None
        try:
            live = client.user_info(user_id)["user_info"]
        except NotFound:
            raise LiteLLMError(
                "adopt user",
                f"user_email {props['user_email']!r} belongs to another user_id; only the same user_id can be adopted",
                err.status,
            ) from None
        # Marked as this stack's (its other metadata kept: /user/update replaces the whole map).
        marked = not owner.mark(props) or owner.owned(live, props)
        marks = {} if marked else {"metadata": owner.marked(live.get("metadata"), props)}
        self._reconcile(client, props, live, **marks)
        return {**live, "key": "", "adopted": True}

    def _reconcile(self, client: LiteLLMClient, props: dict[str, Any], live: dict[str, Any], **also: Any) -> None:
        """Bring a user that exists to the declared values (one /user/update, only when something differs)."""
        drift = f.changed(USER_FIELDS, f.live_values(USER_FIELDS, live), props)
        sent = [n for n in drift if self.field(n).sent and (n != "models" or props["models"])]
        if sent or also:
            client.user_update({"user_id": props["user_id"], **f.body(USER_FIELDS, props, sent), **also})

    def _create(self, client: LiteLLMClient, props: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        """POST /user/new under the create protocol (providers/create.py). Ours: a user with the pending
        marker (made by one of our attempts, perhaps one that landed after an earlier run gave up); any
        other user with our id was there before and takes the adoption path."""
        user_id = props["user_id"]

        def lookup() -> dict[str, Any] | None:
            try:
                return client.user_info(user_id)
            except NotFound:
                return None

        def attempt() -> dict[str, Any]:
            response = client.user_new(request)
            finish(lambda: client.user_update({"user_id": user_id, "metadata": owner.marked(DONE, props)}))
            return response

        protocol = CreateProtocol(
            what=f"user {user_id!r}",
            attempt=attempt,
            lookup=lookup,
            ours=lambda found: pending(found.get("user_info") or {}),
            keep=lambda found: self._recover(client, props, found),
            adopt=lambda found, err: self._adopt(client, props, found, err),
            later="the next `pulumi up` recognises it as this stack's (by its pending marker) and carries on with "
            "it" + (", replacing its auto-created key" if props["auto_create_key"] else ""),
        )
        return protocol.run(client.budget())

    def _recover(self, client: LiteLLMClient, props: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
        """Our /user/new happened though its answer was lost (perhaps in an earlier run): carry on with the
        user it created, as declared now and without the marker."""
        live = existing.get("user_info") or {}
        self._reconcile(client, props, live, metadata=owner.marked(DONE, props))
        if props["auto_create_key"]:
            # The raw key of the auto-created key was in the lost response: delete that key, so the Key
            # resource generates a replacement instead of leaving an unusable key behind.
            for row in existing.get("keys") or []:
                if row.get("key_alias") == props.get("key_alias") and row.get("token"):
                    client.key_delete(row["token"])
        return {**live, "key": ""}


def _refuse_taken_alias(client: LiteLLMClient, props: dict[str, Any]) -> None:
    """/user/new does not check that the auto-created key's alias is free: it would mint a second key with an
    alias another user's key holds. (A key of this user with it is the user's own, from an earlier attempt.)"""
    alias, user_id = props["key_alias"], props["user_id"]
    if any(row.get("user_id") != user_id for row in client.keys_with_alias(alias)):
        raise LiteLLMError(
            "create user",
            f"key_alias {alias!r} is already used by a key of another user on the proxy (aliases are unique "
            f"across the proxy), so user {user_id!r} was not created: /user/new would give it a second key "
            "with that alias. Choose another key_alias",
            409,
        )


def _exists(client: LiteLLMClient, user_id: str) -> bool:
    try:
        client.user_info(user_id)
    except NotFound:
        return False
    return True


def _require_exists(client: LiteLLMClient, user_id: str) -> None:
    if not _exists(client, user_id):
        raise LiteLLMError(
            "update user",
            f"user {user_id!r} no longer exists on the proxy (deleted outside Pulumi); "
            "run `pulumi refresh`, then `pulumi up` recreates it",
            404,
        )


def _outputs(props: dict[str, Any], response: Any, user_data: Any) -> dict[str, Any]:
    return UserProvider.stored({**props, "user_response": response, "user_data": user_data})


@dataclasses.dataclass
class UserArgs:
    """Inputs of a `User`; the field table above says how each is validated and sent."""

    url: pulumi.Input[str]
    token: pulumi.Input[str] = dataclasses.field(repr=False)  # never printed
    user_id: pulumi.Input[str]
    user_email: pulumi.Input[str]
    user_role: pulumi.Input[str] = "internal_user_viewer"
    models: pulumi.Input[list[str]] = dataclasses.field(default_factory=list)
    user_alias: Optional[pulumi.Input[str]] = None
    max_budget: Optional[pulumi.Input[float]] = None
    tpm_limit: Optional[pulumi.Input[int]] = None
    rpm_limit: Optional[pulumi.Input[int]] = None
    auto_create_key: pulumi.Input[bool] = False
    key_alias: Optional[pulumi.Input[str]] = None
    adopt_existing: pulumi.Input[bool] = False


class User(Resource, module="litellm", name="User"):
    """A LiteLLM proxy user. `token` and `user_response` are always secret."""

    user_id: pulumi.Output[str]
    user_response: pulumi.Output[dict]
    user_data: pulumi.Output[dict]

    def __init__(self, resource_name: str, args: UserArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props, opts = registered(resource_name, args, ["user_response", "user_data"], SECRET_OUTPUTS, opts, marks=True)
        super().__init__(UserProvider(), resource_name, props, opts)
