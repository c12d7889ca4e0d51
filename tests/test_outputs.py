"""components/outputs.py: Outputs of API answers are combined as they are (not lifted field by field into
Outputs of their own, which cost 43% of a 2,000-user program's CPU), with the SDK's known/secret semantics."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import pulumi
from pulumi.runtime.settings import SETTINGS

from components.outputs import combine, gather

ANSWER = {"user_id": "jdoe@example.edu", "user_info": {"models": ["fake-mock"], "max_budget": 10.0}, "keys": []}


def output(value: Any, known: bool = True, secret: bool = False) -> pulumi.Output[Any]:
    async def const(v: Any) -> Any:
        return v
    return pulumi.Output(set(), const(value), const(known), const(secret))


def resolve(make: Callable[[], pulumi.Output[Any]]) -> tuple[Any, bool, bool]:
    """(value, is_known, is_secret) of the Output `make` builds, in an event loop of its own (the thread's
    current loop, which other tests' SDK calls use, is left as it was), and the SDK's tracked Outputs too."""
    async def run() -> tuple[Any, bool, bool]:
        out = make()
        parts: list[Awaitable[Any]] = [out.future(with_unknowns=True), out.is_known(), out.is_secret()]
        value, known, secret = await asyncio.gather(*parts)
        return value, known, secret
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()
        SETTINGS.outputs.clear()


def test_an_answer_reaches_the_function_as_the_very_same_object() -> None:
    seen: list[Any] = []

    def keep(a: Any, b: Any) -> str:
        seen.extend([a, b])
        return "done"

    assert resolve(lambda: combine(keep, output(ANSWER), output([ANSWER]))) == ("done", True, False)
    assert seen[0] is ANSWER and seen[1][0] is ANSWER  # Output.all would hand over rebuilt copies


def test_gather_maps_each_name_to_its_value_unchanged() -> None:
    value, known, secret = resolve(lambda: gather({"a": output(ANSWER), "b": output("sk-1", secret=True)}))
    assert value == {"a": ANSWER, "b": "sk-1"} and value["a"] is ANSWER
    assert (known, secret) == (True, True)  # one secret member makes the map secret, as Output.all does


def test_an_unknown_argument_makes_the_result_unknown_and_the_function_is_not_run() -> None:
    ran: list[Any] = []
    _, known, _ = resolve(lambda: combine(lambda a, b: ran.append((a, b)), output(ANSWER), output(None, known=False)))
    assert known is False and ran == []
    _, known, _ = resolve(lambda: gather({"a": output(ANSWER), "b": output(None, known=False)}))
    assert known is False


def test_plain_values_and_outputs_inside_lists_still_resolve() -> None:
    value, known, secret = resolve(lambda: combine(lambda a, b, c: (a, b, c), "plain", [output("inner")],
                                                   output(ANSWER, secret=True)))
    assert value == ("plain", ["inner"], ANSWER) and (known, secret) == (True, True)
