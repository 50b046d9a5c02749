"""Issue 14: a run killed with SIGKILL leaves no process behind, and its hidden files are swept by the next
run on this host; Ctrl-C stops a run with 2 workers at once. Real processes, real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rollforge.cli.main import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 generated rollouts (about 90 MB): a 2-worker read takes long enough to be interrupted."""
    path = tmp_path_factory.mktemp("corpus") / "rollouts"
    subprocess.run([sys.executable, "-m", "rollforge.cli.main", "example", "-o", str(path), "--rollouts", "10000"],
                   check=True, capture_output=True)  # fmt: skip
    return path


@pytest.fixture(autouse=True)
def reap() -> Iterator[None]:
    """Whatever a failing test leaves running is killed afterwards."""
    STARTED.clear()
    yield
    for process in STARTED:
        with contextlib.suppress(psutil.Error):
            process.kill()


STARTED: list[psutil.Process] = []


def start(argv: list[str]) -> tuple[subprocess.Popen[bytes], list[psutil.Process]]:
    """Start ``rollforge ARGV`` in its own session; return once both of its read workers run."""
    proc = subprocess.Popen([sys.executable, "-m", "rollforge.cli.main", *argv], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = psutil.Process(proc.pid).children()
        if len(workers) >= 2:
            STARTED.extend([psutil.Process(proc.pid), *workers])
            time.sleep(0.3)  # well inside the read
            return proc, workers
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    raise AssertionError("the workers never started")


def gone(processes: list[psutil.Process], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = []
        for p in processes:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sft", "build"])
def test_kill_9_leaves_no_worker_and_no_debris(
    command: str, corpus: Path, tmp_path: Path, examples_dir: Path
) -> None:
    out = tmp_path / "out"
    target = out / "sft.jsonl" if command == "sft" else out
    out.mkdir()
    proc, workers = start([command, str(corpus), "-o", str(target), "--workers", "2", "-q"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert gone(workers, within=3), "workers outlived their parent"
    left = hidden(out)
    run = f"~{socket.gethostname()}~{proc.pid}~"  # leftovers name the host and pid of the dead run
    assert left and all(
        run in (os.readlink(out / name) if (out / name).is_symlink() else name) for name in left
    )
    assert main([command, str(examples_dir), "-o", str(target), "-q"]) == 0  # the next run sweeps them
    assert hidden(out) == []


@pytest.mark.slow
def test_ctrl_c_stops_a_two_worker_run_at_once(corpus: Path, tmp_path: Path) -> None:
    proc, workers = start(["build", str(corpus), "-o", str(tmp_path / "rel"), "--workers", "2", "-q"])
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: to the whole foreground group
    began = time.monotonic()
    proc.wait(timeout=30)
    took = time.monotonic() - began
    assert proc.returncode == 130 and took < 3, f"exit {proc.returncode} after {took:.1f} s"
    assert gone(workers, within=1)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "rel").exists()  # a first build that fails leaves no releases directory at all


def test_only_dead_runs_of_this_host_are_swept(tmp_path: Path, examples_dir: Path) -> None:
    dead = 4_000_000  # above any pid Linux hands out
    host = socket.gethostname()
    mine_dead = tmp_path / f".v5.rf~{host}~{dead}~abc.partial"
    mine_live = tmp_path / f".v6.rf~{host}~{os.getpid()}~abc.partial"
    elsewhere = (
        tmp_path / f".v7.rf~other-host~{dead}~abc.partial"
    )  # a build on another machine sharing the disk
    untagged = tmp_path / ".notes.partial"  # not ours
    for path in (mine_dead, mine_live, elsewhere, untagged):
        path.mkdir()
        (path / ".rollforge-owner").write_text(str(dead))  # what older builds wrote: a pid not running here
    (tmp_path / ".v8.reserved").symlink_to(f".rf~{host}~{dead}~")
    assert main(["build", str(examples_dir), "-o", str(tmp_path), "-q", "--workers", "1"]) == 0
    assert hidden(tmp_path) == sorted(p.name for p in (mine_live, elsewhere, untagged))
    assert (tmp_path / "v1").is_dir()


def test_a_ctrl_c_that_python_swallowed_still_stops_the_build(
    examples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python drops a KeyboardInterrupt raised inside a weakref callback (an import's module lock, while the
    read's workers run: 1 build in 30 then finished with exit 0). The signal is remembered, and the build is
    refused before its release is put in place."""
    from rollforge import workers
    from rollforge.build import release

    def swallowed(digests: object) -> None:
        with contextlib.suppress(KeyboardInterrupt):  # what Python does to it in a weakref callback
            workers._on_sigint(signal.SIGINT, None)

    monkeypatch.setattr(release, "_while_reading", swallowed)
    assert main(["build", str(examples_dir), "-o", str(tmp_path / "rel"), "-q"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "rel").exists()


def test_an_import_that_ctrl_c_broke_is_reported_as_an_interruption(
    examples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C inside a C extension's import surfaces as "ImportError: initialization failed": exit 130 and the
    usual line, not a traceback."""
    from rollforge import workers
    from rollforge.build import release

    def broken(digests: object) -> None:
        monkeypatch.setattr(workers, "_interrupted", True)
        raise ImportError("initialization failed")

    monkeypatch.setattr(release, "_while_reading", broken)
    assert main(["build", str(examples_dir), "-o", str(tmp_path / "rel"), "-q"]) == 130
    assert capsys.readouterr().err.strip() == "rollforge: interrupted; no partial output was left behind"
