"""NeMo RL configs survive their own base: every inherited key that would break a run on a release is overridden.

NeMo RL is not installable here (PyPI's ``nemo-rl`` is an empty 0.0.0 placeholder; the real package needs CUDA,
Ray and Megatron), so its base configs cannot be read from an install. The keys below were read from
NVIDIA-NeMo/RL at commit 7ea279abfbeb698b092856d0dab61e7cf39bc909, examples/configs/sft.yaml and dpo.yaml: the
inherited values that break a run (path: upstream value), and the base's interpolations that read what a
release sets. The test rebuilds a base from them and loads our config the way NeMo RL's
``load_config_with_inheritance`` (nemo_rl/utils/config.py) does: OmegaConf loads the child, pops ``defaults``,
and ``OmegaConf.merge(base, child)``; interpolations are resolved by OmegaConf itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollforge.build.nemo_rl import SPECIAL_TOKENS
from rollforge.build.recipe import make_recipe
from rollforge.build.release import Release, build

omegaconf = pytest.importorskip("omegaconf")
OmegaConf = omegaconf.OmegaConf

UPSTREAM = "NVIDIA-NeMo/RL@7ea279abfbeb698b092856d0dab61e7cf39bc909"
SQUAD_TEMPLATE = (
    "{% for message in messages %}{%- if message['role'] == 'system'  %}{{'Context: ' + message['content'].strip()}}"
    "{%- elif message['role'] == 'user'  %}{{' Question: ' + message['content'].strip() + ' Answer:'}}"
    "{%- elif message['role'] == 'assistant'  %}{{' ' + message['content'].strip()}}{%- endif %}{% endfor %}"
)
BREAKING: dict[str, dict[str, Any]] = {
    "sft": {  # examples/configs/sft.yaml
        "policy.model_name": "meta-llama/Llama-3.2-1B",
        "policy.tokenizer.chat_template": SQUAD_TEMPLATE,  # drops tool calls, tool outputs and tools
        "policy.max_total_sequence_length": 1024,  # longer rows train with loss_multiplier=0
        "data.train.dataset_name": "squad",
        "data.validation.dataset_name": "squad",
        "data.validation.split": "validation",  # a local JSONL file has only a train split
        "logger.wandb_enabled": True,  # needs a wandb login
    },
    "dpo": {  # examples/configs/dpo.yaml
        "policy.model_name": "meta-llama/Llama-3.2-1B-Instruct",
        "policy.tokenizer.name": "meta-llama/Llama-3.2-1B-Instruct",  # not ${policy.model_name}
        "policy.max_total_sequence_length": 1024,
        "data.train.dataset_name": "HelpSteer3",
        "data.validation.dataset_name": "HelpSteer3",
        "data.validation.split": "validation",  # KeyError: 'validation' on a local file
    },
}
KEPT: dict[str, dict[str, Any]] = {  # base values a release keeps, some reading the keys it sets
    "sft": {
        "policy.tokenizer.name": "${policy.model_name}",
        "policy.train_micro_batch_size": 1,
        "policy.dynamic_batching.train_mb_tokens": "${mul:${policy.max_total_sequence_length}, ${policy.train_micro_batch_size}}",
        "data.max_input_seq_length": "${policy.max_total_sequence_length}",
        "data.train.split": "train",
        "data.default.processor": "sft_processor",
        "logger.wandb.name": "sft-dev-${data.train.dataset_name}",
        "sft.val_period": 10,
        "sft.val_at_start": True,
        "checkpointing.metric_name": "val:val_loss",
    },
    "dpo": {
        "data.max_input_seq_length": "${policy.max_total_sequence_length}",
        "data.train.split": "train",
        "dpo.val_period": 25,
        "dpo.val_at_start": True,
        "checkpointing.metric_name": "val:validation-default_loss",
    },
}
MODEL = "/models/my-model"


@pytest.fixture(scope="module")
def releases(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    out = tmp_path_factory.mktemp("releases")
    common = {"inputs": [str(examples_dir)], "output": str(out), "workers": 1}
    return {
        "split": build(make_recipe({**common, "version": "split"})),
        "unsplit": build(make_recipe({**common, "version": "unsplit", "val_fraction": 0.0})),
    }


def get(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(path)
        node = node[key]
    return node


def ours(release: Release, kind: str) -> dict[str, Any]:
    return yaml.safe_load((release.path / "trainer-configs" / f"nemo_rl_{kind}.yaml").read_text())


def load_with_base(release: Release, kind: str, tmp: Path) -> dict[str, Any]:
    """Our config on a base rebuilt from the upstream keys, loaded as NeMo RL loads it, with the model given on
    the command line (``policy.model_name=...``), resolved."""
    base = OmegaConf.create({})
    for path, value in {**KEPT[kind], **BREAKING[kind]}.items():
        OmegaConf.update(base, path, value, force_add=True)
    OmegaConf.save(base, tmp / f"{kind}.yaml")
    shutil.copy(release.path / "trainer-configs" / f"nemo_rl_{kind}.yaml", tmp / f"nemo_rl_{kind}.yaml")
    child = OmegaConf.load(tmp / f"nemo_rl_{kind}.yaml")
    parent = OmegaConf.load(tmp / str(child.pop("defaults")))
    merged = OmegaConf.merge(parent, child)
    OmegaConf.update(merged, "policy.model_name", MODEL)
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
    return OmegaConf.to_container(merged, resolve=True)


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_every_breaking_key_is_overridden(releases: dict[str, Release], kind: str) -> None:
    config = ours(releases["split"], kind)
    for path, upstream in BREAKING[kind].items():
        assert get(config, path) != upstream, f"{path} keeps {UPSTREAM}'s {upstream!r}"
    assert get(config, "policy.tokenizer.name") == "${policy.model_name}"
    if kind == "sft":
        assert get(config, "policy.tokenizer.chat_template") == "default"  # the model's own template
    for split in ("train", "validation"):
        assert get(config, f"data.{split}.split") == "train"
    measured = releases["split"].manifest["sequence_lengths"][kind]["tokens"]
    assert get(config, "policy.max_total_sequence_length") == measured + SPECIAL_TOKENS


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_config_resolves_on_its_base_and_its_data_loads(
    releases: dict[str, Release], kind: str, tmp_path: Path
) -> None:
    from datasets import load_dataset

    config = load_with_base(releases["split"], kind, tmp_path)
    policy, data = config["policy"], config["data"]
    assert policy["tokenizer"]["name"] == MODEL
    assert data["max_input_seq_length"] == policy["max_total_sequence_length"] > 1024
    if kind == "sft":
        assert policy["tokenizer"]["chat_template"] == "default"
        assert policy["dynamic_batching"]["train_mb_tokens"] == policy["max_total_sequence_length"]
        assert config["logger"]["wandb_enabled"] is False
    acc = releases["split"].manifest["accounting"][kind]
    for split in ("train", "validation"):
        entry = data[split]
        # What NeMo RL's load_dataset_from_path does with a local .jsonl: the json loader, then [split].
        rows = load_dataset("json", data_files=entry["data_path"])[entry["split"]]
        assert rows.num_rows == acc[split]
    header = (releases["split"].path / "trainer-configs" / f"nemo_rl_{kind}.yaml").read_text()
    assert ("WITHOUT the tools" in header) == (kind == "dpo")


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_a_release_without_validation_runs_without_it(
    releases: dict[str, Release], kind: str, tmp_path: Path
) -> None:
    release = releases["unsplit"]
    assert release.manifest["accounting"][kind]["validation"] == 0
    config = load_with_base(release, kind, tmp_path)
    assert config["data"]["validation"] is None
    assert config[kind]["val_period"] == 0 and config[kind]["val_at_start"] is False  # NeMo RL asserts it
    assert config["checkpointing"]["metric_name"] is None
    assert json.loads(json.dumps(config))  # plain data, nothing left to resolve
