"""What the tool reads of each Okta answer, checked before use (connector.support.answers explains why).

Keyed by the API path (ids replaced by {id}); `OktaClient.pages` and `OktaClient.get` check every answer
against this table, so a user without `profile` or an app without `id` is exit 3 naming the endpoint, never a
KeyError (70) or a user silently left out of the audit ("no drift").
"""

from __future__ import annotations

import re
from typing import Any

from connector.support.shapes import Shape, check_items, check_object

_USER: Shape = {"id": str, "status": str, "profile": {"login": str}}
_GROUP: Shape = {"id": str, "profile": {"name": str}}

# (path pattern, shape of each list item) for list answers; single objects in OBJECTS.
LISTS: list[tuple[re.Pattern[str], Shape]] = [
    (re.compile(r"^/api/v1/apps$"), {"id": str, "label": str}),
    (re.compile(r"^/api/v1/apps/[^/]+/users$"),
     {"id": str, "status": str, "profile": {}, "?_embedded": {"?user": _USER}}),
    (re.compile(r"^/api/v1/apps/[^/]+/groups$"), {"id": str}),
    (re.compile(r"^/api/v1/apps/[^/]+/features$"), {"name": str}),
    (re.compile(r"^/api/v1/apps/[^/]+/group-push/mappings$"), {"id": str, "sourceGroupId": str, "status": str}),
    (re.compile(r"^/api/v1/groups$"), _GROUP),
    (re.compile(r"^/api/v1/groups/[^/]+/users$"), _USER),
    (re.compile(r"^/api/v1/users$"), _USER),
    (re.compile(r"^/api/v1/mappings$"), {"id": str}),
]
OBJECTS: list[tuple[re.Pattern[str], Shape]] = [
    (re.compile(r"^/api/v1/apps/[^/]+$"), {"id": str, "label": str}),
    (re.compile(r"^/api/v1/apps/[^/]+/users/[^/]+$"), {"id": str, "profile": {}}),
    (re.compile(r"^/api/v1/apps/[^/]+/features/[^/]+$"), {"name": str}),
    (re.compile(r"^/api/v1/apps/[^/]+/group-push/mappings/[^/]+$"), {"id": str, "status": str}),
    (re.compile(r"^/api/v1/groups/[^/]+$"), _GROUP),
    (re.compile(r"^/api/v1/users/[^/]+$"), _USER),
    (re.compile(r"^/api/v1/mappings/[^/]+$"), {"id": str, "properties": {}}),
]


def _find(table: list[tuple[re.Pattern[str], Shape]], path: str) -> Shape | None:
    return next((shape for pattern, shape in table if pattern.match(path)), None)


def check_list(path: str, items: list[dict[str, Any]], endpoint: str) -> None:
    shape = _find(LISTS, path)
    if shape is not None:
        check_items(items, shape, service="okta", endpoint=endpoint)


def check_answer(path: str, data: Any, endpoint: str) -> None:
    """A GET answer: a list for the list paths, an object of its shape for the object paths."""
    if _find(LISTS, path) is not None:
        from connector.support.answers import list_of_objects

        check_list(path, list_of_objects(data, service="okta", endpoint=endpoint), endpoint)
        return
    shape = _find(OBJECTS, path)
    if shape is not None:
        check_object(data, shape, service="okta", endpoint=endpoint)
