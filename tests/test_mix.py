"""Mixtures (--mix, the recipe's weights) and scale-aware pairing (--margin-scale range): shares within a
point of the weights where supply allows, the environment that fell short named where it does not, a seeded
choice; margins as a fraction of each environment's own reward range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gym_rollouts import answer, read_jsonl, rollout, user, write_jsonl

import rollforge
from rollforge import api
from rollforge.cli.main import main
from rollforge.mix import plan_mix


def corpus(tmp_path: Path, supply: dict[str, int], rewards: tuple[float, ...] = (1.0,)) -> Path:
    """One file per environment with ``supply[env]`` prompts, one rollout per reward for each prompt."""
    folder = tmp_path / "rollouts"
    folder.mkdir(exist_ok=True)
    for env, n in supply.items():
        rows = [
            rollout([user(f"{env} task {i}")], [answer(f"{env} answer {i} {r}")], r)
            for i in range(n)
            for r in rewards
        ]
        write_jsonl(folder / f"{env}.jsonl", rows)
    return folder


def shares(rows: list[dict[str, object]]) -> dict[str, float]:
    envs = [str(r["env"]) for r in rows]
    return {env: envs.count(env) / len(envs) for env in sorted(set(envs))}


def test_the_plan_holds_every_share_or_names_who_fell_short() -> None:
    plan = plan_mix({"math": 1000, "tools": 400, "chat": 900}, {"math": 0.5, "tools": 0.3, "chat": 0.2})
    assert plan["limited_by"] == "tools" and plan["short"] == {}
    assert plan["taken"] == {"chat": 267, "math": 667, "tools": 400}
    assert all(abs(plan["achieved"][e] - w) < 0.01 for e, w in plan["weights"].items())
    sized = plan_mix({"math": 1000, "tools": 100, "chat": 900}, {"math": 5, "tools": 3, "chat": 2}, size=1000)
    assert sized["short"] == {"tools": 200} and sized["taken"] == {"chat": 200, "math": 500, "tools": 100}
    empty = plan_mix({"math": 10}, {"math": 1, "tools": 1})
    assert empty["short"] == {"tools": 0} and empty["taken"] == {"math": 10, "tools": 0}
    assert plan_mix({"a": 5, "b": 5}, {"default": 1.0})["taken"] == {"a": 5, "b": 5}


RECIPE_ENVS = {"math": {"weight": 0.5}, "tools": {"weight": 0.3}, "chat": {"weight": 0.2}}


def build(tmp_path: Path, folder: Path, **keys: object) -> dict[str, object]:
    recipe = {"inputs": [str(folder)], "output": str(tmp_path / "releases"), "val_fraction": 0.0, **keys}
    path = tmp_path / "rollforge.yaml"
    path.write_text(yaml.safe_dump(recipe))
    release = api.build(path, workers=1)
    return dict(release.manifest)


def test_a_recipe_with_three_weights_gets_its_shares(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"math": 700, "tools": 250, "chat": 400, "other": 50})
    manifest = build(tmp_path, folder, environments=RECIPE_ENVS, dpo=False)
    rows = read_jsonl(tmp_path / "releases" / "v1" / "sft" / "train.jsonl")
    got = shares(rows)
    assert set(got) == {"math", "tools", "chat"}  # not in the mix: dropped (not_in_mix)
    assert all(abs(got[env] - entry["weight"]) <= 0.01 for env, entry in RECIPE_ENVS.items()), got
    accounting = manifest["accounting"]
    assert isinstance(accounting, dict)
    assert accounting["sft"]["filtered"]["not_in_mix"] == 50
    assert accounting["mix"]["sft"]["limited_by"] == "tools" and accounting["mix"]["sft"]["short"] == {}
    assert manifest["recipe"]["environments"] == RECIPE_ENVS  # type: ignore[index]
    report = (tmp_path / "releases" / "v1" / "report.html").read_text()
    assert 'id="environments"' in report and "<h3>Mix</h3>" in report


def test_a_size_the_supply_cannot_meet_names_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = corpus(tmp_path, {"math": 700, "tools": 100, "chat": 400})
    out = tmp_path / "sft.jsonl"
    args = ["sft", str(folder), "-o", str(out), "--mix", "math=0.5", "--mix", "tools=0.3", "--mix", "chat=0.2",
            "--mix-size", "1000", "--workers", "1", "--json", "-q"]  # fmt: skip
    assert main(args) == 0
    got = shares(read_jsonl(out))
    assert got == {"chat": 200 / 800, "math": 500 / 800, "tools": 100 / 800}
    plan = json.loads(capsys.readouterr().out)["mix"]["sft"]
    assert plan["short"] == {"tools": 200} and plan["wanted"] == {"chat": 200, "math": 500, "tools": 300}


def test_the_mix_is_printed_with_its_shortfall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = corpus(tmp_path, {"math": 70, "tools": 10, "chat": 40})
    args = ["sft", str(folder), "-o", str(tmp_path / "o.jsonl"), "--mix", "math=5", "--mix", "tools=3",
            "--mix", "chat=2", "--mix-size", "100", "--workers", "1", "-q"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "short: tools had 10 rows, 20 fewer than its share" in err
    assert "math: 50 rows" in err


def test_the_mix_is_seeded(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"math": 300, "tools": 50})
    kept = []
    for seed in (0, 0, 1):
        out = tmp_path / f"s{seed}.jsonl"
        rollforge.sft(
            str(folder), out, environments={"math": {"weight": 1}, "tools": {"weight": 1}}, seed=seed
        )
        kept.append([r["rollout_id"] for r in read_jsonl(out)])
    assert kept[0] == kept[1] != kept[2] and len(kept[0]) == 100


def test_dpo_pairs_follow_the_mix(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"math": 60, "tools": 30}, rewards=(1.0, 0.0))
    out = tmp_path / "dpo.jsonl"
    acc = rollforge.dpo(str(folder), out, environments={"math": {"weight": 0.5}, "tools": {"weight": 0.5}})
    assert shares(read_jsonl(out)) == {"math": 0.5, "tools": 0.5}
    assert acc["pairs"] == 90 and acc["written"] == 60 and acc["skipped"] == {"over_mix_share": 30}
    assert acc["mix"]["dpo"]["limited_by"] == "tools"


def test_margin_scale_range_is_a_fraction_of_each_environments_range(tmp_path: Path) -> None:
    folder = tmp_path / "rollouts"
    folder.mkdir()
    # sokoban: -2..10 (range 12); verifier 0..1 (range 1). One prompt each with a gap of 1.0 and of 0.5.
    write_jsonl(folder / "sokoban.jsonl", [
        rollout([user("push")], [answer(f"move {r}")], r) for r in (-2.0, 10.0)] + [
        rollout([user("push 2")], [answer(f"move {r}")], r) for r in (0.0, 1.0)])  # fmt: skip
    write_jsonl(
        folder / "verifier.jsonl", [rollout([user("solve")], [answer(f"x {r}")], r) for r in (0.0, 0.5)]
    )
    out = tmp_path / "dpo.jsonl"
    absolute = rollforge.dpo(str(folder), out, min_margin=0.4, success_only=False)
    assert absolute["pairs"] == 3 and absolute["margin"] == {"scale": "absolute", "min_margin": 0.4}
    scaled = rollforge.dpo(str(folder), out, min_margin=0.4, margin_scale="range", success_only=False)
    # sokoban needs 0.4 * 12 = 4.8: its 1.0 gap is noise there; the verifier needs 0.2: 0.5 passes
    assert sorted((r["env"], r["margin"]) for r in read_jsonl(out)) == [("sokoban", 12.0), ("verifier", 0.5)]
    assert scaled["margin"]["per_env"] == {"sokoban": 4.8, "verifier": 0.2}
    assert scaled["unpaired"] == {"below_margin": 1}
