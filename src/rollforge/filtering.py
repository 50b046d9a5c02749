"""What a quality filter is, and how a run applies the ones it has (``rollforge.filters`` declares them).

A :class:`Filter` names the reason it drops under, its option, what it needs to judge a rollout (a
:class:`Stage`) and how it judges: ``keep(rollout, value)`` for a filter that looks at one rollout at a
time, ``drop(rows, kept, value)`` for one that needs every rollout first. ``value`` is the option's value,
or what ``prepare`` makes of it once per process (a parsed expression, a set of ids read from a file).

:class:`Filtering` is one process's set of enabled filters. ``apply`` returns the first filter a rollout
fails, in declaration order, and counts it; on a :class:`Head` it answers only where the cheap first look
is enough to be sure, and None otherwise (the line is then converted and judged again in full). The
reader uses ``judge`` (the same verdict, not counted) on first looks, and the count follows the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from rollforge.options import Option, OptionValues
from rollforge.rollout import Head, Look, Rollout

S = TypeVar("S")  # what a filter reads: a Look, a Rollout, or the run's Rows
T = TypeVar("T")  # an option's value
V = TypeVar("V")  # what ``keep``/``drop`` compare with


class Rows(Protocol):
    """What a filter over every rollout reads of the run's index: one entry per converted rollout, in input
    order (``rollforge.engine.index.RowIndex``)."""

    @property
    def prompt(self) -> Sequence[int]: ...  # the prompt id
    @property
    def success(self) -> Sequence[int]: ...  # 1 for a success under the run's definition
    @property
    def key(self) -> Sequence[int]: ...  # a seeded random number: choices that do not depend on input order
    @property
    def env(self) -> Sequence[int]: ...  # the environment, as a code (rollforge.environments.env_code)
    @property
    def env_names(self) -> dict[int, str]: ...  # code -> environment
    def column(self, reason: str) -> Sequence[Any]: ...  # what that filter's ``column`` kept per rollout


@dataclass(frozen=True, eq=False)
class Stage(Generic[S]):
    """What a filter needs to judge a rollout; ``S`` is what its function reads."""

    name: str
    per_rollout: bool  # judged where the rollout is read (else over the index, once every rollout is read)


HEAD: Stage[Look] = Stage(
    "the cheap first look: reward, fields, item counts, turns, tool use, truncation", True
)
ROLLOUT: Stage[Rollout] = Stage("the converted conversation", True)
PROMPT: Stage[Rows] = Stage("every rollout of its prompt, filtered or not", False)
KEPT: Stage[Rows] = Stage("every rollout the other filters keep, in input order", False)

Drop = Callable[[Rows, list[bool], V], Iterable[int]]  # (rows, kept so far, value) -> rows it drops
Column = Callable[[Rollout, V], Any]  # what a kept rollout leaves in the index for ``drop``


class Filter(Generic[S, V]):
    """One quality filter. ``on`` says which option values turn it on (default: any value that is set),
    ``also`` what else turns it on (an environment's own bound where the global one is unset);
    ``settings`` are the other options ``prepare`` reads; ``converted_if`` says when a value needs the
    conversion after all (a --where on prompt_id); ``typecode`` stores ``column`` compactly (an array)."""

    @overload
    def __init__(
        self: Filter[S, None],
        reason: str,
        meaning: str,
        needs: Stage[S],
        option: None,
        *,
        keep: Callable[[S, None], bool],
    ) -> None: ...
    @overload
    def __init__(
        self: Filter[S, T],
        reason: str,
        meaning: str,
        needs: Stage[S],
        option: Option[T],
        *,
        keep: Callable[[S, T], bool] | None = None,
        drop: Drop[T] | None = None,
        column: Column[T] | None = None,
        typecode: str | None = None,
        on: Callable[[T], bool] | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        reason: str,
        meaning: str,
        needs: Stage[S],
        option: Option[Any],
        *,
        prepare: Callable[[Any, OptionValues], V],
        settings: tuple[Option[Any], ...] = (),
        keep: Callable[[S, V], bool] | None = None,
        drop: Drop[V] | None = None,
        column: Column[V] | None = None,
        typecode: str | None = None,
        on: Callable[[Any], bool] | None = None,
        converted_if: Callable[[V], bool] | None = None,
        also: Callable[[Any], bool] | None = None,
    ) -> None: ...
    def __init__(
        self,
        reason: str,
        meaning: str,
        needs: Stage[Any],
        option: Option[Any] | None,
        *,
        keep: Any = None,
        drop: Any = None,
        column: Any = None,
        typecode: str | None = None,
        on: Any = None,
        prepare: Any = None,
        settings: tuple[Option[Any], ...] = (),
        converted_if: Any = None,
        also: Any = None,
    ) -> None:
        assert (keep is not None) == needs.per_rollout and (drop is not None) != needs.per_rollout, reason
        self.reason, self.meaning, self.needs, self.option = reason, meaning, needs, option
        self.keep, self.drop, self.column, self.typecode = keep, drop, column, typecode
        self.on, self.prepare, self.settings, self.converted_if = on, prepare, settings, converted_if
        self.also = also

    def enabled(self, options: OptionValues) -> bool:
        if self.option is None:
            return True
        if self.also is not None and self.also(options):
            return True
        raw = getattr(options, self.option.name)
        return self.on(raw) if self.on is not None and raw is not None else self.option.is_set(raw)

    def value(self, options: OptionValues) -> Any:
        """What ``keep``/``drop``/``column`` compare with under ``options`` (prepared: call once)."""
        raw = getattr(options, self.option.name) if self.option is not None else None
        return self.prepare(raw, options) if self.prepare is not None else raw


class Filtering:
    """The enabled filters of ``filters`` under ``options``, prepared once (in each process that reads).

    ``counts`` holds what ``apply`` (and ``count``) dropped here, by reason."""

    def __init__(
        self, filters: Sequence[Filter[Any, Any]], options: OptionValues, only: Sequence[Stage[Any]] = ()
    ) -> None:
        """``only``: prepare just the filters of these stages (selection over the index loads no tokenizer)."""
        self.counts: Counter[str] = Counter()
        self.per_rollout: list[tuple[str, Callable[[Any, Any], bool], Any, bool]] = []
        self.over_rows: list[tuple[Filter[Any, Any], Any]] = []
        for f in filters:
            if (only and f.needs not in only) or not f.enabled(options):
                continue
            value = f.value(options)
            if f.needs.per_rollout:
                on_head = f.needs is HEAD and not (f.converted_if is not None and f.converted_if(value))
                self.per_rollout.append((f.reason, f.keep, value, on_head))
            else:
                self.over_rows.append((f, value))

    def apply(self, subject: Head | Rollout) -> str | None:
        """The first filter ``subject`` fails, counted; None when it passes them all (on a Head: or when
        only the conversion can tell)."""
        reason = self.judge(subject)
        if reason is not None:
            self.counts[reason] += 1
        return reason

    def judge(self, subject: Head | Rollout) -> str | None:
        """``apply``'s verdict, not counted yet: the first look's (its line is counted once it is known
        not to be a reject, see ``count``)."""
        return self._first_look(subject) if isinstance(subject, Head) else self._first_failure(subject)

    def count(self, reason: str | None) -> None:
        """Count a drop judged without ``apply`` (on a first look) or decided elsewhere (the primary output
        format could not hold the row)."""
        if reason is not None:
            self.counts[reason] += 1

    def _first_failure(self, rollout: Rollout) -> str | None:
        for reason, keep, value, _ in self.per_rollout:
            if not keep(rollout, value):
                return reason
        return None

    def _first_look(self, head: Head) -> str | None:
        """A reason only if the head fails that filter whatever its exact turn count, having passed every
        earlier one whatever that count; a filter that needs the conversion ends the look."""
        if head.turns == head.turns_at_most:  # the usual case: the count is exact
            for reason, keep, value, on_head in self.per_rollout:
                if not on_head:
                    return None
                if not keep(head, value):
                    return reason
            return None
        low, high = head.with_turns(head.turns), head.with_turns(head.turns_at_most)
        for reason, keep, value, on_head in self.per_rollout:
            if not on_head:
                return None
            at_low, at_high = keep(low, value), keep(high, value)
            if not (at_low and at_high):
                return None if at_low or at_high else reason
        return None

    def columns(self) -> list[tuple[Filter[Any, Any], Any]]:
        """The enabled filters over every rollout that keep a column in the index, with their values."""
        return [(f, value) for f, value in self.over_rows if f.column is not None]

    def stage(self, *stages: Stage[Any]) -> list[tuple[Filter[Any, Any], Any]]:
        """The enabled filters over every rollout of these stages, in declaration order, with their values."""
        return [(f, value) for f, value in self.over_rows if f.needs in stages]

    @staticmethod
    def drop_rows(over: list[tuple[Filter[Any, Any], Any]], rows: Rows, kept: list[bool]) -> Counter[str]:
        """Run these filters over the index, in order: each drops among the rows still ``kept``. Returns the
        drops by reason (``kept`` is updated)."""
        dropped: Counter[str] = Counter()
        for f, value in over:
            for row in list(f.drop(rows, kept, value)):
                kept[row] = False
                dropped[f.reason] += 1
        return dropped
