"""What the tool reads of each Graph collection, checked before use (connector.support.answers explains why).

Keyed by the end of the endpoint name the Tenant gives each call ("GET /servicePrincipals", "GET
/groups/{id}/members"); reads.collection_page checks every page of a Graph collection against it, so
a service principal without `id` or an assignment without `principalId` is exit 3 naming the endpoint, never a
KeyError (70) or an object quietly dropped from the audit.
"""

from __future__ import annotations

from typing import Any

from connector.support.shapes import Shape, check_items

# (endpoint suffix, shape of each item)
COLLECTIONS: list[tuple[str, Shape]] = [
    ("/servicePrincipals", {"id": str, "appId": str}),
    ("/applications", {"id": str, "appId": str}),
    ("/appRoleAssignedTo", {"id": str, "principalId": str, "?principalType": str}),
    ("/members", {"id": str}),
    ("/synchronization/jobs", {"id": str}),
    ("/synchronization/templates", {"id": str}),
    ("/groups", {"id": str}),
    ("/users", {"id": str}),
    ("/auditLogs/provisioning", {"id": str}),
]


def check_collection(endpoint: str, items: list[dict[str, Any]]) -> None:
    path = endpoint.split(" ", 1)[-1].split("?", 1)[0]
    shape = next((shape for suffix, shape in COLLECTIONS if path.endswith(suffix)), None)
    if shape is not None:
        check_items(items, shape, service="graph", endpoint=endpoint)
