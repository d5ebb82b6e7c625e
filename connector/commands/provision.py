"""`astro-scim provision --user U | --group G`: Entra provision on demand (the seed FAQ's fix for an Azure user
or group that is out of sync with Astro). Groups are sent as one group plus up to 5 members per call, paced at
5 calls per 10 seconds. Entra's answer is then checked in Astro (audit/readback.py): a subject is "verified" only
when Astro holds what the mapping gives for it."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from connector import output
from connector.audit import readback
from connector.audit.readback import Verification
from connector.config.arg import load_config_arg
from connector.errors import EXIT_FINDINGS, EXIT_OK, RemoteError
from connector.plan import trail
from connector.providers import registry
from connector.providers.base import OnDemandOutcome


def _result_json(r: OnDemandOutcome, v: Verification) -> dict[str, Any]:
    """One subject in the JSON answer (docs/schemas/provision.v1.json): Entra's own answer for it (action,
    status, error code, reason: its provisionOnDemand result), the read-back in Astro (`verification`), and the
    outcome of the two: `provisioned` only when Astro was read back and holds what the mapping gives."""
    return {"subject": r.subject, "object_type": r.object_type, "action": r.action or None, "status": r.status,
            "error_code": getattr(r, "error_code", "") or None, "reason": r.reason or None,
            "outcome": OUTCOME[v.verdict], "message": r.describe(), "verification": v.to_json()}


# A subject's verdict: as the JSON's `outcome` (its v1 values, not_verified added), its colour, in the audit trail.
OUTCOME = {readback.VERIFIED: "provisioned", readback.FAILED: "failed", readback.NOT_VERIFIED: "not_verified",
           readback.NOT_PROVISIONED: "not_provisioned"}
STYLE = {readback.VERIFIED: "green", readback.FAILED: "red", readback.NOT_VERIFIED: "yellow",
         readback.NOT_PROVISIONED: "yellow"}
TRAIL = {readback.VERIFIED: "verified", readback.FAILED: "failed", readback.NOT_VERIFIED: "not verified",
         readback.NOT_PROVISIONED: "not provisioned"}


def _again(args: argparse.Namespace) -> str:
    subject = f"--user {shlex.quote(args.user)}" if args.user is not None else f"--group {shlex.quote(args.group)}"
    return f"astro-scim provision {subject}"


def _line(r: OnDemandOutcome, v: Verification) -> str:
    """Entra's answer, then the read-back: 'User Ada: Create, Success; verified: in Astro as ada@..., active'."""
    if v.status == readback.NOT_CHECKED:
        return r.describe()
    if v.verdict == readback.VERIFIED:
        return f"{r.describe()}; verified: {v.detail}"
    return f"{r.describe()}; {'FAILED: ' if v.verdict == readback.FAILED else ''}{v.detail}"


@trail.recorded("provision")
def run(args: argparse.Namespace) -> int:
    # --format json: one document (docs/schemas/provision.v1.json), printed however the command ends
    subject = {"type": "user" if args.user is not None else "group",
               "name": args.user if args.user is not None else args.group}
    with output.json_document("provision", "provision", args.format == "json", idp=args.idp, subject=subject,
                              results=[], summary={"results": 0, "provisioned": 0, "not_provisioned": 0,
                                                   "failed": 0, "not_verified": 0}) as doc:
        return _run(args, doc)


def _run(args: argparse.Namespace, doc: output.Document) -> int:
    registry.check_provision_idp(args.idp)
    cfg = load_config_arg(args.config)
    trail.bind(cfg)
    astro = cfg.astro_for("azure")  # where the read-back goes: a config error stops here, before any change
    astro.token.reveal()  # resolved now too (env var, file): a missing token must not surface after Entra acted
    provider = registry.provision_on_demand(cfg, args.idp)
    try:
        subject = f"user {args.user}" if args.user is not None else f"group {args.group}"
        output.say(f"azure: provisioning {subject} on demand", style="bold")
        with output.progress().stage(f"provision {subject}", unit="calls") as stage:
            results = provider.provision_on_demand(users=[args.user] if args.user is not None else None,
                                                    groups=[args.group] if args.group is not None else None,
                                                    progress=stage.update)
    finally:
        provider.close()
    # No verdict without evidence: what Entra reports done is read back in Astro.
    if any(r.ok for r in results):
        output.say("astro: reading back what Entra provisioned")
    checks = readback.verify(astro, results, say=output.say)
    doc["results"] = [_result_json(r, v) for r, v in zip(results, checks, strict=True)]
    counts = {k: sum(v.verdict == k for v in checks) for k in TRAIL}
    for r, v in zip(results, checks, strict=True):
        output.say("  " + _line(r, v), style=STYLE[v.verdict])
        if v.verdict != readback.VERIFIED and v.hint and v.status != readback.NOT_CHECKED and v.error is None:
            output.say(f"      hint: {v.hint}")  # an unreadable Astro's hint ends the run, once (below)
        trail.record("azure", {"action": "provision_on_demand", "resource": r.object_type, "key": r.subject,
                               "detail": r.action, "outcome": TRAIL[v.verdict],
                               "message": f"{r.describe()}; {v.detail}"})
    verified = counts[readback.VERIFIED]
    doc["summary"] = {"results": len(results), "provisioned": verified, "not_provisioned": len(results) - verified,
                      "failed": counts[readback.FAILED], "not_verified": counts[readback.NOT_VERIFIED]}
    parts = [f"{n} {TRAIL[k]}" for k, n in counts.items() if n]
    clean = verified == len(results)
    output.say(f"{len(results)} result(s): " + ", ".join(parts), style="bold green" if clean else "bold red")
    unsent = [r for r in results if r.request_error]
    if unsent:
        # A call failed after retries, the others went through (shown and read back above): a remote error.
        done = f"; {verified} of {len(results)} result(s) verified in Astro" if len(results) > len(unsent) else ""
        raise RemoteError(f"azure: {len(unsent)} provisionOnDemand call(s) failed{done}: {unsent[0].request_error}",
                          hint=f"run the same command again for what is left: {_again(args)} (Entra answers "
                               "RedundantExport for what is already in Astro)")
    unread = [v for v in checks if v.error is not None]
    if unread:
        # Entra's word alone is no verdict: Astro could not be read, so the run ends as a remote error (exit 3).
        raise RemoteError(f"azure: {len(unread)} subject(s) Entra reports provisioned could not be verified: "
                          f"Astro could not be read: {unread[0].error}", hint=unread[0].hint)
    return doc.done(EXIT_OK if clean else EXIT_FINDINGS)
