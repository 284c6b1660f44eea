"""Replies that are a list plus a few facts about it (a search's hits, a page of a list)."""

from __future__ import annotations


def iterates_over(attribute: str):
    """Class decorator: `for x in reply` and `len(reply)` go over the reply's list `attribute`."""

    def decorate(cls):
        cls.__iter__ = lambda self: iter(getattr(self, attribute))
        cls.__len__ = lambda self: len(getattr(self, attribute))
        return cls

    return decorate
