"""`astro-scim drift`: audit each IdP against its Astro organization; `--fix` plans remedies, `--yes` acts.

Exit 0 when there is no drift (left), 1 when there is, 2 for a refused plan (UnsafePlan), 3 for remote errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from connector import output
from connector.astro.reader import read_astro
from connector.audit.reconcile import AuditResult, run_audit
from connector.audit.remedies import Outcome, check_limits, execute, plan_remedies
from connector.audit.report import progress_bar, render
from connector.config.arg import load_config_arg
from connector.config.load import AstroConfig, ProjectConfig
from connector.errors import EXIT_FINDINGS, EXIT_OK, UnsafePlan, UsageError
from connector.plan.model import Action, Plan
from connector.plan.view import show_plans
from connector.providers import registry

# After remedies, IdPs provision asynchronously (Okta's engine, Entra's cycle): re-audit until what was fixed
# stays fixed, or this long has passed.
SETTLE_SECONDS = 20.0


def audit_once(provider: Any, astro: AstroConfig, *, show_progress: bool = False) -> AuditResult:
    """Read the IdP and Astro side by side (independent reads, two threads), then reconcile."""
    started = time.perf_counter()
    with progress_bar(f"reading {provider.name} and Astro", show_progress) as progress, \
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="drift-read") as pool:
        idp_future = pool.submit(provider.read_view)
        astro_future = pool.submit(read_astro, astro, progress=progress)
        astro_view = astro_future.result()
        idp_view = idp_future.result()
    # An IdP may know, as inactive, users its view of the app leaves out (Okta unassigns whom it deactivates).
    inactive_users = getattr(provider, "inactive_users", None)
    if inactive_users is not None:
        known = {u.user_name.casefold() for u in idp_view.users}
        unknown = [u.user_name for u in astro_view.users if u.active and u.user_name.casefold() not in known]
        if unknown:
            idp_view.users.extend(inactive_users(unknown))
    return run_audit(idp_view, astro_view, time.perf_counter() - started)


def settle(provider: Any, astro: AstroConfig, targeted: set[str], *, timeout: float = SETTLE_SECONDS
           ) -> AuditResult:
    """Re-audit until none of the targeted findings is left (or the timeout): what is left is then real."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    while True:
        result = audit_once(provider, astro)
        left = {f.id for f in result.findings} & targeted
        if not left or time.monotonic() + delay > deadline:
            return result
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _narrate(machine_on_stdout: bool) -> Any:
    # A JSON/JUnit/... document on stdout must stay parseable: narration then goes to stderr.
    return output.warn if machine_on_stdout else output.say


def _show_plan(plan: Plan, machine_on_stdout: bool) -> None:
    if machine_on_stdout:
        for change in plan.changes:
            output.warn("  " + change.describe())
    else:
        show_plans([plan])


def _outcome_line(o: Outcome) -> str:
    return f"  {'done' if o.ok else 'FAILED'} {o.change.describe()}: {o.message}"


def _fix(cfg: ProjectConfig, provider: Any, astro: AstroConfig, result: AuditResult, args: argparse.Namespace,
         machine_on_stdout: bool) -> AuditResult:
    say = _narrate(machine_on_stdout)
    plan = plan_remedies(result.idp, result.findings, delete_orphans=args.delete_orphans,
                         group_sizes=result.group_sizes)
    if not plan:
        return result
    _show_plan(plan, machine_on_stdout)
    actionable = [c for c in plan.changes if c.action is not Action.MANUAL]
    if not args.yes:
        say(f"{result.idp}: {len(actionable)} remedy action(s) planned; nothing done (add --yes to act)")
        try:
            check_limits(plan, astro_users=result.astro_users, safety=cfg.safety, force=args.force)
        except UnsafePlan as exc:  # the preview only warns; acting would refuse
            output.warn(f"note: with --yes this would be refused: {exc}")
        return result
    check_limits(plan, astro_users=result.astro_users, safety=cfg.safety, force=args.force)
    if not actionable:
        return result
    outcomes = execute(plan, provider=provider, astro=astro, report=lambda o: say(_outcome_line(o)))
    targeted = {fid for o in outcomes if o.ok for fid in o.change.data.get("findings", [])}
    after = settle(provider, astro, targeted)
    left = {f.id for f in after.findings}
    after.fixed = [f for f in result.findings if f.id not in left]
    after.remedies = [{**o.change.to_json(), "ok": o.ok, "message": o.message} for o in outcomes]
    say(f"{result.idp}: after the fix, {len(after.findings)} finding(s) left "
        f"({len(after.fixed)} of {len(result.findings)} fixed)")
    return after


def run(args: argparse.Namespace) -> int:
    if not args.fix and (args.yes or args.delete_orphans):
        raise UsageError("--yes and --delete-orphans only apply with --fix", hint="astro-scim drift --fix --yes")
    if args.output and not Path(args.output).resolve().parent.is_dir():
        # checked before the audit, which can take a while, rather than failing to write its result
        raise UsageError(f"cannot write the report to {args.output}: its folder does not exist",
                         hint=f"create it first (mkdir -p {Path(args.output).parent})")
    cfg = load_config_arg(args.config)
    fmt: str = args.format
    machine_on_stdout = fmt != "text" and not args.output
    show_progress = sys.stderr.isatty()
    results: list[AuditResult] = []
    # Text reports already printed before the --fix plan, with their finding count then. When nothing was done
    # (no --yes, or only manual remedies: _fix returns the same result) and nothing was added since, the final
    # report would repeat them word for word. A fix that acted returns a new result, which is printed.
    shown: list[tuple[AuditResult, int]] = []
    for idp in registry.selected_idps(cfg, args.idp):
        astro = cfg.astro_for(idp)
        (provider,) = registry.build(cfg, idp)
        try:
            result = audit_once(provider, astro, show_progress=show_progress)
            if args.fix and result.findings:
                if fmt == "text" and not args.output:
                    output.raw(render([result], "text", color=sys.stdout.isatty()))
                    shown.append((result, len(result.findings)))
                result = _fix(cfg, provider, astro, result, args, machine_on_stdout)
            results.append(result)
        finally:
            provider.close()
    if cfg.access:
        # Team access templates (connector/access.py) add team_roles_mismatch findings and re-apply role sets.
        from connector.access.model import audit_team_roles

        audit_team_roles(cfg, results, fix=args.fix, yes=args.yes, say=_narrate(machine_on_stdout))
    unseen = [r for r in results if not any(r is seen and len(r.findings) == n for seen, n in shown)]
    if unseen or not results:
        _emit(unseen, fmt, args.output)  # `shown` only ever holds text on stdout: other formats get everything
    return EXIT_OK if all(r.clean for r in results) else EXIT_FINDINGS


def _emit(results: list[AuditResult], fmt: str, path: str | None) -> None:
    from connector.support.redact import redact

    if path:
        text = render(results, fmt)
        try:
            Path(path).write_text(redact(text), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
        found = sum(len(r.findings) for r in results)
        output.say(f"wrote the {fmt} report to {path}: " + (f"{found} finding(s)" if found else "no drift"))
        return
    output.raw(render(results, fmt, color=fmt == "text" and sys.stdout.isatty()))
