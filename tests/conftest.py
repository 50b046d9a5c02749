"""Shared test setup: offline Hugging Face, and --skip-slow for the long end-to-end tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the suite may reach a hub: fail fast instead of hanging on a download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "rollouts"
SHARED_ROLLOUTS = ROOT.parent / "shared" / "rollouts" / "nemo-gym"
# The data files of a release built with the defaults (trl + nemo-rl formats).
RELEASE_DATA_FILES = [
    "sft/train.jsonl",
    "sft/validation.jsonl",
    "dpo/train.jsonl",
    "dpo/validation.jsonl",
    "nemo-rl/sft_train.jsonl",
    "nemo-rl/sft_validation.jsonl",
    "nemo-rl/dpo_train.jsonl",
    "nemo-rl/dpo_validation.jsonl",
    "review/sample.jsonl",
    "rejected.jsonl",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-slow", action="store_true", help="skip end-to-end tests marked slow (CI runs them)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--skip-slow"):
        return
    skip = pytest.mark.skip(reason="--skip-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The bundled example corpus (examples/rollouts)."""
    return EXAMPLES


@pytest.fixture(scope="session")
def shared_rollouts() -> Path:
    """The real NeMo Gym rollouts beside the checkout; tests using it skip when it is absent."""
    if not SHARED_ROLLOUTS.is_dir():
        pytest.skip(
            f"real NeMo Gym rollouts not found at {SHARED_ROLLOUTS} (conformance test needs ../shared)"
        )
    return SHARED_ROLLOUTS
