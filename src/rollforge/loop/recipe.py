"""The ``rollforge iterate`` recipe: what to start from, what to collect, how to build and train, each round.

Keys, with their defaults (a YAML file; a wrong key gets one message naming it)::

    base_model: runs/base              # the model round 1 collects with (a local model directory)
    train_tasks: tasks/train.jsonl     # task rows the model practises on (NeMo Gym dataset JSONL)
    heldout_tasks: tasks/heldout.jsonl # task rows it is evaluated on, never trained on
    output: loop                       # rounds/, releases/vN, models/agent_vN, iterate.json, iterate.md
    rounds: 2
    samples: 4                         # K rollouts per training task each round
    eval_samples: 2                    # rollouts per held-out task
    method: sft                        # sft (success-only rollouts) or dpo (best-worst pairs)
    control: false                     # shuffle the rewards before filtering (the control arm)
    seed: 0
    threads: null                      # torch CPU threads (default: 1 for a tiny model)
    collect: {mode: serve, verifier: exact, temperature: 1.0, max_tokens: 16, concurrency: 4, batch_size: 64}
    build: {}                          # any `rollforge build` recipe key (filters, pairing, min_margin, ...)
    train: {max_steps: 100, learning_rate: 0.001, batch_size: 32, config: {}}  # config: any TRL field
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollforge.errors import RollforgeError


class CollectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # serve: rollforge starts and stops `transformers serve` for each model; base_url: an OpenAI-compatible
    # server already running that serves each model by its path; local: generate in process (collect --local,
    # batched: for small models, ~100x faster than through a server)
    mode: Literal["serve", "base_url", "local"] = "serve"
    base_url: str | None = None
    verifier: Literal["exact", "math", "choice"] = "exact"
    temperature: float = Field(1.0, ge=0.0)
    max_tokens: int = Field(16, ge=1)
    batch_size: int = Field(64, ge=1)
    concurrency: int = Field(4, ge=1)


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(100, ge=1)
    epochs: float | None = Field(None, gt=0)
    learning_rate: float | None = Field(1e-3, gt=0)
    batch_size: int | None = Field(32, ge=1)
    max_length: int | None = Field(None, ge=1)
    config: dict[str, Any] = Field(default_factory=dict, description="any SFTConfig/DPOConfig field")


class IterateRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str
    train_tasks: str
    heldout_tasks: str
    output: str
    rounds: int = Field(2, ge=1)
    samples: int = Field(4, ge=1)
    eval_samples: int = Field(2, ge=1)
    method: Literal["sft", "dpo"] = "sft"
    control: bool = False
    seed: int = 0
    # torch's CPU threads. A tiny model's matrices are too small to split: on 2 busy cores one thread trains
    # it 7x faster than two. Default: 1 for a tiny model (hidden size <= 512), torch's own choice otherwise.
    threads: int | None = Field(None, ge=1)
    collect: CollectSettings = Field(default_factory=CollectSettings)  # type: ignore[arg-type]
    build: dict[str, Any] = Field(default_factory=dict)
    train: TrainSettings = Field(default_factory=TrainSettings)  # type: ignore[arg-type]

    @property
    def root(self) -> Path:
        return Path(self.output)


def make_iterate_recipe(values: dict[str, Any], source: str) -> IterateRecipe:
    try:
        recipe = IterateRecipe(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RollforgeError(
            f"{source}: {where}: {first['msg']}", hint="see `rollforge iterate --help`"
        ) from None
    if recipe.collect.mode == "base_url" and not recipe.collect.base_url:
        raise RollforgeError(f"{source}: collect.mode base_url needs collect.base_url")
    for key in ("inputs", "output", "version"):
        if key in recipe.build:
            raise RollforgeError(
                f"{source}: build.{key} is set by iterate itself (releases/vN of each round)"
            )
    return recipe


def load_iterate_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> IterateRecipe:
    """The recipe in ``path`` (relative paths in it are relative to the file), with ``overrides`` on top."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RollforgeError(f"cannot read recipe {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RollforgeError(f"recipe {path} is not valid YAML", hint=str(exc).splitlines()[0]) from None
    if not isinstance(values, dict):
        raise RollforgeError(f"recipe {path} must be a mapping of iterate keys")
    here = Path(path).parent
    for key in ("base_model", "train_tasks", "heldout_tasks", "output"):
        if isinstance(values.get(key), str) and not Path(values[key]).is_absolute():
            values[key] = str(here / values[key])
    return make_iterate_recipe({**values, **(overrides or {})}, str(path))
