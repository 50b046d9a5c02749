"""Progress with units: the reading bar counts MB of the total, MB/s, rollouts and their rate, and the time
left; counted bars name their unit; a step of unknown length says what it works on and how long it took,
without a spinner thread (which would stop the step's workers from forking)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from rich.console import Console

from rollforge import progress
from rollforge.engine import local
from rollforge.engine.job import Job
from rollforge.io.sources import discover


def rendered(bar: progress.Progress) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(bar.make_tasks_table(bar.tasks))
    return console.export_text()


def test_the_reading_bar_counts_megabytes_and_rollouts(
    examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars: list[progress.Progress] = []

    def keep(*args: object) -> progress.Progress:
        bars.append(progress.bytes_bar())
        return bars[-1]

    monkeypatch.setattr(local, "bytes_bar", keep)
    discovery = discover([str(examples_dir)])
    result = local.scan(discovery, Job(), None, workers=2)
    (task,) = bars[0].tasks
    assert task.completed == task.total == discovery.total_bytes
    assert task.fields["rollouts"] == result.inventory.rollouts > 0
    text = rendered(bars[0])
    megabytes = f"{discovery.total_bytes / 1e6:.1f}"
    assert f"{megabytes}/{megabytes} MB" in text or "kB" in text
    assert f"{result.inventory.rollouts:,} rollouts" in text and "/s" in text and "ETA" in text
    assert f"/{discovery.total_bytes}" not in text  # no raw byte counts


def test_counted_bars_name_their_unit() -> None:
    bar = progress.progress_bar()
    task = bar.add_task("reading sft/train.jsonl", total=1234, unit="rows")
    bar.update(task, advance=1000)
    assert "1,000/1,234 rows" in rendered(bar)
    open_ended = bar.add_task("reading rollouts", total=None, unit="rollouts")
    bar.update(open_ended, advance=5)
    assert "5 rollouts" in rendered(bar)


def test_a_step_says_what_it_does_and_how_long_it_took_without_a_thread(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(progress, "enabled", lambda: True)
    threads = threading.active_count()
    with progress.status("writing datasets (SFT trl) from 1,234 rollouts"):
        assert threading.active_count() == threads  # forking stays safe (rollforge.parallel)
    err = capsys.readouterr().err
    assert "writing datasets (SFT trl) from 1,234 rollouts …" in err
    assert "writing datasets (SFT trl) from 1,234 rollouts: 0.0 s" in err
