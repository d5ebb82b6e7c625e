"""Does Astro's SCIM endpoint answer as RFC 7643 describes? `test-connection`'s "Astro SCIM conformance" check.

Discovery (/ServiceProviderConfig, /ResourceTypes, /Schemas) and the first page of Users and of Teams (SAMPLE each,
MEMBER_SAMPLE members a Team) are validated against the scim2-models models; each mismatch is a deviation. The drift
audit tolerates all of them (it reads plain JSON and checks what it uses structurally: connector.astro.reader), so
they are information, not failures; a server that cannot be read at all is the failure.

Why here and not in every `drift`: what is validated changes nothing in what the audit reads, and validating costs a
fresh process the import of scim2-models (~1 s of CPU, a third of a 20,000-user audit; benchmarks/audit_scale.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from connector.astro.client import AstroScimClient, run_sync
from connector.config.load import AstroConfig
from connector.errors import AuthError, RemoteError

SAMPLE = 25  # resources of the first page of each type checked against the models (~1 ms each)
MEMBER_SAMPLE = 10  # members of each sampled Team (a member costs ~60 us to validate)


def check_conformance(astro: AstroConfig) -> list[str]:
    """The deviations from RFC 7643 the organization's SCIM answers show ([] when there are none). Raises
    RemoteError / AuthError when the endpoint cannot be read."""
    return run_sync(astro, _deviations, concurrency=5)


async def _deviations(scim: AstroScimClient) -> list[str]:
    from scim2_models import EnterpriseUser, Group, ResourceType, Schema, ServiceProviderConfig, User

    paths = ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas", f"/Users?startIndex=1&count={SAMPLE}",
             f"/Groups?startIndex=1&count={SAMPLE}"]
    answers = await asyncio.gather(*(scim.get_json(p) for p in paths), return_exceptions=True)
    found: list[str] = []
    for path, answer in zip(paths, answers, strict=True):
        if isinstance(answer, AuthError) or (isinstance(answer, BaseException) and path.startswith(("/Users",
                                                                                                     "/Groups"))):
            raise answer  # the resources themselves unreadable: not a deviation, the check failed
        if isinstance(answer, RemoteError):
            found.append(f"{path} unavailable ({answer})")
        elif isinstance(answer, BaseException):
            raise answer
    spc, rts, schemas, users, groups = answers
    if isinstance(spc, dict) and (problem := _problem(ServiceProviderConfig, spc)):
        found.append(f"/ServiceProviderConfig does not validate against RFC 7643 ({problem})")
    for path, model, payload in (("/ResourceTypes", ResourceType, rts), ("/Schemas", Schema, schemas),
                                 ("/Users", User[EnterpriseUser], users), ("/Groups", Group, groups)):
        if isinstance(payload, BaseException):
            continue
        resources = payload.get("Resources") if isinstance(payload, dict) else None
        if not isinstance(resources, list):
            found.append(f"{path} does not answer a ListResponse")
            continue
        if problem := _invalid(model, [_trimmed(r) for r in resources[:SAMPLE]]):
            found.append(f"{path} resources do not validate against RFC 7643 ({problem})")
    return [*scim.deviations, *found]


def _invalid(model: Any, resources: list[Any]) -> str | None:
    """`Resources.i.path: message` for the first resource that does not validate as `model`, else None.

    One resource at a time, not as a ListResponse[model]: pydantic builds a class per generic ListResponse on
    first use, and the envelope is checked structurally anyway.
    """
    for i, resource in enumerate(resources):
        if problem := _problem(model, resource):
            return f"Resources.{i}.{problem}"
    return None


def _problem(model: Any, resource: Any) -> str | None:
    """`loc: message` of the first validation error of `resource` as `model`, else None."""
    from pydantic import ValidationError
    from scim2_models import Context

    try:
        model.model_validate(resource, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": str(exc)}
        return ".".join(str(p) for p in first.get("loc", ())) + f": {first.get('msg')}"
    return None


def _trimmed(resource: Any) -> Any:
    """The resource with at most MEMBER_SAMPLE members: a sampled Team of 5,000 members would cost 0.3 s."""
    members = resource.get("members") if isinstance(resource, dict) else None
    if isinstance(members, list) and len(members) > MEMBER_SAMPLE:
        return {**resource, "members": members[:MEMBER_SAMPLE]}
    return resource
