"""The command line is a thin shell over the API: every flag of inspect, sft, dpo, sample and build reaches
the job, engine or recipe it configures (a table, one row per flag: a flag without a row fails the test);
the filter flags, the recipe's keys and the starter recipe's lines agree; and a reader that goes away
(`rollforge inspect --json | head`) ends a command quietly, with status 0."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollforge.build.recipe import RecipeModel, make_recipe
from rollforge.build.starter import starter
from rollforge.cli.main import build_parser, main
from rollforge.cli.options import ENV_FLAGS
from rollforge.engine.choose import Engine
from rollforge.engine.job import Stratum
from rollforge.filters import CHOSEN_OPTIONS, ENV_FIELD, ENVIRONMENTS, OPTIONS, SUCCESS_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]


class Reached(Exception):
    """Raised where the run would start reading: the job, engine (and recipe) it got are recorded."""


class Capture:
    job: Any = None
    engine: Any = None
    discovery: Any = None
    recipe: Any = None
    inventory_workers: Any = None


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Capture:
    seen = Capture()

    def scan(self: Engine, discovery: Any, job: Any, spill_dir: str, started: Any = None) -> Any:
        seen.engine, seen.job, seen.discovery = self, job, discovery
        raise Reached

    def local_scan(discovery: Any, job: Any, spill_dir: Any, workers: Any = None, started: Any = None) -> Any:
        seen.job, seen.inventory_workers, seen.discovery = job, workers, discovery
        raise Reached

    import rollforge.build.release as release
    import rollforge.pipeline as pipeline

    real_build = release.build

    def build(recipe: Any) -> Any:
        seen.recipe = recipe
        return real_build(recipe)

    monkeypatch.setattr(Engine, "scan", scan)
    monkeypatch.setattr(pipeline, "scan", local_scan)
    monkeypatch.setattr(release, "build", build)
    return seen


Check = Callable[[Capture], Any]  # what the flag configures, read from what the run received

# The value each filter option is given on the command line, and what it must become.
FILTER_VALUES: dict[type, tuple[str, Any]] = {float: ("0.25", 0.25), int: ("3", 3), str: ("x", "x")}
SPECIAL: dict[str, tuple[list[str], Any]] = {
    "where": (["--where", "reward > 0.5"], "reward > 0.5"),
    "dedup": (["--dedup", "near"], "near"),
    "max_tokens": (["--max-tokens", "9", "--tokenizer", "tok"], 9),
    "max_per_category": (["--max-per-category", "4", "--balance-by", "agent_ref"], 4),
    # fields the example rollouts have (a field no rollout has is refused before the run)
    "balance_by": (["--balance-by", "agent_ref.name"], "agent_ref.name"),
    "success_field": (["--success-field", "expected_answer"], "expected_answer"),
    "min_task_success_rate": (["--min-task-success-rate", "0.5"], 0.5),
    "near_threshold": (["--near-threshold", "0.5"], 0.5),
    "labels_keep": (["--labels-keep", "accept", "--labels", "review.sqlite"], "accept"),
    "env_field": (["--env-field", "task_type"], "task_type"),
}


def filter_rows(
    options: tuple[Any, ...], defaults: dict[str, Any] | None = None
) -> list[tuple[list[str], Check, Any]]:
    rows = []
    for option in options:
        default = (defaults or {}).get(option.name, option.default)
        if option is ENVIRONMENTS:  # filled by NAME=VALUE flags, one row each
            rows += [
                ([flag, "grl_sokoban=3"], lambda c: c.job.filters.environments, {"grl_sokoban": {key: 3.0}})
                for flag, (key, _, _) in ENV_FLAGS.items()
            ]
            rows.append(
                (["--success-threshold", "grl_sokoban=10"], lambda c: c.job.filters.environments,
                 {"grl_sokoban": {"success_threshold": 10.0}})
            )  # fmt: skip
            continue
        if option.name in SPECIAL:
            args, want = SPECIAL[option.name]
        elif option.type is bool:  # the flag that changes the default
            args, want = ([f"--no-{option.flag[2:]}"], False) if default else ([option.flag], True)
        else:
            text, want = FILTER_VALUES[option.type]
            args = [option.flag, text]
        rows.append((args, lambda c, name=option.name: getattr(c.job.filters, name), want))
    return rows


# The limit reaches every input the run reads.
MAX_LINE_BYTES = (
    ["--max-line-bytes", "1M"],
    lambda c: {s.max_line_bytes for s in c.discovery.sources},
    {1 << 20},
)
RUN = [
    MAX_LINE_BYTES,
    (["--seed", "7"], lambda c: c.job.seed, 7),
    (["--workers", "3"], lambda c: c.engine.workers, 3),
    (["--engine", "ray"], lambda c: c.engine.name, "ray"),
    (["--ray-address", "auto"], lambda c: c.engine.ray_address, "auto"),
]
OUTPUT = [
    (["--format", "openai"], lambda c: c.job.sft[0].format.name, "openai"),
    (["--reasoning", "drop"], lambda c: c.job.sft[0].reasoning, "drop"),
]
PAIRING = [
    (["--pairing", "all"], lambda c: c.job.pairing.strategy, "all"),
    (["--min-margin", "0.3"], lambda c: c.job.pairing.min_margin, 0.3),
    (["--margin-scale", "range"], lambda c: c.job.pairing.margin_scale, "range"),
    (["--max-pairs-per-prompt", "2"], lambda c: c.job.pairing.max_pairs_per_prompt, 2),
    (["--split-at-divergence"], lambda c: c.job.pairing.split_at_divergence, True),
    (["--memory-budget", "64"], lambda c: c.engine.memory_budget, 64.0),
]
BUILD_DEFAULTS = {o.name: RecipeModel.model_fields[o.recipe_key].default for o in OPTIONS}
TABLE: dict[str, list[tuple[list[str], Check, Any]]] = {
    "inspect": [
        (["--workers", "3"], lambda c: c.inventory_workers, 3),
        MAX_LINE_BYTES,
        *[row for row in filter_rows((SUCCESS_THRESHOLD, ENVIRONMENTS, ENV_FIELD)) if row[0][0] not in ENV_FLAGS],
        (["--success-field", "is_correct"], lambda c: c.job.filters.success_field, "is_correct"),
    ],
    "sft": [*RUN, *OUTPUT, *filter_rows(OPTIONS)],
    "dpo": [
        *RUN,
        (["--format", "openai"], lambda c: c.job.dpo[0].format.name, "openai"),
        (["--reasoning", "drop"], lambda c: c.job.dpo[0].reasoning, "drop"),
        *PAIRING,
        *filter_rows(CHOSEN_OPTIONS),
    ],
    "kto": [
        *RUN,
        (["--reasoning", "drop"], lambda c: c.job.sft[0].reasoning, "drop"),
        (["--undesirable-below", "0.25"], lambda c: c.job.labels.undesirable_below, 0.25),
        # kto keeps failures by default (they are its undesirable rows): --success-only is what changes it
        *filter_rows(OPTIONS, {"success_only": False}),
    ],
    "sample": [
        *RUN,
        (["--strata", "0.5:1,inf:2"], lambda c: c.job.strata,
         (Stratum(-float("inf"), 0.5, 1), Stratum(0.5, float("inf"), 2))),
        (["--by-env"], lambda c: c.job.sample_by_env, True),
        (["--env-field", "task_type"], lambda c: c.job.filters.env_field, "task_type"),
    ],
    "build": [
        *RUN,
        *PAIRING,
        *filter_rows(OPTIONS, BUILD_DEFAULTS),
        (["--version", "v9"], lambda c: c.recipe.version, "v9"),
        (["--val-fraction", "0.2"], lambda c: c.recipe.val_fraction, 0.2),
        (["--extra-formats", "openai,sharegpt"], lambda c: [o.format.name for o in c.job.sft],
         ["trl", "nemo-rl", "openai", "sharegpt"]),
        (["--reasoning", "drop"], lambda c: {o.reasoning for o in (*c.job.sft, *c.job.dpo)}, {"drop"}),
        (["--no-dpo"], lambda c: c.job.dpo, ()),
        (["--kto"], lambda c: c.recipe.kto, True),
        (["--undesirable-below", "0.25"], lambda c: c.recipe.undesirable_below, 0.25),
        (["--strata", "0.5:1,inf:2"], lambda c: len(c.job.strata), 2),
        (["--fail-on-warn"], lambda c: c.recipe.fail_on_warn, True),
        (["--checks", "min_sft_rows=200"], lambda c: c.recipe.checks, {"min_sft_rows": 200.0}),
        (["--sample-by-env"], lambda c: c.job.sample_by_env, True),
    ],
}  # fmt: skip
# Flags that configure no job: where the output goes, and how the summary is shown; whether an empty output is
# an error and where unpaired prompts go afterwards (both run end to end in test_empty.py).
NOT_JOB = {"--help", "--output", "--json", "--quiet", "--allow-empty", "--recollect"}


def long_flags(command: str) -> set[str]:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = set()
    for action in sub.choices[command]._actions:
        names = [s for s in action.option_strings if s.startswith("--") and not s.startswith("--no-")]
        flags.update(names[:1])
    return flags


@pytest.mark.parametrize("command", sorted(TABLE))
def test_every_flag_of_a_command_has_a_row(command: str) -> None:
    covered = {
        args[0] if not args[0].startswith("--no-") else "--" + args[0][5:] for args, _, _ in TABLE[command]
    }
    assert long_flags(command) - NOT_JOB == covered


@pytest.mark.parametrize(
    ("command", "args", "check", "want"),
    [(command, args, check, want) for command, rows in TABLE.items() for args, check, want in rows],
    ids=[f"{command} {' '.join(args)}" for command, rows in TABLE.items() for args, _, _ in rows],
)
def test_every_flag_reaches_the_job_it_configures(
    capture: Capture,
    tmp_path: Path,
    examples_dir: Path,
    command: str,
    args: list[str],
    check: Check,
    want: Any,
) -> None:
    head = [command, str(examples_dir)]
    if command in ("sft", "dpo", "kto", "sample"):
        head += ["-o", str(tmp_path / "out.jsonl")]
    if command == "build":
        head += ["-o", str(tmp_path / "releases")]
    with pytest.raises(Reached):
        main([*head, *args, "--quiet"])
    assert check(capture) == want
    if args[0] != "--ray-address":  # (an address alone changes nothing else)
        with pytest.raises(Reached):
            main([*head, "--quiet"])
        assert check(capture) != want, "the row's value must differ from the default to prove anything"


def test_filter_flags_recipe_keys_and_starter_lines_agree() -> None:
    """One declaration per option: sft has every filter flag, dpo those that can bar a chosen side, build
    and the recipe every one (under its recipe key), and the starter recipe a line for each; the starter's
    examples, uncommented, make a valid recipe."""

    def flags(options: Any) -> set[str]:  # the environments map is filled by NAME=VALUE flags
        return {f for o in options for f in (ENV_FLAGS if o is ENVIRONMENTS else (o.flag,))}

    assert flags(OPTIONS) <= long_flags("sft") and flags(OPTIONS) <= long_flags("build")
    assert flags(OPTIONS) & long_flags("dpo") == flags(CHOSEN_OPTIONS)
    build_flags = long_flags("build") - {"--help", "--json", "--quiet"}
    recipe_keys = set(RecipeModel.model_fields) - {"inputs"}  # inputs: the positional paths
    key_of = {o.flag: o.recipe_key for o in OPTIONS} | dict.fromkeys(ENV_FLAGS, ENVIRONMENTS.recipe_key)
    assert {key_of.get(flag, flag[2:].replace("-", "_")) for flag in build_flags} == recipe_keys
    text = starter()
    lines = {m.group(1): m.group(0) for m in re.finditer(r"^(?:# )?([a-z_]+):.*$", text, re.MULTILINE)}
    assert set(RecipeModel.model_fields) <= set(lines)
    uncommented = "\n".join(
        line.removeprefix("# ") if line.removeprefix("# ").split(":")[0] in RecipeModel.model_fields else line
        for line in text.splitlines()
    )
    values = yaml.safe_load(uncommented)
    values.pop("version")
    values["inputs"] = ["."]
    recipe = make_recipe(values)
    for option in OPTIONS:
        default = RecipeModel.model_fields[option.recipe_key].default
        expected = default if default not in (None, False) else option.example
        assert getattr(recipe, option.recipe_key) == (True if expected is None else expected), option.name


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """Through real pipes: one with no reader left (the first write fails), and `| head -n 1` on an output
    larger than a pipe holds. Status 0, nothing on stderr."""
    src = tmp_path / "many.jsonl"
    src.write_text("".join(f"{{not json {i}\n" for i in range(5000)))  # 5000 rejects: ~0.5 MB of --json
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-m", "rollforge.cli.main", "inspect", str(src), "--json"]
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run(cmd, stdout=write, stderr=subprocess.PIPE, env=env, timeout=120)
    os.close(write)
    assert (proc.returncode, proc.stderr) == (0, b"")
    shell = f"{' '.join(cmd)} 2>{tmp_path / 'err'} | head -n 1 >/dev/null; exit ${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", shell], env=env, timeout=120)
    assert proc.returncode == 0 and (tmp_path / "err").read_bytes() == b""
