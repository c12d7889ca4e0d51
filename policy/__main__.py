"""The policy pack's entry point: the Pulumi CLI runs this file (`python -m pulumi.policy <engine> .` in this
directory) and talks to the analyzer it serves. It only builds the pack; the policies live in
litellm_policies.py, which the tests import (constructing a PolicyPack starts a server and never returns)."""

from pulumi_policy import EnforcementLevel, PolicyPack

from litellm_policies import PACK_NAME, POLICIES

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
    description="Guardrails for LiteLLM proxy users and virtual keys: expiry, budgets, admin roles, model access, "
    "rate limits, email domains, key aliases, and identities that LiteLLM only rejects at apply time.",
)
