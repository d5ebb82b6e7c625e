"""Plans as people read them (scripts: `plan --format json`, connector/commands/plan.py)."""

from __future__ import annotations

from connector import output
from connector.plan.model import Action, Plan

_STYLE = {
    Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red", Action.MANUAL: "magenta",
    Action.RUN: "cyan",
}


def show_plans(plans: list[Plan], fmt: str = "text") -> None:
    """The plans as text (to stderr under --format json). The JSON plan is `plan`'s document (plan.v1.json)."""
    for plan in plans:
        if not plan:
            output.say(f"{plan.provider}: no changes", style="green")
            continue
        counts = ", ".join(f"{n} to {a}" for a, n in plan.counts().items())
        output.say(f"{plan.provider}: {len(plan.changes)} change(s) ({counts})", style="bold")
        for change in plan.changes:
            output.say("  " + change.describe(), style=_STYLE[change.action])
            if change.action is Action.MANUAL and change.data.get("steps"):
                for line in str(change.data["steps"]).splitlines():
                    output.say("      " + line)
