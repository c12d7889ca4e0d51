"""LiteLLM team memberships: fields, validation, diff and CRUD (`pulumi-python:dynamic/litellm:TeamMember`).

A membership is a user in a team (`team_id/user_id` is its id; a change of either replaces it) with a role
and an optional budget inside the team. /team/member_add ignores the budget, so it is set with
/team/member_update afterwards. Where LiteLLM keeps it: /team/info lists the member in
`team_info.members_with_roles` (role) and its budget in `team_memberships[].litellm_budget_table`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, Resource, UpdateResult

from . import fields as f
from . import snapshot, team_keys
from .base import LiteLLMProvider, client_for, current_client_for, missing, moved, not_at, read_back, registered
from .client import Conflict, LiteLLMClient, LiteLLMError, NotFound
from .create import CreateProtocol

TEAM_ROLES = ("user",)
ENTERPRISE_TEAM_ROLES = ("admin",)


def team_role(value: Any) -> str:
    if value in ENTERPRISE_TEAM_ROLES:
        raise f.Invalid(
            f"'user': a team {value!r} needs LiteLLM Enterprise (the proxy refuses it: \"Assigning team admins "
            "is a premium feature\")"
        )
    if value not in TEAM_ROLES:
        raise f.Invalid(f"one of {', '.join(map(repr, TEAM_ROLES))} ('admin' needs LiteLLM Enterprise)")
    return value


MEMBER_FIELDS: tuple[f.Field, ...] = (
    *f.CREDENTIALS,
    f.Field("team_id", f.text(), required=True, replaces=True),
    f.Field("user_id", f.text(), required=True, replaces=True),
    f.Field("role", team_role, required=True, clearable=False, default="user"),
    f.Field("max_budget_in_team", f.budget),
    f.Field("adopt_existing", f.boolean, required=True, sent=False, live=False, diffed=False, default=False),
)
SECRET_OUTPUTS = ["token"]


class TeamMemberProvider(LiteLLMProvider):
    FIELDS = MEMBER_FIELDS

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_for(props)
        team_id, user_id = props["team_id"], props["user_id"]
        live = self._add(client, props)
        # /team/member_add ignores the budget: set it (and reconcile a kept or adopted membership) with an update.
        drift = [n for n in f.changed(MEMBER_FIELDS, f.live_values(MEMBER_FIELDS, live), props)
                 if self.field(n).sent and not self.field(n).replaces]
        if drift:
            client.team_member_update(_update_body(props, drift))
        return self.created(CreateResult(member_id(team_id, user_id),
                                         _outputs(props, read_back(_reader(client, props), user_id))))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = current_client_for(props, follow_url=True)
        # The team's memberships share one /team/info per run (a refresh of M members moved M teams before).
        found = member_of(snapshot.team_info(client, props["team_id"]), props["team_id"], props["user_id"])
        if found is None:
            return missing(f"membership of user {props['user_id']!r} in team {props['team_id']!r}", props, client)
        return ReadResult(id_, self.stored({**props, **f.live_values(MEMBER_FIELDS, found), "member_data": f.compact(found)}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        sent = [n for n in f.changed(MEMBER_FIELDS, olds, news) if self.field(n).sent]
        if not sent:  # only credentials changed: nothing to change on the proxy, but a new url must hold it
            new_url = moved(olds, news)
            if new_url and membership(client_for(news), news["team_id"], news["user_id"]) is None:
                raise not_at(f"membership of user {news['user_id']!r} in team {news['team_id']!r}", new_url, olds)
            return UpdateResult(_outputs(news, olds.get("member_data")))
        client = client_for(news)
        # /team/member_update makes a budget row for a user who is not in the team: make sure it is.
        if membership(client, news["team_id"], news["user_id"]) is None:
            raise LiteLLMError(
                "update team member",
                f"user {news['user_id']!r} is no longer in team {news['team_id']!r} (removed outside Pulumi); "
                "run `pulumi refresh`, then `pulumi up` adds it again",
                404,
            )
        client.team_member_update(_update_body(news, sent))
        return UpdateResult(_outputs(news, read_back(_reader(client, news), news["user_id"])))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Refused while the user holds a key in the team (LiteLLM would delete it): providers/team_keys.py.
        Not in the team, or the team is gone: fine, deleting twice is safe. A membership another resource of
        this run took over (a rename) is left on the proxy."""
        if self.released(id_, props):
            return
        client = current_client_for(props)
        keys = team_keys.team_keys(client, props["team_id"])
        if keys is None:
            return
        team_keys.refuse_member_delete(keys, props["team_id"], props["user_id"])
        client.team_member_delete(props["team_id"], props["user_id"])

    def _add(self, client: LiteLLMClient, props: dict[str, Any]) -> dict[str, Any]:
        """/team/member_add under the create protocol (providers/create.py); returns the membership as it
        is. A membership has no metadata for the pending marker and no identity beyond (team, user), so
        ours is what /team/member_add makes: the declared role and no budget in the team. One found in that
        state (our add landed, perhaps late, or an identical one made by hand) is carried on with; one with
        another role or a budget was there before and is taken over only with adopt_existing."""
        team_id, user_id = props["team_id"], props["user_id"]

        def attempt() -> dict[str, Any]:
            client.team_member_add(team_id, user_id, props["role"])
            return {"team_id": team_id, "user_id": user_id, "role": props["role"]}

        return CreateProtocol(
            what=f"the membership of user {user_id!r} in team {team_id!r}",
            attempt=attempt,
            lookup=lambda: membership(client, team_id, user_id),
            ours=lambda found: found.get("role") == props["role"] and found.get("max_budget_in_team") is None,
            keep=lambda found: found,
            adopt=lambda found, err: self._adopt(props, found, err),
            later="the next `pulumi up` finds the user in the team and carries on with that membership",
        ).run(client.budget())

    def _adopt(self, props: dict[str, Any], found: dict[str, Any] | None, err: Conflict) -> dict[str, Any]:
        if not props["adopt_existing"] or found is None:
            raise LiteLLMError(
                "add team member",
                f"user {props['user_id']!r} is already in team {props['team_id']!r} with a role or budget of its "
                f"own ({err.detail}). To manage that membership from this stack, set adopt_existing=True",
                err.status,
            ) from None
        return found


def member_id(team_id: str, user_id: str) -> str:
    return f"{team_id}/{user_id}"


def membership(client: LiteLLMClient, team_id: str, user_id: str) -> dict[str, Any] | None:
    """The user's membership of the team as the field table reads it (role, max_budget_in_team, spend),
    or None when the team is gone or the user is not in it."""
    try:
        info = client.team_info(team_id)
    except NotFound:
        return None
    return member_of(info, team_id, user_id)


def member_of(info: dict[str, Any] | None, team_id: str, user_id: str) -> dict[str, Any] | None:
    """The user's membership as `membership` returns it, from the team's /team/info (None: team gone)."""
    if info is None:
        return None
    member = next((m for m in (info.get("team_info") or {}).get("members_with_roles") or [] if m.get("user_id") == user_id), None)
    if member is None:
        return None
    row = next((m for m in info.get("team_memberships") or [] if m.get("user_id") == user_id), {})
    budget = row.get("litellm_budget_table") or {}
    return {"team_id": team_id, "user_id": user_id, "role": member.get("role"),
            "max_budget_in_team": budget.get("max_budget"), "spend": row.get("spend")}


def _reader(client: LiteLLMClient, props: dict[str, Any]) -> Any:
    def read(user_id: str) -> dict[str, Any] | None:
        return membership(client, props["team_id"], user_id)

    return read


def _update_body(props: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {"team_id": props["team_id"], "user_id": props["user_id"], **f.body(MEMBER_FIELDS, props, names)}


def _outputs(props: dict[str, Any], member_data: Any) -> dict[str, Any]:
    return TeamMemberProvider.stored({**props, "member_data": f.compact(member_data)})


@dataclasses.dataclass
class TeamMemberArgs:
    """Inputs of a `TeamMember`; the field table above says how each is validated and sent.
    `adopt_existing`: take over a membership with a role or budget of its own instead of failing."""

    url: pulumi.Input[str]
    token: pulumi.Input[str] = dataclasses.field(repr=False)  # never printed
    team_id: pulumi.Input[str]
    user_id: pulumi.Input[str]
    role: pulumi.Input[str] = "user"
    max_budget_in_team: Optional[pulumi.Input[float]] = None
    adopt_existing: pulumi.Input[bool] = False


class TeamMember(Resource, module="litellm", name="TeamMember"):
    """A user's membership of a LiteLLM team. `token` is always secret."""

    team_id: pulumi.Output[str]
    user_id: pulumi.Output[str]
    member_data: pulumi.Output[dict]

    def __init__(
        self, resource_name: str, args: TeamMemberArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        props, opts = registered(resource_name, args, ["member_data"], SECRET_OUTPUTS, opts)
        super().__init__(TeamMemberProvider(), resource_name, props, opts)
