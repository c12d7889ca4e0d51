"""The UserWithKey component: the Terraform module's interface over the LiteLLM User and Key resources."""

from .user_with_key import UserWithKey, UserWithKeyArgs

__all__ = ["UserWithKey", "UserWithKeyArgs"]
