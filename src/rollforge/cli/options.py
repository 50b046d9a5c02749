"""Flags shared by the dataset commands (sft, dpo, sample, build): one definition, one meaning."""

from __future__ import annotations

import argparse
from typing import Any

from rollforge import progress
from rollforge.cli.common import add_max_line_bytes
from rollforge.engine.choose import ENGINES
from rollforge.environments import DEFAULT, MAX
from rollforge.errors import RollforgeError
from rollforge.export.formats import FORMATS
from rollforge.export.messages import REASONING_MODES
from rollforge.filters import CHOSEN_OPTIONS, ENVIRONMENTS, FILTERS, SUCCESS_THRESHOLD
from rollforge.filters import OPTIONS as FILTER_OPTIONS
from rollforge.options import Option


def add_run_args(parser: argparse.ArgumentParser, pairs: bool = False) -> None:
    """--workers, --seed, --json, --quiet, --engine, --ray-address, and with ``pairs`` --memory-budget."""
    group = parser.add_argument_group("run")
    group.add_argument("--workers", type=int, default=None, help="processes to use (default: all cores)")
    group.add_argument("--seed", type=int, default=0, help="seed for every random choice (default: 0)")
    group.add_argument(
        "--json", action="store_true", help="print the accounting as one JSON object on stdout"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: all cores of this machine; ray: Ray Data on a cluster (extra: rollforge[ray])",
    )
    if pairs:
        group.add_argument(
            "--memory-budget",
            type=float,
            metavar="MB",
            help="memory for DPO grouping; a larger index is grouped in buckets on disk (default: no limit)",
        )
    add_max_line_bytes(group)
    group.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 even when nothing is written (default: writing no row is an error, exit 1, with the "
        "top reasons and the fix)",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="connect to this Ray cluster (e.g. auto, ray://head:10001); default: start one locally",
    )


def add_filter_args(parser: argparse.ArgumentParser, chosen_side: bool = False) -> None:
    """Every quality filter's flags, from the declarations (``rollforge.filters``), each with the reason code
    its drops are counted under; with ``chosen_side`` (dpo), only those that can bar a chosen side."""
    group = parser.add_argument_group("quality filters (each drop is counted under the reason in brackets)")
    reasons: dict[str, list[str]] = {}
    for f in FILTERS:
        if f.option is not None:
            reasons.setdefault(f.option.name, []).append(f.reason)
    for option in CHOSEN_OPTIONS if chosen_side else FILTER_OPTIONS:
        codes = reasons.get(option.name)
        text = f"{option.help} [{', '.join(codes)}]" if codes else option.help
        if option is ENVIRONMENTS:
            add_environment_args(group)
        elif option is SUCCESS_THRESHOLD:
            group.add_argument(
                option.flag,
                action=EnvValue,
                metavar="[NAME=]T",
                default=option.default,
                help=f"{text}; NAME=T: environment NAME's own threshold (repeat it), NAME=max: its best "
                "observed reward (assumes its top reward means solved)",
            )
        else:
            add_option(group, option, text)


# The flags that fill the per-environment policy (the recipe's `environments:` map), NAME=VALUE each.
ENV_FLAGS = {
    "--mix": ("weight", "NAME=WEIGHT", "hold environment NAME at this share of the set (relative weights; "
              "repeat it; a seeded choice, as far as supply allows) [not_in_mix, over_mix_share]"),
    "--env-min-reward": ("min_reward", "NAME=R", "environment NAME's own --min-reward [below_min_reward]"),
    "--env-max-rollouts": ("max_rollouts", "NAME=N", "keep at most N rollouts of environment NAME (a seeded "
                           "choice) [over_env_cap]"),
}  # fmt: skip


class EnvValue(argparse.Action):
    """NAME=VALUE into ``environments[NAME][key]`` (key: the flag's, in ENV_FLAGS, or success_threshold);
    a bare VALUE sets the global option (--success-threshold 1.0)."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, value: Any, flag: Any = None) -> None:
        key = ENV_FLAGS[flag][0] if flag in ENV_FLAGS else "success_threshold"
        name, sep, text = str(value).rpartition("=")
        if not sep and flag not in ENV_FLAGS:
            if text == MAX:
                name = DEFAULT
            else:
                setattr(namespace, self.dest, _number(parser, flag, text))
                return
        if not name or not text:
            parser.error(f"{flag} {value!r}: expected NAME=VALUE, e.g. {flag} grl_sokoban_gymnasium_agent=10")
        envs = dict(getattr(namespace, "environments", None) or {})
        envs[name] = {**envs.get(name, {}), key: text if text == MAX else _number(parser, flag, text)}
        namespace.environments = envs


def _number(parser: Any, flag: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        parser.error(f"{flag}: {text!r} is not a number")
        raise  # not reached: parser.error exits


def add_environment_args(group: Any) -> None:
    for flag, (_, metavar, help) in ENV_FLAGS.items():
        group.add_argument(flag, action=EnvValue, dest="environments", metavar=metavar, help=help)


def add_option(group: Any, option: Option[Any], help: str) -> None:
    if option.type is bool:
        group.add_argument(
            option.flag, action=argparse.BooleanOptionalAction, default=bool(option.default), help=help
        )
        return
    group.add_argument(
        option.flag,
        type=option.type,
        default=option.default,
        metavar=option.metavar,
        choices=option.choices or None,
        help=help,
    )


def suppress_defaults(parser: argparse.ArgumentParser) -> None:
    """Only flags actually given appear in the namespace (so they can override a recipe file's keys)."""
    for action in parser._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS


def add_reasoning_arg(parser: argparse.ArgumentParser) -> None:
    defaults = "; ".join(
        f"{mode} for {'/'.join(f.name for f in FORMATS if f.reasoning == mode)}"
        for mode in REASONING_MODES
        if any(f.reasoning == mode for f in FORMATS)
    )
    parser.add_argument(
        "--reasoning",
        choices=REASONING_MODES,
        help="where reasoning goes: reasoning_content field, inline <think> tags, or dropped "
        f"(default: {defaults})",
    )


def apply_run_args(args: argparse.Namespace) -> None:
    progress.set_quiet(args.quiet or args.json)
    if args.workers is not None and args.workers < 1:
        raise RollforgeError("--workers must be at least 1")
