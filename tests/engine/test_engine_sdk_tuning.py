"""The stack program's SDK switches (components/sdk_tuning.py) on the real engine: by default the state holds
no stack trace for the users' resources, `litellm:stack_traces: true` keeps them, an error still names its
resource without them, `litellm:fast_output_wait: true` runs the linear wait (the program's debug log
says which wait ran) in a preview and an up that do what they do without it, and `litellm:sdk_debug_logs:
false` leaves the SDK's debug messages out of `--debug` output and changes nothing else."""

from __future__ import annotations

from components.sdk_tuning import LINEAR_WAIT_MESSAGE
from providers.client import LiteLLMClient

from .checks import keys, person
from .conftest import Project

USER_TYPES = ("litellm:index:UserWithKey", "litellm:User", "litellm:Key")
STOCK_WAIT_MESSAGE = "Waiting for outstanding RPCs to complete"
SDK_DEBUG_MESSAGE = "registering resource: ty=pulumi-python:dynamic/litellm:User"  # pulumi/runtime/resource.py


def traces(project: Project) -> dict[str, tuple[bool, bool]]:
    """(has a stackTrace, has a sourcePosition) of each user resource in the exported state, by type::name."""
    return {f"{r['type'].split('/')[-1]}::{r['urn'].split('::')[-1]}": ("stackTrace" in r, "sourcePosition" in r)
            for r in project.resources() if r["type"].endswith(USER_TYPES)}


def test_stack_traces_are_stored_only_when_asked(project: Project, unique: str) -> None:
    ann, bob = f"ann-{unique}@example.edu", f"bob-{unique}@example.edu"
    project.configure({"litellm:users": [person(ann), person(bob, auto_create_key=True)]})
    project.up()
    names = [f"{kind}::{user}" for user in (ann, bob)
             for kind in ("litellm:index:UserWithKey", "litellm:User", "litellm:Key")]
    assert traces(project) == {name: (False, False) for name in names}

    project.configure({"litellm:stack_traces": True})
    project.up()
    assert traces(project) == {name: (True, True) for name in names}
    assert sorted(keys(project)) == sorted([ann, bob])


def test_an_error_names_its_resource_without_stack_traces(project: Project, api: LiteLLMClient, unique: str) -> None:
    taken = f"taken-{unique}@example.edu"
    api.user_new({"user_id": taken, "user_email": taken})
    try:
        project.configure({"litellm:users": [person(taken)]})
        failed = project.up(check=False)
        output = failed.stdout + failed.stderr
        assert failed.returncode != 0 and "already exists" in output
        assert f"pulumi-python:dynamic/litellm:User ({taken}):" in output
    finally:
        api.user_delete(taken)


def test_the_linear_wait_runs_when_asked_and_the_stack_is_the_same(project: Project, unique: str) -> None:
    users = [person(f"u{n}-{unique}@example.edu", auto_create_key=n % 2 == 0) for n in range(3)]
    project.configure({"litellm:users": users, "litellm:fast_output_wait": True})
    preview = project.run("preview", "--debug")
    assert LINEAR_WAIT_MESSAGE in preview.stdout
    up = project.up("--debug")
    assert LINEAR_WAIT_MESSAGE in up.stdout
    assert sorted(keys(project)) == sorted(u["user_id"] for u in users)
    assert all(value.startswith("sk-") for value in keys(project).values())
    project.run("preview", "--expect-no-changes")

    project.configure({"litellm:fast_output_wait": False})
    stock = project.run("preview", "--debug", "--expect-no-changes")
    assert STOCK_WAIT_MESSAGE in stock.stdout and LINEAR_WAIT_MESSAGE not in stock.stdout


def test_sdk_debug_messages_are_left_out_when_asked_and_the_stack_is_the_same(project: Project, unique: str) -> None:
    user = f"quiet-{unique}@example.edu"
    project.configure({"litellm:users": [person(user)], "litellm:sdk_debug_logs": False})
    quiet = project.up("--debug")
    assert SDK_DEBUG_MESSAGE not in quiet.stdout and "debug:" in quiet.stdout  # the engine's own still show
    assert list(keys(project)) == [user] and keys(project)[user].startswith("sk-")

    project.configure({"litellm:sdk_debug_logs": True})
    stock = project.run("preview", "--debug", "--expect-no-changes")
    assert SDK_DEBUG_MESSAGE in stock.stdout
