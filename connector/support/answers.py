"""Shape checks for remote answers, before any of their content is used.

Why a check at the edge: code further in reads `item["profile"]["login"]` and trusts a list to be a list. A
malformed or hostile answer (a list of strings, an object where a list belongs, a user without its profile) must
stop the command with a RemoteError naming the endpoint (exit 3), not crash it (exit 70), not be read as "this
object is missing, run apply" (a configuration hint for a server fault), and never become an empty view that the
audit reports as "no drift".

The errors carry the answer's status (a 2xx) and code "invalid_body": not retried (asking again gets the same
body), and shown as `<service> <endpoint>: <what> (HTTP 200, invalid_body)`.
"""

from __future__ import annotations

from typing import Any

from connector.errors import RemoteError

HINT = "the service answered with a body this tool cannot use; if it persists, report it to the service's support"


def invalid(message: str, *, service: str, endpoint: str, status: int | None = None) -> RemoteError:
    return RemoteError(message, service=service, endpoint=endpoint, status=status or 0, code="invalid_body",
                       hint=HINT)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def object_answer(data: Any, *, service: str, endpoint: str, status: int | None = None) -> dict[str, Any]:
    """The answer, which must be a JSON object."""
    if not isinstance(data, dict):
        raise invalid(f"expected a JSON object, got {_kind(data)}", service=service, endpoint=endpoint,
                      status=status)
    return data


def list_of_objects(data: Any, *, service: str, endpoint: str, status: int | None = None,
                    what: str = "the answer") -> list[dict[str, Any]]:
    """`data`, which must be a JSON array of objects."""
    if not isinstance(data, list):
        raise invalid(f"{what} should be a list, got {_kind(data)}", service=service, endpoint=endpoint,
                      status=status)
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise invalid(f"item {i} of {what} is {_kind(item)}, not an object", service=service,
                          endpoint=endpoint, status=status)
    return data


def fields(item: dict[str, Any], required: dict[str, type | tuple[type, ...]], *, service: str, endpoint: str,
           what: str = "an item") -> None:
    """Each key of `required` is present in `item` with a value of its type."""
    for key, kind in required.items():
        value = item.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            ident = item.get("id")
            label = f"{what} {ident}" if isinstance(ident, str) and ident else what
            raise invalid(f"{label} has no valid {key!r} ({_kind(value)})", service=service, endpoint=endpoint)
