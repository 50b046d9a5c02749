"""A setting a user gives, declared once: its CLI flag, its recipe key and its line in the starter recipe all
come from one :class:`Option`, so the three never disagree.

The flag is the name with dashes (``min_reward`` is ``--min-reward``), the recipe key the name itself
(unless ``key`` says otherwise), and the starter recipe shows the default, or ``example`` commented out
for an option that is off. :class:`OptionValues` holds a value for each option of a table, checked when it
is made: an unknown name, a value its option refuses, or one set without the option it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from rollforge.errors import RollforgeError

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Option(Generic[T]):
    name: str  # the attribute, and the flag's dest: --min-reward is min_reward
    type: type[T]  # bool, int, float or str
    help: str
    default: T | None = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    ge: float | None = None  # bounds a recipe enforces
    gt: float | None = None
    le: float | None = None
    example: T | None = None  # the starter recipe's value for an option that is off by default
    key: str | None = None  # the recipe key, where it is not the name
    check: Callable[[T], object] | None = None  # raises RollforgeError for a value that cannot work
    fields: Callable[[T], Iterable[str]] | None = None  # top-level fields of a line the value reads
    fields_optional: bool = False  # the fields are read where present (no rollout having them is no error)
    requires: str | None = None  # the name of another option this one needs

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def recipe_key(self) -> str:
        return self.key or self.name

    def is_set(self, value: Any) -> bool:
        """Whether ``value`` turns this option on (an option that is off holds None or False)."""
        return value is not None and value is not False


class OptionValues:
    """One value per option of ``OPTIONS`` (a subclass names its table), by name: ``values.min_reward``.
    Frozen; :meth:`replace` makes a changed copy."""

    OPTIONS: ClassVar[tuple[Option[Any], ...]] = ()

    def __init__(self, **values: Any) -> None:
        names = {o.name: o for o in self.OPTIONS}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option {unknown[0]!r}")
        filled = {o.name: o.default if values.get(o.name) is None else values[o.name] for o in self.OPTIONS}
        for option in self.OPTIONS:
            value = filled[option.name]
            if not option.is_set(value):
                continue
            if option.check is not None:
                option.check(value)
            needed = names.get(option.requires or "")
            if needed is not None and not needed.is_set(filled[needed.name]):
                raise RollforgeError(
                    f"{option.flag} needs {needed.flag}", hint=f"{needed.flag}: {needed.help}"
                )
        object.__setattr__(self, "_values", filled)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not an option (and no recursion while unpickling)
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no option {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use replace()")

    def __getstate__(self) -> dict[str, Any]:
        return self._values

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", state)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values == other._values  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._values.items())))

    def __repr__(self) -> str:
        changed = [
            f"{o.name}={self._values[o.name]!r}" for o in self.OPTIONS if self._values[o.name] != o.default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def replace(self, **changes: Any) -> Any:
        return type(self)(**{**self._values, **changes})

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._values.items()

    @classmethod
    def of(cls, values: dict[str, Any]) -> Any:
        """From CLI flags (``vars(args)``) or a recipe (``model_dump()``): each option under its name or its
        recipe key; other keys are not options and are left alone, and None means "not given"."""
        given = {}
        for option in cls.OPTIONS:
            for key in (option.name, option.recipe_key):
                if values.get(key) is not None:
                    given[option.name] = values[key]
        return cls(**given)
