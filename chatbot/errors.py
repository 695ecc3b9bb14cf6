"""The project's errors: one base class, so that every command reports them the same way.

A :class:`ChatbotError` is a problem the user can fix (a damaged artifact, a malformed data
row, missing WordNet data): the ``chatbot`` command prints its message as one ``error:`` line
and exits with status 2. Anything else is a bug and keeps its traceback.

Example:
    >>> issubclass(ArtifactError, ChatbotError)
    True
"""

from __future__ import annotations


class ChatbotError(Exception):
    """A problem with the user's input, files or setup, worded for them."""


class ArtifactError(ChatbotError, RuntimeError):
    """A model artifact is missing, damaged or does not fit together."""


class IndexLoadError(ChatbotError, RuntimeError):
    """A response index is missing, damaged, or belongs to another model."""


class ConfigError(ChatbotError, ValueError):
    """A model or training setting out of range, or a config file with unknown keys."""


class UsageError(ChatbotError):
    """Options that do not fit together, or that a command cannot act on."""


class BundleError(ChatbotError, RuntimeError):
    """A model bundle (chatbot.bundles) is missing, damaged, or its parts do not belong together."""


class StoreError(ChatbotError, RuntimeError):
    """The feedback database cannot be reached, or its URL makes no sense."""
