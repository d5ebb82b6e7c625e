"""One exception tree for the whole tool; the CLI maps it to exit codes.

    ConnectorError                 exit 2 unless a subclass says otherwise
    ├── UsageError                 bad flags or arguments (2)
    ├── ConfigError                a config/mapping file is wrong; carries file:line:col (2)
    │   ├── ConfigErrors           every independent mistake of one project file, by line (2)
    │   ├── ExpressionError        a mapping expression does not parse or evaluate; carries its column (2)
    │   └── NotFound               an IdP object named in the config does not exist; carries candidates (2)
    ├── RemoteError                an API answered with an error, or could not be reached, after retries (3)
    │   ├── AuthError              the credential was refused (3)
    │   └── LeftHalfway            a change failed halfway and could not be undone: says what it left (3)
    ├── UnsafePlan                 a plan exceeds a safety limit and --force was not given (2)
    ├── StalePlan                  a saved plan no longer matches the org or the config it was made from (2)
    ├── ManualStepRequired         a step no API can do; the runbook text says what to click (1)
    └── VerificationFailed         the action ran but the result could not be verified (1)
        └── ProvisioningFailed     apply made its changes, but the IdP's provisioning into Astro failed (4)
            └── WrittenButFailing  apply wrote one change, then its read-back failed (4)

Foreign exceptions (SDK, httpx, pydantic) are translated at the provider boundary, never shown raw.
"""

from __future__ import annotations

from dataclasses import dataclass

# The hint for a service that did not answer at all; {key} names the config key holding its URL.
UNREACHABLE_HINT = (
    "check {key} in the config, and that this machine reaches it (network, proxy: HTTPS_PROXY, firewall, DNS; a "
    "rehearsal on 127.0.0.1: that `astro-scim sandbox` still runs)"
)

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_REMOTE = 3
EXIT_NOT_PROVISIONED = 4  # apply's changes are made, but the IdP reports errors or nothing reached Astro
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a program whose reader went away


@dataclass(frozen=True)
class Location:
    """Where in a file a problem is; lines and columns are 1-based."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column or 1}"
        return self.file


class ConnectorError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(ConnectorError):
    exit_code = EXIT_USAGE


class ConfigError(ConnectorError):
    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigErrors(ConfigError):
    """Several independent mistakes in one project file, sorted by line: a run shows them all, so a CI job needs
    one run to see N mistakes, not N. Each keeps its own file:line and hint; the message lists them."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.location.line, e.location.column) if e.location else (0, 0))
        lines = [f"{len(self.errors)} errors in {self._file()}:", *self.listed()]
        super().__init__("\n".join(lines), hint="fix them all, then run again: every error found is listed")

    @staticmethod
    def raise_all(errors: list[ConfigError]) -> None:
        """Raise the mistakes found: a lone one as itself, several at once (sorted by line); nothing when none."""
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ConfigErrors(errors)

    def listed(self, *, located: bool = True) -> list[str]:
        """A line per error with its hint; without its file:line when not `located` (a file the user never saw)."""
        return [f"  {e if located else e.message}" + (f" (hint: {e.hint})" if e.hint else "") for e in self.errors]

    def _file(self) -> str:
        return next((e.location.file for e in self.errors if e.location), "the config file")


class ExpressionError(ConfigError):
    """A mapping expression (Okta EL or Entra) that does not parse or cannot be evaluated. `column` is 1-based
    within the expression."""

    def __init__(self, message: str, column: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.column = column

    def __str__(self) -> str:
        return f"column {self.column}: {self.message}"


class Ambiguous(ConfigError):
    """A name the config gives that several objects have (Entra groups, enterprise apps, Astro Workspaces): the
    hint names their ids, which the config can give instead. Not a NotFound: nothing is missing, and "did you
    mean" would be no help."""


class NotFound(ConfigError):
    def __init__(
        self,
        message: str,
        *,
        candidates: list[str] | None = None,
        location: Location | None = None,
        hint: str | None = None,
    ) -> None:
        self.candidates = candidates or []
        if self.candidates and hint is None:
            hint = "did you mean: " + ", ".join(repr(c) for c in self.candidates) + "?"
        super().__init__(message, location=location, hint=hint)


class RemoteError(ConnectorError):
    """An HTTP API failed. Names the endpoint, the status and the service's own error code."""

    exit_code = EXIT_REMOTE

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        endpoint: str = "",
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.service = service
        self.endpoint = endpoint
        self.status = status
        self.code = code
        # Seconds the service asked us to wait before trying again (Retry-After, Okta's X-Rate-Limit-Reset),
        # parsed where the foreign error is translated; connector.support.http honours it.
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [p for p in (self.service, self.endpoint) if p]
        where = " ".join(parts)
        status = f" (HTTP {self.status}{', ' + self.code if self.code else ''})" if self.status else (
            f" ({self.code})" if self.code else ""
        )
        return f"{where}: {self.message}{status}" if where else f"{self.message}{status}"


class AuthError(RemoteError):
    pass


class LeftHalfway(RemoteError):
    """A change of several steps failed after one of them was made, and putting it back failed too. The message
    says the state it left and how to put it right (not the hint too: printed, it said the undo twice); `cause`
    is the request that failed."""

    def __init__(self, left: str, undo: str, cause: RemoteError) -> None:
        super().__init__(f"{left}: {undo}", service=cause.service, endpoint=cause.endpoint, status=cause.status,
                         code=cause.code)
        self.left, self.undo, self.cause = left, undo, cause

    def __str__(self) -> str:
        return f"{self.message} (after {self.cause})"


class UnsafePlan(ConnectorError):
    exit_code = EXIT_USAGE


class StalePlan(ConnectorError):
    """`apply FILE`: the org or the config moved since the plan was saved, or the file is not that plan."""

    exit_code = EXIT_USAGE


class ManualStepRequired(ConnectorError):
    exit_code = EXIT_FINDINGS

    def __init__(self, message: str, *, steps: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.steps = steps


class VerificationFailed(ConnectorError):
    exit_code = EXIT_FINDINGS


class ProvisioningFailed(VerificationFailed):
    """`apply` made the IdP's changes, then read the outcome: users or groups in ERROR, a connection the IdP
    cannot use, or nothing in Astro. The message names the IdP's own error; the hint the fix."""

    exit_code = EXIT_NOT_PROVISIONED


class WrittenButFailing(ProvisioningFailed):
    """A provider wrote `change`, then its read-back failed (Entra saved the credentials, then its own test of the
    saved ones failed). apply counts the change as written, says it fails, and stops."""

    def __init__(self, change: object, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.change = change
