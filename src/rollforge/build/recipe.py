"""The build recipe: every option of ``rollforge build``, validated before any work starts.

Keys are the CLI flags with underscores (``--min-reward`` is ``min_reward``); the one exception is
``review_db``, the recipe name of ``--labels``. The quality filters' keys come from their declarations
(``rollforge.filters``). A wrong key, type or value gets one message that names the key and says how to fix it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from rollforge.environments import merge_environments
from rollforge.errors import RollforgeError
from rollforge.export.formats import DEFAULT_FORMATS, SFT_FORMATS
from rollforge.filters import OPTIONS as FILTER_OPTIONS
from rollforge.limits import DEFAULT_MAX_LINE_BYTES
from rollforge.options import Option
from rollforge.report.thresholds import thresholds

if TYPE_CHECKING:
    SftFormat = str
else:
    SftFormat = Literal[SFT_FORMATS]  # the declared formats' names (a wrong one gets them in its error)


class Recipe(BaseModel):
    """The recipe's own keys; every quality filter's option is added from its declaration (RecipeModel)."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[str] = Field(min_length=1, description="rollouts files, directories or globs")
    output: str = Field(description="the releases directory; each build adds a version under it")
    version: str | None = Field(None, description="release name (default: the next v1, v2, ...)")
    seed: int = 0
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of prompts held out for validation")
    workers: int | None = Field(None, ge=1)
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    memory_budget: float | None = Field(None, gt=0, description="MB for DPO grouping state before spilling")
    max_line_bytes: int = Field(DEFAULT_MAX_LINE_BYTES, ge=1, description="a longer line is rejected unread")
    extra_formats: list[SftFormat] = Field(
        [], description=f"formats written besides {' and '.join(f.name for f in DEFAULT_FORMATS)}"
    )
    # SFT
    reasoning: Literal["field", "think", "drop"] | None = None
    # DPO
    dpo: bool = True
    pairing: Literal["best-worst", "best-random", "all"] = "best-worst"
    min_margin: float = Field(0.1, ge=0.0)
    margin_scale: Literal["absolute", "range"] = "absolute"
    max_pairs_per_prompt: int | None = Field(None, ge=1)
    split_at_divergence: bool = False
    # KTO (unpaired preference rows, labelled by the success definition)
    kto: bool = Field(False, description="write a kto config (TRL's unpaired preference rows)")
    undesirable_below: float | None = Field(
        None, description="KTO: label false only a failure with reward below this (default: every failure)"
    )
    recollect: str | None = Field(
        None, description="write the prompts DPO could not pair here, as NeMo Gym task rows to collect again"
    )
    # review sample
    strata: str = "0.5:10,0.8:20,inf:20"
    # the report's checklist
    checks: dict[str, float] = Field(
        default_factory=dict,
        description="report thresholds by name, e.g. {min_sft_rows: 200} (see the report)",
    )
    fail_on_warn: bool = Field(
        False, description="exit 1 when a report check warns (the release is still written)"
    )

    @field_validator("checks")
    @classmethod
    def _known_thresholds(cls, checks: dict[str, float]) -> dict[str, float]:
        try:
            thresholds(checks)
        except RollforgeError as exc:
            raise ValueError(f"{exc.message}: {exc.hint}" if exc.hint else exc.message) from None
        return checks

    sample_by_env: bool = False
    allow_empty: bool = Field(False, description="build a release with no rows instead of failing")

    @field_validator("extra_formats", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``openai,sharegpt``, ``[openai, sharegpt]`` and ``["openai,sharegpt"]`` all name two formats."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            return value
        parts = [p for item in items for p in (item.split(",") if isinstance(item, str) else [item])]
        return [
            p.strip() if isinstance(p, str) else p
            for p in parts
            if not (isinstance(p, str) and not p.strip())
        ]

    @field_validator("inputs")
    @classmethod
    def _inputs_exist(cls, inputs: list[str]) -> list[str]:
        for path in inputs:
            local = path != "-" and "://" not in path and not any(ch in path for ch in "*?[")
            if local and not os.path.exists(path):
                raise ValueError(f"input {path!r} does not exist: fix the path or remove it")
        return inputs


def _filter_field(option: Option[Any]) -> tuple[Any, Any]:
    """The recipe field of a filter option: its type (None allowed where it defaults to None), default,
    bounds and description."""
    kind: Any = Literal[option.choices] if option.choices else option.type  # type: ignore[valid-type]
    default = option.default  # the same defaults as `rollforge sft` and `dpo`: one policy
    bounds = {name: value for name in ("ge", "gt", "le") if (value := getattr(option, name)) is not None}
    return (kind if default is not None else kind | None), Field(default, description=option.help, **bounds)


RecipeModel: type[Recipe] = create_model(  # type: ignore[call-overload]
    "Recipe", __base__=Recipe, **{o.recipe_key: _filter_field(o) for o in FILTER_OPTIONS}
)


def _explain(error: ValidationError, source: str) -> RollforgeError:
    """One message for the first problem (and how many more), naming the key and the fix."""
    problems = error.errors()
    first = problems[0]
    key = ".".join(str(p) for p in first["loc"]) or "(recipe)"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, RecipeModel.model_fields, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see `rollforge init` for every key"
        return RollforgeError(f"{source}: unknown key {key!r}{more}", hint=hint)
    if first["type"] == "missing":
        what = RecipeModel.model_fields[key].description or key
        return RollforgeError(f"{source}: {key!r} is required{more}", hint=f"set it: {what}")
    message = str(first["msg"]).removeprefix("Value error, ")
    return RollforgeError(f"{source}: {key!r}: {message} (got {first.get('input')!r}){more}")


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a recipe file; ``overrides`` (CLI flags) win over its keys."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RollforgeError(f"cannot read recipe {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RollforgeError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise RollforgeError(f"{path}: a recipe is a mapping of keys to values, got a {type(data).__name__}")
    base = Path(path).parent
    for key in ("inputs", "output", "review_db", "exclude_tasks", "recollect"):
        if key in data:
            data[key] = _relative_to(base, data[key])
    overrides = dict(overrides or {})
    if "environments" in overrides and isinstance(data.get("environments"), dict):  # a flag's NAME=T over
        overrides["environments"] = merge_environments(data["environments"], overrides["environments"])
    return make_recipe({**data, **overrides}, source=str(path))


def make_recipe(values: dict[str, Any], source: str = "command line") -> Recipe:
    try:
        recipe = RecipeModel(**values)
    except ValidationError as exc:
        raise _explain(exc, source) from None
    data = recipe.model_dump()
    by_name = {o.name: o for o in FILTER_OPTIONS}
    for option in FILTER_OPTIONS:
        needed = by_name.get(option.requires or "")
        value = data[option.recipe_key]
        if needed is not None and option.is_set(value) and not needed.is_set(data[needed.recipe_key]):
            key, other = option.recipe_key, needed.recipe_key
            raise RollforgeError(
                f"{source}: {key!r}: needs `{other}:` too: set it or drop {key} (got {value!r})"
            )
        if option.check is not None and option.is_set(value):
            option.check(value)
    return recipe


def _relative_to(base: Path, value: Any) -> Any:
    """Paths in a recipe are relative to the recipe file, not to where rollforge runs."""
    if isinstance(value, list):
        return [_relative_to(base, v) for v in value]
    if isinstance(value, str) and value != "-" and "://" not in value and not os.path.isabs(value):
        return str(base / value)
    return value
