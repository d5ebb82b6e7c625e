"""`Secret`: a reference to a token (`env:NAME`, `file:PATH`) that is read only when needed and redacts itself."""

from __future__ import annotations

import os
from pathlib import Path

from connector.errors import ConfigError, Location
from connector.support import redact


class Secret:
    """A credential. `str()` and `repr()` never show the value; `reveal()` does, and registers it for redaction."""

    __slots__ = ("_literal", "location", "ref")

    def __init__(self, ref: str, *, location: Location | None = None, base_dir: Path | None = None) -> None:
        self.location = location
        self._literal: str | None = None
        if ref.startswith("env:"):
            self.ref = ref
        elif ref.startswith("file:"):
            path = Path(ref[5:]).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            self.ref = f"file:{path}"
        else:
            # A literal value in a file works, but is discouraged; keep it out of every output.
            self.ref = "literal"
            self._literal = ref
            redact.register(ref)

    @classmethod
    def from_value(cls, value: str) -> Secret:
        """Wrap a value that came from somewhere safe (an env var the user named, a sandbox)."""
        s = cls(value)
        return s

    def reveal(self) -> str:
        if self._literal is not None:
            return self._literal
        if self.ref.startswith("env:"):
            name = self.ref[4:]
            value = os.environ.get(name)
            if not value:
                raise ConfigError(
                    f"environment variable {name} is not set",
                    location=self.location,
                    hint=f"export {name}=... (the secret is read from it)",
                )
        else:
            path = Path(self.ref[5:])
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read secret file {path}: {exc.strerror}", location=self.location) from None
            if not value:
                raise ConfigError(f"secret file {path} is empty", location=self.location)
        redact.register(value)
        return value

    def __repr__(self) -> str:
        return f"Secret({self.ref!r})"

    def __str__(self) -> str:
        return self.ref if self.ref != "literal" else redact.MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.ref == other.ref and self._literal == other._literal

    def __hash__(self) -> int:
        return hash(self.ref)
