"""LiteLLM teams: fields, validation, diff and CRUD (`pulumi-python:dynamic/litellm:Team`).

Outputs are the canonical inputs plus `team_data` (/team/info: the team row, its keys by hash and its
memberships). `team_id` is the identity: a change replaces the team. LiteLLM deletes a team's keys with
the team, so a key that names a team of the stack depends on it and is deleted (or moved) first, and a
Delete is refused while the team still holds a key (providers/team_keys.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, Resource, UpdateResult

from . import blocking, owner, team_keys
from . import fields as f
from .base import LiteLLMProvider, client_for, current_client_for, missing, moved, not_at, read_back, registered
from .client import Conflict, LiteLLMClient, LiteLLMError, NotFound
from .create import PENDING, CreateProtocol, finish, pending

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
    # The kill switch (providers/blocking.py): sent in /team/new's body, later with /team/block|unblock.
    blocking.FIELD,
    f.OWNER,
)
SECRET_OUTPUTS = ["token"]


class TeamProvider(LiteLLMProvider):
    FIELDS = TEAM_FIELDS
    DROPPED = (f.OWNER.name,)  # an input only create and update read

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_for(props)
        team_id = props["team_id"]
        declared = {"metadata": owner.marked(props.get("metadata"), props)}  # {} clears it on /team/update

        def attempt() -> dict[str, Any]:
            metadata = {**declared["metadata"], **PENDING}
            body = {**f.body(TEAM_FIELDS, props), "metadata": metadata, **blocking.on_create(props)}
            response = client.team_new(body)
            finish(lambda: client.team_update({"team_id": team_id, **declared}))
            return response

        CreateProtocol(
            what=f"team {team_id!r}",
            attempt=attempt,
            lookup=lambda: _info_or_none(client, team_id),
            ours=lambda found: pending(found.get("team_info") or {}),
            keep=lambda found: self._reconcile(client, props, found.get("team_info") or {}),
            adopt=lambda found, err: self._adopt(client, props, found, err),
            later="the next `pulumi up` recognises it as this stack's (by its pending marker) and carries on with it",
        ).run(client.budget())
        return self.created(CreateResult(team_id, _outputs(props, read_back(client.team_info, team_id))))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = current_client_for(props, follow_url=True)
        team_data = _info_or_none(client, id_)
        if team_data is None:
            return missing(f"team {id_!r}", props, client)
        live = f.live_values(TEAM_FIELDS, team_data.get("team_info") or {})
        return ReadResult(id_, self.stored({**props, **live, "team_data": f.compact(team_data)}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        names = f.changed(TEAM_FIELDS, olds, news)
        sent = [n for n in names if self.field(n).sent]
        blocked = news["blocked"] if blocking.FIELD.name in names else None  # None: the switch stays
        if not sent and blocked is None:  # only credentials changed: nothing to change on the proxy,
            # but a new url must hold it
            new_url = moved(olds, news)
            if new_url and _info_or_none(client_for(news), id_) is None:
                raise not_at(f"team {id_!r}", new_url, olds)
            return UpdateResult(_outputs(news, olds.get("team_data")))
        client = client_for(news)
        try:
            self._apply(client, id_, news, sent, blocked)
        except NotFound:
            raise LiteLLMError(
                "update team",
                f"team {id_!r} no longer exists on the proxy (deleted outside Pulumi, and LiteLLM deleted its "
                "keys with it); run `pulumi refresh`, then `pulumi up` recreates it",
                404,
            ) from None
        return UpdateResult(_outputs(news, read_back(client.team_info, id_)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Refused while the team holds keys (LiteLLM would delete them with it): providers/team_keys.py.
        A team already gone is fine: deleting twice is safe. A team another resource of this run took over
        (a rename) is left on the proxy."""
        if self.released(id_, props):
            return
        client = current_client_for(props)
        keys = team_keys.team_keys(client, id_)
        if keys is None:
            return
        team_keys.refuse_team_delete(keys, id_)
        client.team_delete(id_)

    def _adopt(self, client: LiteLLMClient, props: dict[str, Any], found: dict[str, Any] | None,
               err: Conflict) -> dict[str, Any]:
        """Take over a team that already exists, if the program opted in or this stack made it (its owner
        mark: a renamed resource, an interrupted `up`); reconcile it to the declaration."""
        team_id = props["team_id"]
        row = (found or {}).get("team_info")
        if not props["adopt_existing"] and not owner.owned(row, props):
            raise LiteLLMError(
                "create team",
                f"team_id {team_id!r} already exists on the proxy ({err.detail}; {owner.whose(row)}). To manage "
                "the existing team from this stack, set adopt_existing=True; otherwise choose another team_id",
                err.status,
            ) from None
        return self._reconcile(client, props, client.team_info(team_id).get("team_info") or {})

    def _reconcile(self, client: LiteLLMClient, props: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
        """Bring a team that exists to the declared values (one /team/update, only when something differs;
        a pending marker in its metadata differs from any declared metadata, and so does a missing owner
        mark: an adopted team is marked as this stack's), blocked or not as declared."""
        drift = f.changed(TEAM_FIELDS, f.live_values(TEAM_FIELDS, live), props)
        if owner.mark(props) and not owner.owned(live, props) and "metadata" not in drift:
            drift.append("metadata")  # adopted: marked as this stack's with its declared metadata
        blocked = props["blocked"] if blocking.FIELD.name in drift else None
        self._apply(client, props["team_id"], props, [n for n in drift if self.field(n).sent], blocked)
        return live

    @staticmethod
    def _apply(client: LiteLLMClient, team_id: str, props: dict[str, Any], sent: list[str],
               blocked: bool | None) -> None:
        """The changed settings (one /team/update, if any) and the kill switch (None: left as it is)."""
        def change() -> Any:
            return client.team_update({"team_id": team_id, **_body(props, sent)}) if sent else None

        blocking.around(lambda on: client.team_blocked(team_id, on), blocked, change)


def _body(props: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """An update of these fields, declared metadata with the owner mark."""
    return owner.in_body(f.body(TEAM_FIELDS, props, names), props)


def _info_or_none(client: LiteLLMClient, team_id: str) -> dict[str, Any] | None:
    try:
        return client.team_info(team_id)
    except NotFound:
        return None


def _outputs(props: dict[str, Any], team_data: Any) -> dict[str, Any]:
    return TeamProvider.stored({**props, "team_data": f.compact(team_data)})


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
    blocked: pulumi.Input[bool] = False  # the kill switch; its keys follow once the proxy's cache expires


class Team(Resource, module="litellm", name="Team"):
    """A LiteLLM team. `token` is always secret."""

    team_id: pulumi.Output[str]
    team_data: pulumi.Output[dict]

    def __init__(self, resource_name: str, args: TeamArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props, opts = registered(resource_name, args, ["team_data"], SECRET_OUTPUTS, opts, marks=True)
        super().__init__(TeamProvider(), resource_name, props, opts)
