"""Many environments in one corpus: which environment a rollout comes from, each one's own success policy,
the inspect table and its warnings, sample strata per environment, --where on env, and the env column.
On the real NeMo Gym files in ../shared (skipped without them) and on small built corpora."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, read_jsonl, rollout, user, write_jsonl

import rollforge
from rollforge import api
from rollforge.cli.main import main
from rollforge.environments import Policy, file_environment
from rollforge.errors import RollforgeError
from rollforge.filters import FilterOptions

SOKOBAN = "grl_sokoban_gymnasium_agent"
TETRIS = "grl_tetris_gymnasium_agent"


def corpus(tmp_path: Path, spec: dict[str, list[float]], tasks: int = 1) -> Path:
    """One file per environment (named by agent_ref.name when the name starts with 'agent:'), ``tasks``
    prompts each, one rollout per reward listed (cycled over the prompts)."""
    folder = tmp_path / "rollouts"
    folder.mkdir(exist_ok=True)
    for name, rewards in spec.items():
        agent = name.removeprefix("agent:")
        extra = {"agent_ref": {"type": "responses_api_agents", "name": agent}} if name != agent else {}
        rows = [
            rollout([user(f"{agent} task {i % tasks}")], [answer(f"{agent} answer {i}")], reward, **extra)
            for i, reward in enumerate(rewards)
        ]
        write_jsonl(folder / f"{agent}_file.jsonl", rows)
    return folder


# --- the environment of a rollout ------------------------------------------------------------------------


def test_agent_ref_name_else_the_file_stem_else_the_env_field(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"agent:sokoban": [1.0], "math": [1.0]})
    out = tmp_path / "sft.jsonl"
    rollforge.sft(str(folder), out, workers=1)
    assert sorted(r["env"] for r in read_jsonl(out)) == ["math_file", "sokoban"]
    # --env-field names another field; a line without it falls back to the rule above
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            rollout([user("a")], [answer("x")], 1.0, metadata={"suite": "tools"}),
            rollout([user("b")], [answer("y")]),
        ],
    )
    rollforge.sft(path, out, env_field="metadata.suite", workers=1)
    assert [r["env"] for r in read_jsonl(out)] == ["tools", "mixed"]
    assert file_environment("a/b/run.jsonl.gz") == "run" and file_environment("-") == "stdin"


def test_where_reads_env(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"agent:sokoban": [1.0, 0.0], "math": [1.0]})
    out = tmp_path / "sft.jsonl"
    acc = rollforge.sft(str(folder), out, where='env == "sokoban"', success_only=False, workers=1)
    assert {r["env"] for r in read_jsonl(out)} == {"sokoban"}
    assert (acc["written"], acc["filtered"]) == (2, {"where_false": 1})


def test_a_policy_that_cannot_work_is_refused_naming_the_key() -> None:
    with pytest.raises(RollforgeError, match=r"sokoban: unknown key 'treshold'"):
        FilterOptions(environments={"sokoban": {"treshold": 10}})
    with pytest.raises(RollforgeError, match=r"sokoban.weight must be >= 0"):
        FilterOptions(environments={"sokoban": {"weight": -1}})
    with pytest.raises(RollforgeError, match=r"success_threshold must be a number"):
        FilterOptions(environments={"sokoban": {"success_threshold": "high"}})
    policy = Policy.of({"default": {"min_reward": 0.5}, "sokoban": {"success": "max"}})
    assert policy.value("sokoban", "min_reward") == 0.5 and policy.wants_max


# --- per-environment success, min_reward, max_rollouts -----------------------------------------------------


def test_each_environment_has_its_own_bounds(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"agent:sokoban": [-2.0, 10.0, 3.0], "math": [0.0, 1.0, 0.5]})
    out = tmp_path / "sft.jsonl"
    policy = {"sokoban": {"min_reward": -3.0, "max_rollouts": 2}, "default": {"min_reward": 0.5}}
    acc = rollforge.sft(
        str(folder), out, environments=policy, min_reward=100.0, success_only=False, workers=1
    )
    rows = read_jsonl(out)
    # sokoban's own floor (-3) and cap (2 of 3, a seeded choice); math: the default entry's 0.5, not the global 100
    assert sorted(r["env"] for r in rows) == ["math_file", "math_file", "sokoban", "sokoban"]
    assert acc["filtered"] == {"below_min_reward": 1, "over_env_cap": 1}
    assert acc["environments"]["sokoban"] == {"rollouts": 3, "sft_rows": 2, "success": "reward >= 1"}


def test_success_max_is_the_best_observed_reward_and_says_so(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"agent:tetris": [-0.8, 8.9, 19.4], "math": [0.0, 1.0]})
    out = tmp_path / "sft.jsonl"
    acc = rollforge.sft(
        str(folder), out, success_only=True, environments={"tetris": {"success": "max"}}, workers=1
    )
    assert sorted((r["env"], r["reward"]) for r in read_jsonl(out)) == [("math_file", 1.0), ("tetris", 19.4)]
    assert acc["environments"]["tetris"]["success"].startswith("reward >= 19.4 (success = the best reward")
    assert "assumes its top reward means solved" in acc["environments"]["tetris"]["success"]


# --- inspect ------------------------------------------------------------------------------------------------


def test_inspect_counts_each_environment_under_the_policy_and_warns(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"agent:sokoban": [-2.0, -2.0, 10.0], "math": [0.0, 1.0], "agent:legal": [0.0]})
    s = rollforge.inspect(str(folder), environments={"sokoban": {"success_threshold": 10}}, workers=1)
    envs = s["environments"]
    assert set(envs) == {"sokoban", "math_file", "legal"}
    assert envs["sokoban"]["reward"] | {"mean": 0} == {"min": -2.0, "median": -2.0, "max": 10.0, "mean": 0,
                                                       "distinct": 2}  # fmt: skip
    assert (envs["sokoban"]["success_rate"], envs["sokoban"]["success"]) == (
        pytest.approx(1 / 3),
        "reward >= 10",
    )
    assert envs["math_file"]["success_rate"] == 0.5
    warnings = s["environment_warnings"]
    assert any(
        w.startswith("environments' rewards live on different scales (sokoban -2..10") for w in warnings
    )
    assert "the global success threshold 1 lies outside the reward range of legal (0..0)" in warnings
    assert "no rollout succeeds in legal (under the success policy in force)" in warnings


def test_inspect_cli_has_the_environment_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = corpus(tmp_path, {"agent:sokoban": [-2.0, 10.0], "math": [0.0, 1.0]})
    assert main(["inspect", str(folder), "--success-threshold", "sokoban=10", "-q"]) == 0
    out = capsys.readouterr().out
    assert "environments (rewards on each one's own scale)" in out and ">= 10" in out
    assert "warning: environments' rewards live on different scales" in out


# --- sample ---------------------------------------------------------------------------------------------------


def test_sample_draws_each_stratum_within_each_environment(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"agent:big": [0.0] * 20 + [1.0] * 20, "small": [0.0, 1.0]}, tasks=40)
    acc = rollforge.sample(str(folder), tmp_path / "s.jsonl", strata="0.5:2,inf:2", by_env=True, workers=1)
    assert {name: e["written"] for name, e in acc["strata"].items()} == {
        "big [-inf, 0.5)": 2, "big [0.5, inf)": 2, "small_file [-inf, 0.5)": 1, "small_file [0.5, inf)": 1}  # fmt: skip
    assert acc["written"] == 6


# --- the real files --------------------------------------------------------------------------------------


def test_real_files_inspect_reports_every_environment_with_its_range(shared_rollouts: Path) -> None:
    s = rollforge.inspect(str(shared_rollouts))
    envs = s["environments"]
    stems = {p.name.removesuffix(".jsonl") for p in shared_rollouts.glob("*.jsonl")}
    assert len(envs) == len(stems) == 22 and sum(e["rollouts"] for e in envs.values()) == s["rollouts"]
    assert all({"min", "max", "mean"} <= set(e["reward"]) for e in envs.values())
    assert (envs[SOKOBAN]["reward"]["min"], envs[SOKOBAN]["reward"]["max"]) == (pytest.approx(-2.0), 10.0)
    assert (envs[TETRIS]["reward"]["min"], envs[TETRIS]["reward"]["max"]) == (pytest.approx(-0.8), 19.4)
    assert any("different scales" in w for w in s["environment_warnings"])


def test_real_files_sft_with_a_threshold_per_environment(shared_rollouts: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    code = main(["sft", str(shared_rollouts), "-o", str(out), "--success-only", "--success-threshold", "1.0",
                 "--success-threshold", f"{SOKOBAN}=10", "-q", "--json"])  # fmt: skip
    assert code == 0
    rows = read_jsonl(out)
    assert all(isinstance(r["env"], str) and r["env"] for r in rows)
    sokoban = [r["reward"] for r in rows if r["env"] == SOKOBAN]
    assert sokoban == [10.0]
    assert all(r["reward"] >= 1.0 for r in rows if r["env"] != SOKOBAN)
    assert {r["env"] for r in rows} >= {TETRIS, "resources_servers_mcqa"}


def test_real_files_where_on_env(shared_rollouts: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    acc: dict[str, Any] = rollforge.sft(
        str(shared_rollouts), out, where=f'env == "{TETRIS}"', success_only=False
    )
    assert acc["written"] == 5 and {r["env"] for r in read_jsonl(out)} == {TETRIS}


# --- the report ------------------------------------------------------------------------------------------


def test_the_report_has_each_environment_on_its_own_scale(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"agent:sokoban": [-2.0, 10.0, -2.0], "math": [0.0, 1.0]})
    out = tmp_path / "sft.jsonl"
    rollforge.sft(str(folder), out, success_only=False, workers=1)
    envs = api.report(str(out), None).summary()["environments"]
    assert {name: (e["sft_rows"], round(e["sft_share"], 2)) for name, e in envs.items()} == {
        "sokoban": (3, 0.6),
        "math_file": (2, 0.4),
    }
    assert (envs["sokoban"]["reward"]["min"], envs["sokoban"]["reward"]["max"]) == (-2.0, 10.0)
    # rollouts read directly name their environment the same way
    direct = api.report(str(folder), None).summary()["environments"]
    assert set(direct) == {"sokoban", "math_file"}
