"""Saved plans: `astro-scim plan -out FILE` writes the reviewed plan, `astro-scim apply FILE` applies exactly it.

The file (JSON, `format` + `version`) holds what was reviewed and what it was made from:

    tool_version, created_at (UTC)       who made it, when
    config: {file, fingerprint, inputs}  the project file and mapping files, a digest each (config/fingerprint.py)
    options: {idp, prune, pause}         the flags that shape the plan; apply FILE takes them from here
    plans: [{name, provider, existing, state, changes}]
                                         per provider: `state` is a digest per resource kind of what populate
                                         read; `changes` carry their `data` (the ids apply needs)
    checksum                             SHA-256 of the rest (canonical JSON): a damaged or edited file is refused

`apply FILE` re-reads every provider before it writes anything and refuses (StalePlan, exit 2) when a config
input or a resource kind digests differently, naming them; it then checks that the fresh read yields the very
changes in the file, prose aside (the same state and config must), which also catches a file edited and
re-checksummed.
No secret is ever written: the text is checked against every secret value the run has read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector import __version__
from connector.config.fingerprint import combined, config_inputs
from connector.config.load import ProjectConfig
from connector.errors import ConnectorError, StalePlan, UsageError
from connector.plan.model import Change, Plan
from connector.support import clock
from connector.support.redact import redact

FORMAT = "astro-scim-plan"
VERSION = 1
_REPLAN = "review a new plan: astro-scim plan -out FILE, then astro-scim apply FILE"


@dataclass
class SavedPlan:
    options: dict[str, Any]  # idp, prune, pause
    plans: list[tuple[str, Plan]]  # (provider name, its plan), in apply order
    config_file: str = ""
    config_inputs: dict[str, str] = field(default_factory=dict)
    tool_version: str = __version__
    created_at: str = ""

    def by_name(self) -> dict[str, Plan]:
        return dict(self.plans)


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _checksum(doc: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(_canonical({k: v for k, v in doc.items() if k != "checksum"})).hexdigest()


def _plan_record(name: str, plan: Plan) -> dict[str, Any]:
    return {"name": name, "provider": plan.provider, "existing": plan.existing, "state": plan.state,
            "changes": [c.to_record() for c in plan.changes]}


def change_records(plan: Plan) -> list[dict[str, Any]]:
    """What the changes do, JSON round-tripped (tuples become lists), for comparing a saved plan with a fresh one.

    The prose is left out (`detail`, the runbook `steps`): it names the config file by the path it was given,
    which differs when CI plans in one checkout and applies in another, and it is never what apply acts on.
    """
    records = []
    for c in plan.changes:
        record = c.to_record()
        record.pop("detail", None)
        record.pop("steps", None)
        record["data"] = {k: v for k, v in c.data.items() if k != "steps"}
        records.append(record)
    loaded: list[dict[str, Any]] = json.loads(json.dumps(records))
    return loaded


def to_document(cfg: ProjectConfig, options: dict[str, Any], plans: list[tuple[str, Plan]]) -> dict[str, Any]:
    inputs = config_inputs(cfg)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "tool_version": __version__,
        "created_at": datetime.fromtimestamp(clock.current().time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": {"file": cfg.file, "fingerprint": combined(inputs), "inputs": inputs},
        "idps": [name for name, _ in plans],
        "options": options,
        "plans": [_plan_record(name, plan) for name, plan in plans],
    }
    doc["checksum"] = _checksum(doc)
    return doc


def check_writable(path: str | Path) -> Path:
    """The folder the plan goes to; checked before the IdPs are read, rather than failing to save what they said."""
    path = Path(path)
    folder = path.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"cannot write the plan to {path}: its folder does not exist",
                         hint=f"create it first (mkdir -p {path.parent})")
    if path.is_dir():  # else found only once every IdP was read
        raise UsageError(f"cannot write the plan to {path}: it is a folder", hint=f"name a file: -out {path / 'plan.json'}")
    return folder


def write(path: str | Path, cfg: ProjectConfig, options: dict[str, Any], plans: list[tuple[str, Plan]]) -> Path:
    """Write the plan file whole or not at all (a temporary file renamed over the target)."""
    path = Path(path)
    try:
        text = json.dumps(to_document(cfg, options, plans), indent=2, ensure_ascii=False) + "\n"
    except TypeError as exc:  # a provider put something in Change.data that JSON cannot hold: our bug
        raise ConnectorError(f"cannot save the plan: {exc}") from exc
    if redact(text) != text:
        # Never expected (changes hold references and ids, not values), and never silently masked either: a
        # masked value applied later would be wrong. Refuse, without saying which value.
        raise ConnectorError("cannot save the plan: it would contain a secret value",
                             hint="please report it; 'astro-scim apply' without a plan file re-plans instead")
    folder = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is for secrets; a plan holds none and is meant to be reviewed
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write the plan to {path}: {exc.strerror or exc}") from exc
    return path


def _unreadable(path: Path, why: str, hint: str = _REPLAN) -> UsageError:
    return UsageError(f"{path}: {why}", hint=hint)


def read(path: str | Path) -> SavedPlan:
    """Load and check a plan file; every way it can be wrong is a UsageError (exit 2) naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as cause:
        raise UsageError(f"plan file {path} not found",
                         hint="write one with 'astro-scim plan -out FILE' (or run apply without a file to re-plan)"
                         ) from cause
    except OSError as exc:
        raise UsageError(f"cannot read plan file {path}: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _unreadable(path, f"not a plan file: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise _unreadable(path, f"not a plan file: invalid JSON at line {exc.lineno}, column {exc.colno} "
                                "(truncated or edited?)") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _unreadable(path, f"not an astro-scim plan file (no \"format\": \"{FORMAT}\")",
                          hint="pass the file written by 'astro-scim plan -out FILE'")
    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise _unreadable(path, f"plan file format version {version!r}; this astro-scim reads version {VERSION}",
                          hint="apply it with the astro-scim that wrote it, or re-plan with this one")
    if doc.get("checksum") != _checksum(doc):
        raise _unreadable(path, "the plan file was changed after 'plan -out' wrote it (checksum mismatch)")
    try:
        plans = [(str(p["name"]), Plan(str(p["provider"]), [Change.from_record(c) for c in p["changes"]],
                                       existing=int(p["existing"]),
                                       state={str(k): str(v) for k, v in dict(p["state"]).items()}))
                 for p in doc["plans"]]
        config = doc["config"]
        options = dict(doc["options"])
        return SavedPlan(options=options, plans=plans, config_file=str(config["file"]),
                         config_inputs={str(k): str(v) for k, v in dict(config["inputs"]).items()},
                         tool_version=str(doc["tool_version"]), created_at=str(doc["created_at"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _unreadable(path, f"malformed plan file ({type(exc).__name__}: {exc})") from exc


def check_made_here(saved: SavedPlan, cfg: ProjectConfig) -> None:
    """Refuse a plan made by another version of the tool, or from a config that has changed since."""
    if saved.tool_version != __version__:
        raise StalePlan(f"the plan was made by astro-scim {saved.tool_version}; this is {__version__}",
                        hint=_REPLAN + " with this version")
    now = config_inputs(cfg)
    moved = sorted(k for k in set(now) | set(saved.config_inputs) if now.get(k) != saved.config_inputs.get(k))
    if moved and Path(saved.config_file).resolve() != Path(cfg.file).resolve():
        # Only said when the contents differ too: CI may plan and apply the same config from different folders.
        raise StalePlan(f"the plan was made from the config {saved.config_file}, not {cfg.file} "
                        f"(they differ: {', '.join(moved)})",
                        hint=f"pass --config {saved.config_file}, or re-plan with this one")
    if moved:
        raise StalePlan(f"the config changed since the plan was made ({saved.created_at}): "
                        + ", ".join(moved), hint=_REPLAN)


def moved_state(saved: Plan, fresh: Plan) -> list[str]:
    """The resource kinds whose fresh read digests differently from the one the plan was made from."""
    kinds = set(saved.state) | set(fresh.state)
    return sorted(k for k in kinds if saved.state.get(k) != fresh.state.get(k))
