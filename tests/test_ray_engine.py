"""The Ray engine runs the same library steps as the local engine: a build on a local Ray instance
(num_cpus=2) gives the same rows as the local engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RELEASE_DATA_FILES

from rollforge.build.recipe import make_recipe
from rollforge.build.release import build

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from rollforge.engine.ray_engine import start

    start(num_cpus=2)
    yield
    ray.shutdown()


def test_ray_build_equals_local_build(ray_local, examples_dir: Path, tmp_path: Path) -> None:
    common = {
        "inputs": [str(examples_dir)],
        "output": str(tmp_path),
        "min_reward": 0.5,
        "success_only": False,
    }
    local = build(make_recipe({**common, "version": "local", "workers": 2}))
    remote = build(make_recipe({**common, "version": "ray", "engine": "ray", "workers": 2}))
    for name in RELEASE_DATA_FILES:
        local_rows = (local.path / name).read_bytes().splitlines()
        ray_rows = (remote.path / name).read_bytes().splitlines()
        assert set(ray_rows) == set(local_rows), name
        assert len(ray_rows) == len(local_rows), name
    assert local_rows  # the comparison saw real rows
    acc_local, acc_ray = local.manifest["accounting"], remote.manifest["accounting"]
    assert acc_ray == acc_local
    assert acc_local["sft"]["written"] > 0 and acc_local["dpo"]["written"] > 0


def test_ray_reads_fsspec_urls(ray_local, examples_dir: Path, tmp_path: Path) -> None:
    url = f"file://{examples_dir.resolve()}"
    release = build(make_recipe({"inputs": [url], "output": str(tmp_path), "engine": "ray", "workers": 2}))
    assert release.manifest["accounting"]["lines"] == 485
    assert release.manifest["inputs"][0]["path"].startswith("file://")


def test_the_commands_run_on_ray_when_asked(
    ray_local, examples_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """`rollforge sft|dpo|sample --engine ray` read on Ray (not, as they once did, silently on the local
    engine) and write the local engine's rows, byte for byte."""
    from rollforge.cli.main import main
    from rollforge.engine import ray_engine

    calls = []
    real_scan = ray_engine.scan

    def scan(*args, **kwargs):
        calls.append(1)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(ray_engine, "scan", scan)
    runs = [["sft", "--success-only", "--min-items", "3"], ["dpo", "--min-margin", "0.2"], ["sample"]]
    for command, *flags in runs:
        local, remote = tmp_path / f"{command}-local.jsonl", tmp_path / f"{command}-ray.jsonl"
        base = [command, str(examples_dir), *flags, "--workers", "2", "--quiet"]
        assert main([*base, "-o", str(local)]) == 0
        assert main([*base, "-o", str(remote), "--engine", "ray"]) == 0
        assert remote.read_bytes() == local.read_bytes() and local.read_bytes(), command
    assert len(calls) == len(runs)
