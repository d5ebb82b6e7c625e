"""AstroScimClient.get_json checks an answer itself (drift must not load scim2-client): table-tested against what
scim2-client's check_response (the path every other Astro call takes) concludes about the same answers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from scim2_client import UnexpectedContentTypeException, UnexpectedStatusCodeException
from scim2_client.errors import UnexpectedContentFormatException
from scim2_models import EnterpriseUser, Group, ResourceType, ScimProvider, User

from connector.astro import errors as astro_errors
from connector.astro.client import AstroScimClient
from connector.astro.engine import Answer
from connector.astro.scim2_engine import AiohttpSCIMClient
from connector.config.load import AstroConfig
from connector.errors import AuthError, RemoteError
from connector.support.secret import Secret

WHERE = "https://api.astronomer.io/scim/v2/org/Users"
SCIM = "application/scim+json"
LIST = orjson.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0})
ERROR = orjson.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404",
                      "detail": "no such user"})

CASES: list[tuple[str, int, str | None, bytes]] = [
    ("ok", 200, SCIM, LIST),
    ("ok-plain-json", 200, "application/json; charset=utf-8", LIST),
    ("wrong-media-type", 200, "text/plain", LIST),
    ("created", 201, SCIM, LIST),
    ("no-content", 204, None, b""),
    ("not-modified", 304, None, b""),
    ("redirect", 302, None, b""),  # ours names where it pointed (code "redirect"); both refuse it
    ("html-page", 200, "text/html", b"<html>login</html>"),
    ("truncated-json", 200, SCIM, LIST[:-5]),
    ("scim-error-404", 404, SCIM, ERROR),
    ("bare-404", 404, "text/plain", b"not found"),
    ("401", 401, SCIM, orjson.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "401"})),
    ("403-html", 403, "text/html", b"<html>forbidden</html>"),
    ("500-empty", 500, None, b""),
    ("503-scim", 503, SCIM, orjson.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                           "status": "503", "detail": "busy"})),
]


def _answer(status: int, ctype: str | None, body: bytes) -> Answer:
    return Answer(status, CIMultiDictProxy(CIMultiDict({"content-type": ctype} if ctype else {})), body)


def _ours(answer: Answer) -> tuple[str, Any]:
    client = AstroScimClient(AstroConfig(scim_url=WHERE.rsplit("/", 1)[0], token=Secret.from_value("t")))
    try:
        payload = client._json_of(answer, WHERE)
    except RemoteError as exc:
        return "error", (type(exc), exc.status)
    return ("deviation" if client.deviations else "ok"), payload


def _scim2(answer: Answer) -> tuple[str, Any]:
    """What the Astro client concluded when get_json went through scim2-client (its read_json, then from_scim2)."""
    provider = ScimProvider(models=[User, EnterpriseUser, Group], resource_types=[
        ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)])
    engine = AiohttpSCIMClient(None, provider=provider)  # type: ignore[arg-type]  # check_response sends nothing

    def check() -> Any:
        try:
            payload = orjson.loads(answer.content) if answer.content else None
        except ValueError as exc:
            if not 200 <= answer.status_code < 300:
                raise UnexpectedStatusCodeException(answer.status_code, source=answer) from exc
            raise UnexpectedContentFormatException(source=answer) from exc
        try:
            return engine.check_response(payload=payload, status_code=answer.status_code, headers=answer.headers,
                                         expected_status_codes=[200], check_response_payload=False)
        except Exception as exc:
            exc.source = answer  # type: ignore[attr-defined]  # as read_json attached it
            raise

    try:
        return "ok", check()
    except UnexpectedContentTypeException:
        engine.check_response_content_type = False  # the old call() relaxed the check and asked again
        return "deviation", check()
    except Exception as exc:
        err = astro_errors.from_scim2(exc, WHERE, auth_hint="hint")
        return "error", (type(err), err.status)


@pytest.mark.parametrize(("name", "status", "ctype", "body"), CASES, ids=[c[0] for c in CASES])
def test_get_json_concludes_what_scim2_client_concludes(name: str, status: int, ctype: str | None,
                                                        body: bytes) -> None:
    answer = _answer(status, ctype, body)
    assert _ours(answer) == _scim2(answer)


def test_the_table_sees_each_outcome() -> None:
    """The cases above cover a payload, a tolerated deviation, and each kind of error."""
    outcomes = {_ours(_answer(s, c, b))[0] for _, s, c, b in CASES}
    errors = {_ours(_answer(s, c, b))[1][0] for _, s, c, b in CASES if _ours(_answer(s, c, b))[0] == "error"}
    assert outcomes == {"ok", "deviation", "error"} and errors == {RemoteError, AuthError}
