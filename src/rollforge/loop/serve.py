"""A `transformers serve` process for one model, started and stopped by ``rollforge iterate``.

The model directory is passed as the forced model: loaded at start, the only model the server answers for,
under its path as the name. The server is stopped (terminate, then kill after a grace period) whatever
happens in between, so a failed round leaves no process behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rollforge.errors import RollforgeError

READY_S = 180.0  # loading a model on a busy CPU takes a while


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def transformers_serve(model: Path, log_path: Path) -> Iterator[str]:
    """Serve ``model`` on a free loopback port; yields the ``.../v1`` base URL once ``/health`` answers."""
    cli = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if cli is None:
        raise RollforgeError("the `transformers` command is missing", hint="pip install 'rollforge[train]'")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    cmd = [cli, "serve", str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_ready(proc, f"http://127.0.0.1:{port}/health", log_path)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], health: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RollforgeError(f"transformers serve exited with status {proc.returncode}; see {log_path}")
        if _healthy(health):
            return
        time.sleep(0.3)
    raise RollforgeError(f"transformers serve was not ready in {READY_S:g} s; see {log_path}")
