"""`Secret`: a reference to a token (`env:NAME`, `file:PATH`) that is read only when needed and redacts itself."""

from __future__ import annotations

import os
import re
from pathlib import Path

from connector.errors import ConfigError, Location
from connector.support import redact

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE_HINT = "write env:NAME (an environment variable) or file:PATH (a file next to the config)"


def _reference_error(ref: str, location: Location | None) -> ConfigError:
    """Why a config value is not a secret reference, with the reference the user probably meant."""
    stripped = ref.strip()
    prefix, sep, rest = stripped.partition(":")
    if sep and prefix.strip().lower() in ("env", "file") and prefix.strip() not in ("env", "file"):
        kind = prefix.strip().lower()
        if kind == "env" and not _ENV_NAME.fullmatch(rest.strip()):
            redact.register(rest.strip())  # not a variable name: perhaps the token; not echoed
            return ConfigError(f"unknown secret reference prefix '{prefix}:'", location=location,
                               hint="prefixes are lower case: env:NAME, NAME the variable holding the token")
        return ConfigError(f"unknown secret reference prefix '{prefix}:'", location=location,
                           hint=f"prefixes are lower case: write {kind}:{rest.strip()}")
    if stripped.startswith("$"):
        name = stripped.lstrip("$").strip("{}")
        return ConfigError("a secret reference is not expanded like a shell variable", location=location,
                           hint=f"write env:{name}" if _ENV_NAME.fullmatch(name) else _REFERENCE_HINT)
    redact.register(ref)  # most likely the token itself: never echo it, wherever it shows up later
    return ConfigError(
        "a secret must be a reference, not the secret itself (the value is not shown)", location=location,
        hint=f"{_REFERENCE_HINT}; a literal token in a file ends up in repositories and logs",
    )


class Secret:
    """A credential. `str()` and `repr()` never show the value; `reveal()` does, and registers it for redaction.

    From a config file only references are accepted (`env:NAME`, `file:PATH`); `from_value` wraps a value that came
    from somewhere safe (an environment variable the user named, a sandbox).
    """

    __slots__ = ("_literal", "_read", "location", "multiline", "ref")

    def __init__(self, ref: str, *, location: Location | None = None, base_dir: Path | None = None,
                 multiline: bool = False) -> None:
        self.location = location
        # Tokens go into HTTP headers, where a line break or another control character is refused (aiohttp raises
        # ValueError): checked when read. A PEM private key is the one secret made of lines.
        self.multiline = multiline
        self._literal: str | None = None
        # A file's value as last read, with the file's (mtime_ns, size, inode) then: a client reveals the token
        # for every request (Graph's reader: 30 of an Entra apply's 41 reveals, counted), and one stat replaces an
        # open, read and close. A file replaced or rewritten (a rotated token) is read again.
        self._read: tuple[tuple[int, int, int], str] | None = None
        kind, sep, rest = ref.partition(":")
        rest = rest.strip()  # `env: NAME` (a space after the colon, quoted in YAML) means env:NAME
        if sep and kind == "env" and _ENV_NAME.fullmatch(rest):
            self.ref = f"env:{rest}"
        elif sep and kind == "env":
            redact.register(rest)  # often the token itself, pasted after env: (never echoed, wherever it shows up)
            raise ConfigError("what follows env: is not an environment variable name (not shown: it may be the token "
                              "itself)", location=location,
                              hint="env:NAME takes letters, digits and underscores, e.g. env:ASTRO_API_TOKEN; the "
                                   "token goes in that variable")
        elif sep and kind == "file" and rest:
            path = Path(rest).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            self.ref = f"file:{path}"
        else:
            raise _reference_error(ref, location)

    @classmethod
    def from_value(cls, value: str) -> Secret:
        """Wrap a value that came from somewhere safe (an env var the user named, a sandbox)."""
        s = cls.__new__(cls)
        s.location, s.ref, s._literal, s.multiline, s._read = None, "literal", value, True, None
        redact.register(value)
        return s

    def reveal(self) -> str:
        if self._literal is not None:
            return self._literal
        stamp: tuple[int, int, int] | None = None
        if self.ref.startswith("env:"):
            name = self.ref[4:]
            # Values exported from files (`export T=$(cat f)`) or CI settings often end in a newline.
            value = os.environ.get(name, "").strip()
            if not value:
                raise ConfigError(
                    f"environment variable {name} is not set" if name not in os.environ
                    else f"environment variable {name} is empty",
                    location=self.location,
                    hint=f"export {name}=... (the secret is read from it)",
                )
        else:
            path = Path(self.ref[5:])
            try:
                st = path.stat()
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if stamp is not None and self._read is not None and self._read[0] == stamp:
                return self._read[1]
            try:
                value = path.read_bytes().decode("utf-8-sig").strip()
            except UnicodeDecodeError as exc:
                raise ConfigError(f"secret file {path} is not UTF-8 text (byte {exc.start})", location=self.location,
                                  hint="the file must hold the token as plain text") from exc
            except OSError as exc:
                raise ConfigError(f"cannot read secret file {path}: {exc.strerror}", location=self.location,
                                  hint="file:PATH is read from the config file's folder when PATH is relative; "
                                       "put the token there or fix the path") from exc
            if not value:
                raise ConfigError(f"secret file {path} is empty", location=self.location,
                                  hint="write the token into it, alone on one line")
        redact.register(value)
        if not self.multiline:
            self._check_one_line(value)
        if stamp is not None:
            self._read = (stamp, value)
        return value

    def _check_one_line(self, value: str) -> None:
        """A token is one line of printable text; say where it is not (never what it holds)."""
        # Printable ASCII only: tokens are, and an HTTP header refuses the rest (httpx raises on a non-ASCII one, a
        # pasted no-break or zero-width space) or sends it for an unexplained 401.
        bad = next((i for i, ch in enumerate(value) if not (ch.isascii() and ch.isprintable())), None)
        if bad is None:
            return
        where = f"environment variable {self.ref[4:]}" if self.ref.startswith("env:") else f"secret file {self.ref[5:]}"
        if value[bad] in "\r\n":
            line = value.count("\n", 0, bad) + 1
            raise ConfigError(f"{where} holds more than one line (a line break after line {line})",
                              location=self.location,
                              hint="a token is one line: keep the token alone in it (no comment or second value)")
        what = "a control character" if ord(value[bad]) < 0x20 or ord(value[bad]) == 0x7F else \
            "a character that is not printable ASCII"
        raise ConfigError(f"{where} holds {what} (U+{ord(value[bad]):04X}, character {bad + 1})",
                          location=self.location, hint="a token is printable ASCII: copy it again, as plain text")

    def __repr__(self) -> str:
        return f"Secret({self.ref!r})"

    def __str__(self) -> str:
        return self.ref if self.ref != "literal" else redact.MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.ref == other.ref and self._literal == other._literal

    def __hash__(self) -> int:
        return hash(self.ref)
