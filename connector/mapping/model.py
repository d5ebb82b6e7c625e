"""The one mapping shape both IdPs share (see mappings/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from connector.errors import Location


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


class ApplyOn(str, Enum):
    """When an attribute flows. Okta: PUSH / DONT_PUSH; Entra: flowType Always / ObjectAddOnly."""

    CREATE_AND_UPDATE = "create_and_update"
    CREATE_ONLY = "create_only"


@dataclass(frozen=True)
class Finding:
    """One validation result, always with a place in a file and, where we can, a hint for the fix."""

    severity: Severity
    location: Location
    code: str
    message: str
    hint: str | None = None


@dataclass
class AttributeMapping:
    target: str  # SCIM attribute path, e.g. name.givenName or emails[type eq "work"].value
    source: str | None  # IdP expression; None only when from_sign_on is set (Okta userName)
    apply_on: ApplyOn = ApplyOn.CREATE_AND_UPDATE
    matching: int = 0  # Entra matching precedence; 0 = not a matching attribute
    default: str | None = None
    from_sign_on: bool = False  # Okta: the value is the app username configured in sign-on settings
    location: Location = field(default_factory=lambda: Location("<memory>"))


@dataclass
class MappingFile:
    idp: str  # "okta" | "azure"
    file: str
    users: list[AttributeMapping] = field(default_factory=list)
    groups: list[AttributeMapping] = field(default_factory=list)
    location: Location = field(default_factory=lambda: Location("<memory>"))

    def user_target(self, target: str) -> AttributeMapping | None:
        for m in self.users:
            if m.target.lower() == target.lower():
                return m
        return None
