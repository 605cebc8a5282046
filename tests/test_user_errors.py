"""Every error a user can cause or fix reaches them as one message naming the fix, never as a Python traceback.

Each case runs the real command line (``python -m benchmark ...``) in a fresh process and checks the exit status,
that no traceback is printed and that the message names the fix. Faults that cannot be produced for real on any
machine (a full disk, Ctrl-C at a given point) are raised inside the real ``main()`` by a one-line patch of the
first step of a run. The processes run concurrently: each spends most of its time importing torch.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# A run whose first step (building the task) raises ``exc``: what a full disk or a Ctrl-C anywhere in a job is.
FAULT = """
import sys, errno
import benchmark.runner as runner
def fault(*args, **kwargs):
    raise {exc}
runner.build_task = fault
from benchmark.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cases(tmp: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (argv after the interpreter, extra environment)."""
    run = ["run", "task=synth_key", "model=mfcc", f"data_root={tmp / 'data'}", f"cache_dir={tmp / 'cache'}",
           f"results_dir={tmp / 'results'}"]
    song = tmp / "song.wav"
    sf.write(song, (0.1 * np.sin(np.arange(16000) / 5)).astype("float32"), 16000)
    corrupt = tmp / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(200)))

    def fault(exc: str) -> list[str]:
        return ["-c", FAULT.format(exc=exc), *run]

    return {
        "unknown task": (["-m", "benchmark", "run", "task=nope"], {}),
        "unknown key": (["-m", "benchmark", "run", "trainer.max_epoch=3"], {}),
        "invalid value": (["-m", "benchmark", *run, "trainer.max_epochs=0"], {}),
        "missing dataset": (["-m", "benchmark", "run", "task=gtzan", "model=mfcc", f"data_root={tmp / 'none'}",
                             f"cache_dir={tmp / 'cache'}", f"results_dir={tmp / 'results'}"], {}),
        "hub unreachable": (["-m", "benchmark", "embed", "model=mert-v1-95m", f"input={song}", f"out={tmp / 'o'}"],
                            {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf")}),
        "unreadable input": (["-m", "benchmark", "embed", "model=mfcc", f"input={corrupt}", f"out={tmp / 'o'}"], {}),
        "missing embed input": (["-m", "benchmark", "embed", "model=mfcc", f"input={tmp / 'missing.wav'}",
                                 f"out={tmp / 'o'}"], {}),
        "embed input not given": (["-m", "benchmark", "embed", "model=mfcc"], {}),
        "permission denied": (["-m", "benchmark", *run[:-1], "results_dir=/sys/benchmark-results"], {}),
        "disk full": (fault("OSError(errno.ENOSPC, 'No space left on device', '/big/cache/x.f16')"), {}),
        "interrupted": (fault("KeyboardInterrupt()"), {}),
        "bug": (fault("ZeroDivisionError('a bug')"), {}),
        "full error": (["-m", "benchmark", "run", "task=gtzan", "model=mfcc", f"data_root={tmp / 'none'}",
                        f"cache_dir={tmp / 'cache'}", f"results_dir={tmp / 'results'}"], {"HYDRA_FULL_ERROR": "1"}),
        # the mission command, with neither the data nor the hub (defaults for every path, in the empty tmp folder)
        "mission command": (["-m", "benchmark", "run", "task=gtzan", "model=mert-v1-330m"],
                            {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf-mission")}),
    }


# name -> (exit status, text the message must hold)
EXPECTED = {
    "unknown task": (1, "Available options in 'task'"),
    "unknown key": (1, "trainer.max_epoch"),
    "invalid value": (1, "trainer.max_epochs=0"),
    "missing dataset": (1, "python -m benchmark prepare gtzan"),
    "hub unreachable": (1, "model.checkpoint="),
    "unreadable input": (1, "cannot decode audio file"),
    "missing embed input": (1, "no such file or folder"),
    "embed input not given": (1, "embed needs input= and out="),
    "permission denied": (1, "results_dir=/sys/benchmark-results is not writable"),
    "disk full": (1, "/big/cache/x.f16: the disk is full"),
    "interrupted": (130, "run the same command again to resume"),
}


# Cases whose processes run under -m slow (about 20 s of the default suite's time): embed's input errors, the
# unreachable hub (the mission command below still meets it by default) and the two traceback cases. The default
# half covers config, data, storage and interrupt errors on the real command line.
SLOW_CASES = {"hub unreachable", "unreadable input", "missing embed input", "embed input not given", "bug",
              "full error"}


def _outcomes(tmp: Path, names: set[str]) -> dict[str, subprocess.CompletedProcess]:
    """Run the cases ``names`` at once, each in its own process, and wait for all."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    # The cases run at once and share these folders: each run's writability check creates a missing folder and
    # removes it again, which would race with another process's check of the same folder.
    for shared in ("cache", "results"):
        (tmp / shared).mkdir(exist_ok=True)
    procs = {}
    for name, (argv, extra) in _cases(tmp).items():
        if name in names:
            procs[name] = subprocess.Popen([sys.executable, *argv], cwd=tmp, env={**env, **extra}, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("user_errors")
    return _outcomes(tmp, set(_cases(tmp)) - SLOW_CASES)


@pytest.fixture(scope="module")
def slow_outcomes(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    return _outcomes(tmp_path_factory.mktemp("user_errors_slow"), SLOW_CASES)


def _one_message(result: subprocess.CompletedProcess, name: str) -> None:
    status, text = EXPECTED[name]
    printed = result.stdout + result.stderr
    assert result.returncode == status, printed
    assert "Traceback" not in printed and 'File "' not in printed, printed
    assert text in printed, printed


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - SLOW_CASES))
def test_user_error_is_one_message_with_the_fix_and_no_traceback(outcomes, name):
    _one_message(outcomes[name], name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(EXPECTED) & SLOW_CASES))
def test_embed_and_hub_errors_are_one_message_with_the_fix(slow_outcomes, name):
    _one_message(slow_outcomes[name], name)


@pytest.mark.slow
def test_a_bug_keeps_its_traceback(slow_outcomes):
    result = slow_outcomes["bug"]
    assert result.returncode != 0
    assert "ZeroDivisionError: a bug" in result.stderr and "fault" in result.stderr


@pytest.mark.slow
def test_hydra_full_error_shows_the_traceback_of_a_user_error(slow_outcomes):
    result = slow_outcomes["full error"]
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "DatasetMissingError" in result.stderr


def test_the_mission_command_without_network_names_the_fix(outcomes):
    """``python -m benchmark run task=gtzan model=mert-v1-330m`` on a machine with neither the data nor the hub (run
    with the other cases, concurrently)."""
    result = outcomes["mission command"]
    printed = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in printed, printed
    assert "error: " in result.stderr and ("prepare gtzan" in printed or "model.checkpoint" in printed), printed
