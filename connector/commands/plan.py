"""`astro-scim plan`: read the IdP, print what apply would change, write nothing to it (`-out FILE` saves the plan)."""

from __future__ import annotations

import argparse

from connector import output
from connector.config.arg import load_config_arg
from connector.config.load import ProjectConfig
from connector.errors import EXIT_FINDINGS, EXIT_OK
from connector.plan.model import Plan
from connector.plan.view import show_plans
from connector.providers import registry


def run(args: argparse.Namespace) -> int:
    # --format json: one document (docs/schemas/plan.v1.json), printed however the plan ends
    with output.json_document("plan", "plan", args.format == "json", plans=[], changes=0, saved_to=None) as doc:
        return _run(args, doc)


def _run(args: argparse.Namespace, doc: output.Document) -> int:
    cfg = load_config_arg(args.config)
    if args.out:
        from connector.plan import saved

        saved.check_writable(args.out)
    named: list[tuple[str, Plan]] = []
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        try:
            named.append((provider.name, provider.plan()))
        finally:
            provider.close()
        doc["plans"].append(named[-1][1].to_json())
        doc["changes"] += len(named[-1][1].changes)
    plans = [plan for _, plan in named]
    if args.format != "json":
        show_plans(plans, args.format)
    for entry, plan in zip(doc["plans"], plans, strict=True):  # what apply would refuse without --force
        if (problem := plan.apply_limit_problem(cfg.safety.max_delete_count)) is not None:
            output.warn(f"{problem}: 'astro-scim apply' refuses it without --force")
            entry["refused_without_force"] = problem
    if args.out:
        doc["saved_to"] = _save(args, cfg, named)
    # ok: the plan was made (changes or not); --exit-code's 1 for "has changes" is no failure
    return doc.done(EXIT_FINDINGS if args.exit_code and any(plans) else EXIT_OK, ok=True)


def _save(args: argparse.Namespace, cfg: ProjectConfig, named: list[tuple[str, Plan]]) -> str:
    from connector.plan import saved

    path = saved.write(args.out, cfg, {"idp": args.idp, "prune": args.prune, "pause": args.pause}, named)
    output.say(f"saved the plan to {path}; apply exactly it with: astro-scim apply {path}")  # stderr under json
    return str(path)
