"""LiteLLM teams: fields, validation, diff and CRUD (`pulumi-python:dynamic/litellm:Team`).

Outputs are the canonical inputs plus `team_data` (/team/info: the team row, its keys by hash and its
memberships). `team_id` is the identity: a change replaces the team. LiteLLM deletes a team's keys with
the team, so a key that names a team of the stack depends on it and is deleted (or moved) first.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, Resource, UpdateResult

from . import fields as f
from .base import LiteLLMProvider, client_for, current_client_for, read_back
from .client import AmbiguousFailure, Conflict, LiteLLMClient, LiteLLMError, NotFound

TEAM_FIELDS: tuple[f.Field, ...] = (
    *f.CREDENTIALS,
    f.Field("team_id", f.text(), required=True, replaces=True),
    f.Field("team_alias", f.optional(f.text())),
    # An empty list is sent as [] (LiteLLM: the team may use every model of the proxy).
    f.Field("models", f.string_list, required=True, default=[]),
    f.Field("max_budget", f.budget),
    f.Field("budget_duration", f.duration),
    f.Field("tpm_limit", f.count),
    f.Field("rpm_limit", f.count),
    # LiteLLM 1.108.7 accepts it on /team/new and /team/update but reports null back: sent, never drift.
    f.Field("max_parallel_requests", f.count, live=False),
    f.Field("metadata", f.json_map, cleared={}),
    f.Field("adopt_existing", f.boolean, required=True, sent=False, live=False, diffed=False, default=False),
)
SECRET_OUTPUTS = ["token"]


class TeamProvider(LiteLLMProvider):
    FIELDS = TEAM_FIELDS

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_for(props)
        team_id = props["team_id"]
        create_once(
            client,
            f"team {team_id!r}",
            attempt=lambda: client.team_new(f.body(TEAM_FIELDS, props)),
            look=lambda: _info_or_none(client, team_id),
            ours=lambda found: self.as_declared(found.get("team_info") or {}, props),
            adopt=lambda err: self._adopt(client, props, err),
        )
        return CreateResult(team_id, _outputs(props, read_back(client.team_info, team_id)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        team_data = _info_or_none(current_client_for(props), id_)
        if team_data is None:
            return ReadResult("", {})
        live = f.live_values(TEAM_FIELDS, team_data.get("team_info") or {})
        return ReadResult(id_, {**props, **live, "team_data": f.compact(team_data)})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        sent = [n for n in f.changed(TEAM_FIELDS, olds, news) if self.field(n).sent]
        if not sent:  # only credentials changed: nothing to tell the proxy
            return UpdateResult(_outputs(news, olds.get("team_data")))
        client = client_for(news)
        try:
            client.team_update({"team_id": id_, **f.body(TEAM_FIELDS, news, sent)})
        except NotFound:
            raise LiteLLMError(
                "update team",
                f"team {id_!r} no longer exists on the proxy (deleted outside Pulumi, and LiteLLM deleted its "
                "keys with it); run `pulumi refresh`, then `pulumi up` recreates it",
                404,
            ) from None
        return UpdateResult(_outputs(news, read_back(client.team_info, id_)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        current_client_for(props).team_delete(id_)  # a team already gone is fine: deleting twice is safe

    def _adopt(self, client: LiteLLMClient, props: dict[str, Any], err: Conflict) -> dict[str, Any]:
        """Take over a team that already exists, if the program opted in; reconcile it to the declaration."""
        team_id = props["team_id"]
        if not props["adopt_existing"]:
            raise LiteLLMError(
                "create team",
                f"team_id {team_id!r} already exists on the proxy ({err.detail}). To manage the existing team "
                "from this stack, set adopt_existing=True; otherwise choose another team_id",
                err.status,
            ) from None
        live = client.team_info(team_id).get("team_info") or {}
        sent = [n for n in f.changed(TEAM_FIELDS, f.live_values(TEAM_FIELDS, live), props) if self.field(n).sent]
        if sent:
            client.team_update({"team_id": team_id, **f.body(TEAM_FIELDS, props, sent)})
        return live


def create_once(
    client: LiteLLMClient,
    what: str,
    attempt: Callable[[], Any],
    look: Callable[[], Any],
    ours: Callable[[Any], bool],
    adopt: Callable[[Conflict], Any],
) -> Any:
    """The create-without-duplicates protocol: `attempt` at most once per try, never blindly. After an
    ambiguous failure `look` for the object (None: not there) and try again only if it is not there,
    within the retry budget. The first lookup tells ours (`ours`: it holds the declared values) from one
    that was there before (`adopt` decides); once a lookup found nothing, whatever appears is ours."""
    budget = client.budget()
    looked = False
    while True:
        try:
            return attempt()
        except Conflict as err:
            if not looked:
                return adopt(err)
            found = _look(look, err, what)  # an earlier attempt of ours landed after we looked
            return adopt(err) if found is None else found
        except AmbiguousFailure as err:
            failure = err
        if not failure.surely_not_done:  # 429: LiteLLM refused before acting, nothing to look for
            found = _look(look, failure, what)
            if found is not None:
                if looked or ours(found):
                    return found
                return adopt(Conflict(failure.operation, f"{what} already exists", 409))
            looked = True
        if not failure.retryable:
            raise LiteLLMError(failure.operation, f"{failure.detail} ({what} was not created)", failure.status)
        if not budget.wait(failure):
            raise LiteLLMError(
                failure.operation,
                f"{failure.detail}; gave up after {budget.spent()}. {what[0].upper()}{what[1:]} "
                + ("is not on the proxy (looked it up), " if looked else "was not created, ")
                + "so nothing was left behind: run `pulumi up` again",
                failure.status,
            )


def _look(look: Callable[[], Any], failure: LiteLLMError, what: str) -> Any:
    try:
        return look()
    except LiteLLMError as err:
        raise LiteLLMError(
            failure.operation,
            f"{failure.detail}; then looking up whether {what} was created failed too ({err}). If the next "
            "`pulumi up` reports that it already exists, it is the one this attempt created: set "
            "adopt_existing=True for that run to take it over",
            failure.status,
        ) from None


def _info_or_none(client: LiteLLMClient, team_id: str) -> dict[str, Any] | None:
    try:
        return client.team_info(team_id)
    except NotFound:
        return None


def _outputs(props: dict[str, Any], team_data: Any) -> dict[str, Any]:
    return {**props, "team_data": f.compact(team_data)}


@dataclasses.dataclass
class TeamArgs:
    """Inputs of a `Team`; the field table above says how each is validated and sent."""

    url: pulumi.Input[str]
    token: pulumi.Input[str] = dataclasses.field(repr=False)  # never printed
    team_id: pulumi.Input[str]
    team_alias: Optional[pulumi.Input[str]] = None
    models: pulumi.Input[list[str]] = dataclasses.field(default_factory=list)
    max_budget: Optional[pulumi.Input[float]] = None
    budget_duration: Optional[pulumi.Input[str]] = None
    tpm_limit: Optional[pulumi.Input[int]] = None
    rpm_limit: Optional[pulumi.Input[int]] = None
    max_parallel_requests: Optional[pulumi.Input[int]] = None
    metadata: Optional[pulumi.Input[dict]] = None
    adopt_existing: pulumi.Input[bool] = False


class Team(Resource, module="litellm", name="Team"):
    """A LiteLLM team. `token` is always secret."""

    team_id: pulumi.Output[str]
    team_data: pulumi.Output[dict]

    def __init__(self, resource_name: str, args: TeamArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props = {field.name: getattr(args, field.name) for field in dataclasses.fields(args)}
        props["token"] = pulumi.Output.secret(args.token)
        props["team_data"] = None
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(TeamProvider(), resource_name, props, pulumi.ResourceOptions.merge(secret_opts, opts))
