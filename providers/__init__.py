"""Pulumi dynamic providers for LiteLLM proxy users, virtual keys, teams and team memberships.

The type tokens (`pulumi-python:dynamic/litellm:User`, `...:Key`, `...:Team`, `...:TeamMember`) and these import paths are written into
every stack's state: they are a compatibility contract.
"""

from .client import LiteLLMClient, LiteLLMError
from .key import Key, KeyArgs, KeyProvider
from .team import Team, TeamArgs, TeamProvider
from .team_member import TeamMember, TeamMemberArgs, TeamMemberProvider
from .user import User, UserArgs, UserProvider

__all__ = [
    "Key", "KeyArgs", "KeyProvider", "LiteLLMClient", "LiteLLMError", "Team", "TeamArgs", "TeamMember",
    "TeamMemberArgs", "TeamMemberProvider", "TeamProvider", "User", "UserArgs", "UserProvider",
]
