"""Optional extras: which one a command needs, and a clear error (exit 2, the pip line) when it is not installed.

The core install runs `validate`, `render`, `--help` and `plan/apply --idp astro`. The IdP SDKs come with
`[okta]` and `[entra]` (`[all]` is both), the emulators with `[sandbox]`. Two places use this module, both in
connector/cli.py: before a command runs, `check()` looks for what its arguments alone say it needs (so that
`plan --idp okta` names the pip line before it reads any config or credential); after, `from_import_error()`
turns a ModuleNotFoundError of a package an extra provides (an IdP chosen by the config, a dependency of the
SDK missing from a broken install) into the same error instead of a crash report.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from connector.errors import UsageError

DISTRIBUTION = "astro-scim-connector"

# What each extra brings, by the import names the connector (or the SDKs it calls) needs from it.
PROVIDES: dict[str, tuple[str, ...]] = {
    "okta": ("okta", "aiohttp"),
    "entra": ("msgraph", "msgraph_core", "azure.identity", "aiohttp"),
    "sandbox": ("scim2_server", "werkzeug", "jwt"),
}
WHAT = {"okta": "the Okta SDK", "entra": "the Microsoft Graph SDK", "sandbox": "the sandbox's server stack"}


def pip_line(extras: str) -> str:
    """The install line for `extras` in the environment this runs from: pipx's own venv is out of reach of a plain
    `pip install` (it installed into another environment, and the command kept failing)."""
    if "pipx" in Path(sys.prefix).parts:
        return f"pipx install --force '{DISTRIBUTION}[{extras}]'"
    return f"pip install '{DISTRIBUTION}[{extras}]'"


def _extras_of_root(root: str) -> tuple[str, ...]:
    """The extras that provide the top-level import name `root` (none: not ours to explain)."""
    if root.startswith("kiota_"):  # the Graph SDK's runtime packages
        return ("entra",)
    return tuple(extra for extra, names in PROVIDES.items() if any(n.split(".")[0] == root for n in names))


def required(command: str, idp: str | None) -> tuple[str, ...]:
    """The extras a command needs whatever the config says, from its name and --idp alone."""
    if command == "demo":
        return ("okta", "entra", "sandbox")
    if command == "sandbox":
        return ("sandbox",)
    if command == "push-groups":
        return ("okta",)
    if command == "provision":
        return ("entra",)
    if command in ("plan", "apply", "test-connection", "drift", "status", "init"):
        # --idp all (the default) and astro: which IdPs run depends on the config, found out when they load
        return {"okta": ("okta",), "azure": ("entra",)}.get(idp or "", ())
    return ()


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None  # finds, does not import (start-up stays fast)
    except (ImportError, ValueError):  # a dotted name whose parent package is absent
        return False


def _spec(extras: tuple[str, ...]) -> str:
    """"okta,entra,sandbox" -> "all,sandbox": the line an admin would type."""
    if set(extras) >= {"okta", "entra"}:
        extras = ("all", *(e for e in extras if e not in ("okta", "entra")))
    return ",".join(extras)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _error(command: str, missing: tuple[str, ...], module: str, needed: tuple[str, ...]) -> UsageError:
    what = _and([WHAT[e] for e in missing])
    extras_named = _and([f"[{e}]" for e in missing]) + (" extras" if len(missing) > 1 else " extra")
    return UsageError(
        f"astro-scim {command} needs {what}: module {module!r} is not installed (it comes with the {extras_named})",
        hint=pip_line(_spec(needed)),
    )


def check(command: str, idp: str | None) -> None:
    """Raise UsageError naming the pip line when an extra this command needs for sure is not installed."""
    needed = required(command, idp)
    missing = []
    module = ""
    for extra in needed:
        absent = [name for name in PROVIDES[extra] if not _installed(name)]
        if absent:
            missing.append(extra)
            module = module or absent[0]
    if missing:
        raise _error(command, tuple(missing), module, needed)


def from_import_error(exc: ModuleNotFoundError, command: str, idp: str | None) -> UsageError | None:
    """The error to show for a module an extra provides that turned out missing while the command ran."""
    name = exc.name or ""
    extras = _extras_of_root(name.split(".")[0])
    if not extras:
        return None
    named = required(command, idp)
    if named and not set(extras) & set(named):
        # e.g. jwt for `plan --idp okta`: a dependency of the SDK, missing from a broken install of its extra
        extras = named
    elif len(extras) > 1:  # shared by both IdP extras (aiohttp): the one the command named, or whose
        # provider was importing it (`plan` with only okta configured), else both
        extras = tuple(e for e in extras if e in named) or _importing_provider(exc) or extras
    return _error(command, extras, name, tuple(dict.fromkeys((*named, *extras))))


PROVIDER_PACKAGES = {"connector.providers.okta": "okta", "connector.providers.entra": "entra"}


def _importing_provider(exc: BaseException) -> tuple[str, ...]:
    """The extra of the provider package whose code was running when the import failed (innermost first)."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    for module in reversed(frames):
        for package, extra in PROVIDER_PACKAGES.items():
            if module == package or module.startswith(package + "."):
                return (extra,)
    return ()
