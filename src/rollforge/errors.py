"""The one exception type users see: a message that says what went wrong and how to fix it."""

from __future__ import annotations


class RollforgeError(Exception):
    """A user-facing error. The CLI prints ``message`` (and ``hint``) on one line, never a traceback."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


def missing_extra(package: str, extra: str) -> RollforgeError:
    """Error for an optional dependency that is not installed, naming the exact install line."""
    return RollforgeError(
        f"this command needs the '{package}' package",
        hint=f"install it with: pip install 'rollforge[{extra}]'",
    )
