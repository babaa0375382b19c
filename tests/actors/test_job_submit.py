"""`ray job submit ... -- python jobs/train.py CONFIG` on a local head this test starts (token
auth, Ray 2.60) writes the run directory. The head runs `ray start --block` in its own process
group, so the test stops exactly the processes it started (not `ray stop`, which would stop
every Ray on the machine, the session's too)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"ray head: dashboard port {port} not up within {seconds} s")


@pytest.fixture
def head():
    """A Ray head (2 CPUs, dashboard for the job server, token auth); yields (url, env)."""
    port, dash = _free_port(), _free_port()
    # The session's own Ray (tests/actors/conftest.py) already holds the default agent ports:
    # give this head free ones, or its job agent never starts ("No available agent").
    agent_ports = [f"--dashboard-agent-listen-port={_free_port()}",
                   f"--dashboard-agent-grpc-port={_free_port()}",
                   f"--runtime-env-agent-port={_free_port()}",
                   f"--metrics-export-port={_free_port()}",
                   f"--ray-client-server-port={_free_port()}"]
    temp = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Unix socket paths <= 107 chars
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         "--disable-usage-stats", "--block", f"--temp-dir={temp}", *agent_ports],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(dash, 120)
        yield f"http://127.0.0.1:{dash}", env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        shutil.rmtree(temp, ignore_errors=True)


def _submit(cmd, env, seconds: float = 90.0):
    """Submit, retrying while the head's job agent is still starting (Ray answers "No
    available agent to submit job, please try again later" for a while after `ray start`)."""
    deadline = time.monotonic() + seconds
    while True:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=480)
        busy = "No available agent" in res.stdout + res.stderr
        if res.returncode == 0 or not busy or time.monotonic() > deadline:
            return res
        time.sleep(3)


def test_job_submit_writes_the_run_directory(head, tmp_path):
    url, env = head
    runs = tmp_path / "runs"
    cmd = [str(BIN / "ray"), "job", "submit", "--address", url, "--working-dir", str(REPO),
           "--", "python", "jobs/train.py", "examples/digits.toml", "--run-dir", str(runs),
           "--run-id", "job", "--epochs", "1", "--microbatches", "2", "--schedule", "1f1b"]
    res = _submit(cmd, env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "succeeded" in res.stdout + res.stderr and "run directory" in res.stdout
    for name in ("config.json", "history.parquet", "predictions.parquet", "model.json"):
        assert (runs / "job" / name).is_file(), name
    assert any((runs / "job" / "checkpoints").iterdir())
