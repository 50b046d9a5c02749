"""`rollforge train sft|dpo` in-process on the tiny model: outputs, LoRA, resume, config and error paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoModelForCausalLM

from rollforge.cli.main import main
from rollforge.tiny import CHAT_TEMPLATE, build_tiny_model

TOOLS = json.dumps(
    [
        {
            "type": "function",
            "function": {
                "name": "calculator",
                "description": "Evaluate arithmetic",
                "parameters": {
                    "type": "object",
                    "properties": {"expr": {"type": "string"}},
                    "required": ["expr"],
                },
            },
        }
    ]
)
CALL = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": {"expr": "6*7"}}}
TOOL_CHAT = [
    {"role": "user", "content": "What is 6 times 7?"},
    {"role": "assistant", "reasoning_content": "Use the tool.", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "42"},
    {"role": "assistant", "content": "It is 42."},
]
GAME_CHAT = [
    {"role": "user", "content": "Guess a number from 1 to 3."},
    {"role": "assistant", "content": "2"},
    {"role": "user", "content": "Higher."},
    {"role": "assistant", "content": "3"},
]
SFT_ROWS = [
    {
        "messages": TOOL_CHAT,
        "tools": TOOLS,
        "prompt_id": "p1",
        "rollout_id": "r1",
        "reward": 1.0,
        "task_type": "math",
    },
    {
        "messages": GAME_CHAT,
        "tools": "[]",
        "prompt_id": "p2",
        "rollout_id": "r2",
        "reward": 1.0,
        "task_type": "game",
    },
]
DPO_ROWS = [
    {
        "prompt": TOOL_CHAT[:1],
        "chosen": TOOL_CHAT[1:],
        "rejected": [{"role": "assistant", "content": "It is 41."}],
        "tools": TOOLS,
        "chosen_reward": 1.0,
        "rejected_reward": 0.0,
        "margin": 1.0,
        "prompt_id": "p1",
    },
    {
        "prompt": GAME_CHAT[:3],
        "chosen": GAME_CHAT[3:],
        "rejected": [{"role": "assistant", "content": "1"}],
        "tools": "[]",
        "chosen_reward": 1.0,
        "rejected_reward": 0.0,
        "margin": 1.0,
        "prompt_id": "p2",
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release directory: SFT with a validation split, DPO without one."""
    root = tmp_path_factory.mktemp("release")
    write_jsonl(root / "sft" / "train.jsonl", SFT_ROWS * 2)
    write_jsonl(root / "sft" / "validation.jsonl", SFT_ROWS[:1])
    write_jsonl(root / "dpo" / "train.jsonl", DPO_ROWS)
    return root


def train(method: str, model: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["train", method, "--model", str(model), "--data", str(data), "-o", str(out), *extra])


def error_of(capsys: pytest.CaptureFixture[str], code: int) -> str:
    assert code == 1
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_sft_from_release(
    tiny: Path, release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert train("sft", tiny, release, out, "--max-steps", "3", "--lr", "1e-3", "--batch-size", "2") == 0
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert [entry["step"] for entry in metrics["log"]] == [1, 2, 3]
    assert all({"loss", "learning_rate", "epoch"} <= entry.keys() for entry in metrics["log"])
    assert metrics["log"][0]["learning_rate"] == pytest.approx(1e-3)
    assert metrics["train_rows"] == 4 and metrics["validation_rows"] == 1
    assert metrics["eval_loss"] > 0 and metrics["eval_log"][-1]["eval_loss"] == metrics["eval_loss"]
    assert metrics["train_loss"] > 0 and metrics["train_runtime"] > 0
    assert metrics["config"]["assistant_only_loss"] is True and metrics["config"]["report_to"] == []
    assert (out / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    for name in ["model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"]:
        assert (out / name).is_file()
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size > 0
    first, last = metrics["log"][0]["loss"], metrics["log"][-1]["loss"]
    assert capsys.readouterr().out == (
        f"trained sft for 3 steps: loss {first:.4f} -> {last:.4f}, eval loss {metrics['eval_loss']:.4f}\n"
        f"model + tokenizer: {out}\n"
        f"metrics: {out / 'training_metrics.json'}, loss curve: {out / 'loss.png'}\n"
        f"lineage (release, base model, config, metrics): {out / 'lineage.json'}\n"
    )


def test_dpo_json_output(
    tiny: Path, release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dpo"
    assert train("dpo", tiny, release, out, "--max-steps", "3", "--json") == 0
    printed = json.loads(capsys.readouterr().out)  # stdout holds the JSON object and nothing else
    assert printed == json.loads((out / "training_metrics.json").read_text())
    assert printed["method"] == "dpo" and printed["global_step"] == 3 and printed["eval_loss"] is None
    assert [entry["step"] for entry in printed["log"]] == [1, 2, 3]
    assert all("rewards/margins" in entry for entry in printed["log"])
    assert (out / "model.safetensors").is_file() and (out / "loss.png").is_file()


def test_lora_writes_an_adapter(tiny: Path, release: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    args = [
        "--max-steps",
        "2",
        "--lora",
        "--lora-rank",
        "4",
        "--lora-alpha",
        "8",
        "--lora-targets",
        "q_proj",
        "v_proj",
    ]
    assert train("sft", tiny, release / "sft" / "train.jsonl", out, *args) == 0
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (
        adapter["r"] == 4
        and adapter["lora_alpha"] == 8
        and set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    )
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert metrics["adapter"] is True and metrics["validation_file"] is None


def test_resume_continues_from_the_last_checkpoint(tiny: Path, release: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train("sft", tiny, release, out, "--max-steps", "2") == 0
    assert train("sft", tiny, release, out, "--max-steps", "4", "--resume") == 0
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert metrics["resumed_from"] == str(out / "checkpoint-2")
    assert metrics["global_step"] == 4
    # The steps of the first run come back from the checkpoint's trainer state: the curve is complete.
    assert [entry["step"] for entry in metrics["log"]] == [1, 2, 3, 4]


def test_run_directory_guards(
    tiny: Path, release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fresh"
    assert error_of(capsys, train("sft", tiny, release, out, "--resume")) == (
        f"rollforge: error: nothing to resume: {out} has no checkpoint-* directory"
    )
    assert train("sft", tiny, release, out, "--max-steps", "1") == 0
    assert error_of(capsys, train("sft", tiny, release, out, "--max-steps", "1")) == (
        f"rollforge: error: {out} already holds a training run (pass --resume to continue it, or choose a new -o)"
    )


def test_template_without_generation_markers(
    tmp_path: Path, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = build_tiny_model(tmp_path / "plain", generation_markers=False)
    code = train("sft", plain, release, tmp_path / "a", "--max-steps", "1")
    assert error_of(capsys, code) == (
        f"rollforge: error: the chat template of '{plain}' has no {{% generation %}} markers, so assistant-only "
        "loss cannot find the assistant's tokens (pass a template with generation markers via --chat-template FILE, "
        "use a model family TRL ships a training template for (Qwen, Llama 3, Gemma, Phi, ...), or train on every "
        "token with --no-assistant-only-loss)"
    )
    template = tmp_path / "marked.jinja"
    template.write_text(CHAT_TEMPLATE)
    assert (
        train("sft", plain, release, tmp_path / "b", "--max-steps", "1", "--chat-template", str(template))
        == 0
    )
    assert (tmp_path / "b" / "chat_template.jinja").read_text() == CHAT_TEMPLATE  # saved with the model
    assert train("sft", plain, release, tmp_path / "c", "--max-steps", "1", "--no-assistant-only-loss") == 0
    metrics = json.loads((tmp_path / "c" / "training_metrics.json").read_text())
    assert metrics["config"]["assistant_only_loss"] is False


def test_config_file_sets_fields_and_flags_win(tiny: Path, release: Path, tmp_path: Path) -> None:
    config = tmp_path / "sft.yaml"
    config.write_text("learning_rate: 0.005\nlogging_steps: 2\nmax_steps: 4\nwarmup_steps: 1\n")
    out = tmp_path / "run"
    assert train("sft", tiny, release, out, "--config", str(config), "--lr", "0.002") == 0
    used = json.loads((out / "training_metrics.json").read_text())["config"]
    assert used["learning_rate"] == 0.002 and used["logging_steps"] == 2 and used["max_steps"] == 4
    assert used["warmup_steps"] == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "learning_rat: 0.1\n",
            "unknown key 'learning_rat' in {path}: not one of the SFTConfig fields (did you mean 'learning_rate'?)",
        ),
        (
            '{"zzz": 1}',
            "unknown key 'zzz' in {path}: not one of the SFTConfig fields (see the SFTConfig reference in TRL)",
        ),
        ("- a list\n", "config file {path} must hold a mapping of SFTConfig fields"),
    ],
)
def test_bad_config_file(
    tiny: Path, release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code = train("sft", tiny, release, tmp_path / "run", "--config", str(path))
    assert error_of(capsys, code) == "rollforge: error: " + expected.format(path=path)


def test_data_errors(tiny: Path, release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty_release = tmp_path / "empty"
    empty_release.mkdir()
    assert error_of(capsys, train("sft", tiny, empty_release, tmp_path / "a")) == (
        f"rollforge: error: release {empty_release} has no sft/train.jsonl "
        "(pass a JSONL file of SFT rows, or a release directory built by 'rollforge build')"
    )
    dpo_file = release / "dpo" / "train.jsonl"
    assert error_of(capsys, train("sft", tiny, dpo_file, tmp_path / "b")).startswith(
        f"rollforge: error: {dpo_file} is not SFT data: rows need messages (found: prompt, chosen, rejected, tools,"
    )
    (tmp_path / "empty.jsonl").write_text("")
    assert error_of(capsys, train("sft", tiny, tmp_path / "empty.jsonl", tmp_path / "d")) == (
        f"rollforge: error: {tmp_path / 'empty.jsonl'} has no rows to train on"
    )
    (tmp_path / "broken.jsonl").write_text('{"messages": [}\n')
    assert error_of(capsys, train("sft", tiny, tmp_path / "broken.jsonl", tmp_path / "e")) == (
        f"rollforge: error: cannot read {tmp_path / 'broken.jsonl'} as JSONL (JSON parse error: Invalid value. in row 0)"
    )
    missing = tmp_path / "nope.jsonl"
    assert error_of(capsys, train("dpo", tiny, missing, tmp_path / "c")) == (
        f"rollforge: error: no such data file or release directory: {missing}"
    )
