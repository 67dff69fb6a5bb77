"""Reading a function's code to check a seam is still where it was measured."""

from __future__ import annotations

from typing import Any

Checks = dict[str, bool]
"""What each seam module's ``checks()`` returns: a description of a seam → it holds."""


def code_names(func: Any) -> set[str]:
    """Names a function's code (nested comprehensions and closures included) refers to."""
    names: set[str] = set()
    stack = [func.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return names
