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


# The top-level modules of the optional extras (pyproject.toml), and the package each is installed as.
EXTRAS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("torch", "transformers", "trl", "peft", "datasets", "accelerate"), ("", "train")),
    "math_verify": ("math-verify", "eval"),
    "ray": ("", "ray"),
    "starlette": ("", "review"),
    "uvicorn": ("", "review"),
    "multipart": ("python-multipart", "review"),
}


def extra_missing(exc: BaseException) -> RollforgeError | None:
    """The install hint for an error caused, anywhere down its chain, by a missing module of an optional
    extra (a library may wrap the ImportError: transformers raises RuntimeError); None for anything else."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ImportError) and cause.name:
            root = cause.name.split(".")[0]
            if root in EXTRAS:
                package, extra = EXTRAS[root]
                return missing_extra(package or root, extra)
        cause = cause.__cause__ or cause.__context__
    return None


def missing_extra(package: str, extra: str) -> RollforgeError:
    """Error for an optional dependency that is not installed, naming the exact install line."""
    return RollforgeError(
        f"this command needs the '{package}' package",
        hint=f"install it with: pip install 'rollforge[{extra}]'",
    )
