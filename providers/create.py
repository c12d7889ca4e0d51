"""Create without duplicates: the one protocol every resource's create follows.

A create call is never blindly retried: its answer may be lost (a timeout, a dropped connection, a 5xx from
a gateway) while the proxy acted, and the request may even land after the client gave up. So:

1. attempt the create;
2. after an ambiguous failure (not a 429: LiteLLM rejects those before acting) or a conflict, look the
   object up;
3. tell ours (made by one of our attempts: this create's, or an earlier run's that landed late) from one
   that was there before;
4. ours: carry on with it (`keep`), or, when it is unusable (a key whose raw value was lost), have `keep`
   remove it and create again; not ours: the adoption path (`adopt` takes it over or refuses);
5. nothing there: try again within the retry budget.

Ours is told by a marker: every attempt sends `PENDING` in the object's metadata, and the create replaces
it once it has the object in hand (an object in some stack's state never carries it). An object with the
marker is therefore an orphan of a create that never learned its outcome (a late landing), which is safe
to take over; one without it was there before (in another stack, or made by hand) and is refused unless
adopted.

When the budget runs out, the message never claims that nothing was left behind while an attempt may still
land; it says what the next `pulumi up` does with such a late landing (recognise it as ours).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, Mapping, Optional, TypeVar

from .client import AmbiguousFailure, Conflict, LiteLLMError, RetryBudget

MARK = "pulumi_create"  # a metadata entry: "pending" until the create that sent it has the object in hand
PENDING, DONE = {MARK: "pending"}, {MARK: "done"}


def pending(row: Mapping[str, Any]) -> bool:
    """True when a row (user, key, team) carries the marker of an unfinished create."""
    return (row.get("metadata") or {}).get(MARK) == PENDING[MARK]


def finish(clear: Callable[[], Any]) -> None:
    """Replace the pending marker of an object we have in hand. No failure of that update fails the create
    that was made: not LiteLLM refusing it (a key whose team_id does not exist, which /key/generate accepts
    but /key/update refuses), and not a lost answer (the update may have landed: looking again would find
    the object marked done, take it for someone else's, and strand it outside the state). The marker may
    stay; it only makes that object one a later create may take for an orphan."""
    try:
        clear()
    except LiteLLMError:
        pass


Result = TypeVar("Result")
Found = TypeVar("Found")


@dataclasses.dataclass
class CreateProtocol(Generic[Result, Found]):
    """One create, described by the resource's own calls.

    what:    the object as messages name it ("user 'alice'", "key with alias 'alice'").
    attempt: the create call (with `PENDING` in its metadata), then the removal of the marker; raises
             Conflict when the object exists, AmbiguousFailure when the outcome is unknown.
    lookup:  the object as it is on the proxy now (the one our attempts would have made), or None.
    ours:    True when the found object came from one of our attempts (never one that was there before).
    keep:    carry on with our object (removing its marker): the create's result, or None after deleting
             an unusable one.
    adopt:   what to do with an object that is not ours (None: the conflict names another object).
    later:   what the next `pulumi up` does with a late landing, for the give-up message.
    """

    what: str
    attempt: Callable[[], Result]
    lookup: Callable[[], Optional[Found]]
    ours: Callable[[Found], bool]
    keep: Callable[[Found], Optional[Result]]
    adopt: Callable[[Optional[Found], Conflict], Result]
    later: str

    def run(self, budget: RetryBudget) -> Result:
        may_land = False  # an attempt whose outcome we never learned may still reach the proxy
        while True:
            try:
                return self.attempt()
            except (Conflict, AmbiguousFailure) as err:
                failure: LiteLLMError = err
            except LiteLLMError as err:
                if err.status is not None:  # LiteLLM's verdict on the request (400, 422, ...): its words
                    raise
                raise self._failed(err, "the request never reached the proxy", may_land) from None
            ambiguous = isinstance(failure, AmbiguousFailure)
            if not (ambiguous and failure.surely_not_done):
                may_land = may_land or ambiguous
                settled = self._settle(failure)
                if settled is not None:
                    return settled[0]
            if ambiguous and not failure.retryable:
                raise self._failed(failure, "LiteLLM refused it", may_land)
            if not budget.wait(failure):
                raise self._failed(failure, f"gave up after {budget.spent()}", may_land)

    def _settle(self, failure: LiteLLMError) -> Optional[tuple[Result]]:
        """Look after a failure: (result,) when the create is settled, None to create again."""
        found = self._look(failure)
        if found is None:
            if isinstance(failure, Conflict):  # the conflict is about another object (a taken email)
                return (self.adopt(None, failure),)
            return None
        if not self.ours(found):
            conflict = failure if isinstance(failure, Conflict) else Conflict(failure.operation, "already exists", 409)
            return (self.adopt(found, conflict),)
        kept = self.keep(found)
        return None if kept is None else (kept,)

    def _look(self, failure: LiteLLMError) -> Optional[Found]:
        try:
            return self.lookup()
        except LiteLLMError as err:
            raise LiteLLMError(
                failure.operation,
                f"{failure.detail}; then looking up whether {self.what} was created failed too ({err}). "
                f"It may exist: {self.later}",
                failure.status,
            ) from None

    def _failed(self, failure: LiteLLMError, why: str, may_land: bool) -> LiteLLMError:
        if may_land:
            after = (f"{self.what} was not on the proxy when last looked up, but an attempt that got no "
                     f"answer may still land: {self.later}")
        else:
            after = f"{self.what} was not created: run `pulumi up` again"
        return LiteLLMError(failure.operation, f"{failure.detail}; {why}. {after}", failure.status)
