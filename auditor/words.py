"""The vocabulary type every stage shares: a word from a fixed set, as data on the wire and in reports."""
from enum import Enum


class Word(str, Enum):
    """A str enum that prints as its value (JSON, %s and f-strings alike)."""

    def __str__(self):
        return self.value

    @classmethod
    def parse(cls, value, fallback):
        """The member for a word a host sent, or `fallback` for a word this version does not know."""
        try:
            return cls(value)
        except ValueError:
            return fallback
