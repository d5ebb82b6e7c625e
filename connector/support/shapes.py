"""A tiny declarative shape check for JSON objects, for the IdPs' answer tables (providers/*/answers.py).

A shape is a dict: key -> type, or key -> nested shape (the value must be an object of that shape). A key
written "?key" is optional: checked only when present (and not null). Only what the tool reads is listed:
everything else in an answer is left alone, so additive API changes never break us.
"""

from __future__ import annotations

from typing import Any, Union

from connector.support.answers import invalid

Shape = dict[str, Union[type, tuple[type, ...], "Shape"]]


def problem(item: Any, shape: Shape, where: str = "") -> str | None:
    """What is wrong with `item` against `shape` (the first thing), or None."""
    if not isinstance(item, dict):
        return f"{where or 'the item'} is {type(item).__name__}, not an object"
    for raw_key, rule in shape.items():
        optional = raw_key.startswith("?")
        key = raw_key.lstrip("?")
        value = item.get(key)
        path = f"{where}.{key}" if where else key
        if value is None:
            if optional:
                continue
            return f"{path} is missing"
        if isinstance(rule, dict):
            found = problem(value, rule, path)
            if found:
                return found
        elif not isinstance(value, rule) or (isinstance(value, bool) and rule is not bool):
            return f"{path} is {type(value).__name__}"
    return None


def check_items(items: list[dict[str, Any]], shape: Shape, *, service: str, endpoint: str) -> None:
    for i, item in enumerate(items):
        found = problem(item, shape)
        if found:
            ident = item.get("id") if isinstance(item.get("id"), str) else f"#{i}"
            raise invalid(f"item {ident}: {found}", service=service, endpoint=endpoint)


def check_object(data: Any, shape: Shape, *, service: str, endpoint: str) -> None:
    found = problem(data, shape, "the answer")
    if found:
        raise invalid(found, service=service, endpoint=endpoint)
