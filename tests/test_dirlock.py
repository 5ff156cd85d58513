"""One writer per run directory (issue 19): a second command refuses naming the first; SIGKILL frees the lock.

The lock itself is exercised with a helper process that takes it and sleeps; the whole path with two
real `mlbench run` processes on one run directory (the first frozen with SIGSTOP while it holds the
lock, so the check never races its end).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlbench.foundations import dirlock
from mlbench.foundations.io import write_json
from mlbench.results.rundir import RunDir

HOLD = """
import sys, time
from mlbench.foundations import dirlock
tasks = sys.argv[3:]
with dirlock.hold(sys.argv[1], sys.argv[2], whole=not tasks, tasks=tasks, role="job" if tasks else "command"):
    print("held", flush=True)
    time.sleep(600)
"""
RUN_ARGS = ["run", "padchest-specific", "--demo", "--demo-option", "n_patients=40", "--demo-option", "image_size=96",
            "--backbones", "resnet10t", "--ensembles", "ctp", "--epochs", "1", "--image-size", "32", "--workers", "1",
            "--bootstrap", "10", "--quiet"]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def holding(directory: Path, kind: str = "run", *tasks: str) -> subprocess.Popen:
    """A helper process that holds DIRECTORY's lock (or only ``tasks``' locks) until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory), kind, *tasks], stdout=subprocess.PIPE,
                            text=True, env=env())
    assert proc.stdout.readline().strip() == "held"
    return proc


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def one_error_line(output: str) -> str:
    """The output is exactly one ``Error:`` line and no traceback (the CLI's contract for a user's mistake)."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert "Traceback" not in output and len(lines) == 1 and lines[0].startswith("Error: "), output[-2000:]
    return lines[0]


def test_a_held_lock_refuses_naming_pid_host_and_start_and_sigkill_frees_it(tmp_path):
    run_dir = tmp_path / "run"
    helper = holding(run_dir)
    try:
        held = dirlock.holder(run_dir)
        assert (held.pid, held.host, held.kind, held.released_at) == (helper.pid, socket.gethostname(), "run", None)
        with pytest.raises(dirlock.DirectoryBusy) as refused:
            with dirlock.hold(run_dir, "run"):
                pass
        message = str(refused.value)
        assert f"pid {helper.pid} on {socket.gethostname()}, started {held.started_at}" in message
        assert "`mlbench run`" in message and "\n" not in message
    finally:
        kill(helper)
    assert dirlock.holder(run_dir) is None  # the kernel let go with the process
    assert dirlock.last_writer(run_dir).released_at is None  # killed: it never said it let go
    with dirlock.hold(run_dir, "run"):
        assert dirlock.holder(run_dir).pid == os.getpid()
    assert dirlock.holder(run_dir) is None and dirlock.last_writer(run_dir).released_at is not None


def test_the_jobs_of_one_run_hold_their_own_tasks_and_never_refuse_each_other(tmp_path):
    run_dir = tmp_path / "run"
    driver = holding(run_dir)  # the command driving the run: the directory's lock only
    job = holding(run_dir, "run", "train:resnet10t")
    try:
        with dirlock.hold(run_dir, "run", whole=False, tasks=["train:resnet18"], role="job"):
            assert {w.task for w in dirlock.live_writers(run_dir)} == {None, "train:resnet10t", "train:resnet18"}
        # A second writer of one task refuses, naming the job that holds it; so does a second driver.
        with pytest.raises(dirlock.DirectoryBusy, match=f"train:resnet10t.*a job of `mlbench run` \\(pid {job.pid} "):
            with dirlock.hold(run_dir, "run", whole=False, tasks=["train:resnet10t"], role="job"):
                pass
        with pytest.raises(dirlock.DirectoryBusy, match=f"pid {driver.pid} "):
            with dirlock.hold(run_dir, "run", tasks=["train:resnet10t"]):
                pass
        kill(driver)
        # A whole run refused on one task keeps none of the locks it had taken before it.
        with pytest.raises(dirlock.DirectoryBusy, match=f"pid {job.pid} "):
            with dirlock.hold(run_dir, "run", tasks=["ensembles", "train:resnet10t"]):
                pass
        assert dirlock.holder(run_dir) is None and dirlock.holder(run_dir, "ensembles") is None
    finally:
        for proc in (driver, job):
            if proc.poll() is None:
                kill(proc)


def test_a_record_from_outside_is_never_quoted(tmp_path):
    run_dir = tmp_path / "run"
    helper = holding(run_dir)
    try:
        write_json(run_dir / dirlock.WRITER_DIR / "dir.json", {"pid": "1; rm -rf /", "host": "evil\nhost",
                                                               "kind": "[red]run", "started_at": "yesterday"})
        with pytest.raises(dirlock.DirectoryBusy) as refused:
            with dirlock.hold(run_dir, "run"):
                pass
        message = str(refused.value)
        assert "evil" not in message and "rm -rf" not in message and "yesterday" not in message
        assert "another process" in message and "\n" not in message
    finally:
        kill(helper)


def test_a_grid_directory_is_refused_as_a_run_directory_and_back(tmp_path):
    with dirlock.hold(tmp_path / "grid", "grid"):
        pass
    with pytest.raises(dirlock.DirectoryKindError, match="is a grid directory .* not a run directory"):
        with dirlock.hold(tmp_path / "grid", "run"):
            pass
    with dirlock.hold(tmp_path / "run", "run", tasks=["ensembles"]):
        pass
    with pytest.raises(dirlock.DirectoryKindError, match="is a run directory .* not a grid directory"):
        with dirlock.hold(tmp_path / "run", "grid"):
            pass


def test_two_real_runs_on_one_run_dir_the_second_refuses_and_runs_once_the_first_is_killed(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "mlbench", *RUN_ARGS, "--out", str(run_dir)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    try:
        deadline = time.monotonic() + 240
        while (dirlock.holder(run_dir) is None or dirlock.holder(run_dir).pid != first.pid):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGSTOP)  # frozen while it holds the lock: it cannot finish meanwhile
        started = dirlock.holder(run_dir).started_at
        second = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=240)
        assert second.returncode == 1
        line = one_error_line(second.stdout + second.stderr)
        assert f"{run_dir}: already being written by `mlbench run` (pid {first.pid} on {socket.gethostname()}, " \
               f"started {started})" in line
    finally:
        kill(first)
    third = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=400)
    assert third.returncode == 0, (third.stdout + third.stderr)[-3000:]
    assert RunDir(run_dir).leaderboard_file.is_file() and RunDir(run_dir).manifest().get("finished_at")
    assert dirlock.last_writer(run_dir).released_at is not None and dirlock.holder(run_dir) is None
