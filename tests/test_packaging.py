"""The suite is a real package: ``pip install .`` gives one import name with its configs, manifests and
reference tables, and the installed copy runs from an empty folder, writing only below it.

The wheel is built from the git-tracked files alone (copied to a temporary folder), so a file that works in the
checkout only because it lies there untracked, or data a user downloaded into ``datasets/``, cannot hide a gap.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# checkout folder -> where it lands in the installed package (every committed file of these must ship)
DATA_PACKAGES = {"benchmark": "benchmark", "configs": "benchmark/configs", "datasets": "benchmark/datasets",
                 "results/reference": "benchmark/reference", "tasks": "benchmark/tasks"}


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                         capture_output=True, check=True)
    return [f for f in out.stdout.decode().split("\0") if f and (REPO_ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built, without the network, from a copy of the files git tracks (or would: new, not ignored)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for rel in _tracked_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, src / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(root / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    return next((root / "dist").glob("mir_probe_benchmark-*.whl"))


def test_wheel_has_one_import_name_and_ships_every_committed_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {n.split("/")[0] for n in names} - {"benchmark"}
    assert len(top) == 1 and top.pop().endswith(".dist-info")  # no `tasks`, `configs` or `datasets` at the top
    tracked = _tracked_files()
    for folder, installed in DATA_PACKAGES.items():
        committed = [f for f in tracked if f.startswith(folder + "/") and not f.endswith(".pyc")]
        assert committed, folder
        missing = [f for f in committed if f"{installed}/{f[len(folder) + 1:]}" not in names]
        assert not missing, f"not shipped in the wheel: {missing}"
    shipped = {n for n in names if n.startswith("benchmark/datasets/")}
    assert not [n for n in shipped if n.endswith((".wav", ".mp3", ".f16"))]  # manifests only, never audio
    assert "benchmark/encoders/arch/mert-v1-95m.json" in names


@pytest.mark.slow
def test_installed_wheel_runs_the_main_job_from_an_empty_folder(wheel, tmp_path):
    """``pip install <wheel>`` into a fresh venv (its dependencies borrowed from this interpreter), then the
    README's main job from an empty folder: it finds its configs inside the venv and writes below that folder."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    where = subprocess.run([str(python), "-c", "from benchmark.resources import config_dir, manifest_root; "
                            "print(config_dir()); print(manifest_root())"], cwd=work, env=env,
                           capture_output=True, text=True, check=True)
    assert all(line.startswith(str(venv)) for line in where.stdout.split()), where.stdout
    result = subprocess.run([str(python), "-m", "benchmark", "run", "task=synth_chords", "model=crepe-tiny"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selected: layer" in result.stdout and "chance level" in result.stdout
    assert sorted(p.name for p in work.iterdir()) == ["cache", "datasets", "outputs", "results"]  # outputs: Hydra's logs
    assert len(list((work / "results" / "runs" / "synth_chords" / "crepe-tiny").glob("seed0-*.json"))) == 1
    again = subprocess.run([str(python), "-m", "benchmark", "run", "task=synth_chords", "model=crepe-tiny"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "record exists, skipping the run" in again.stdout
    assert "<- selected" in again.stdout  # the existing record's table is shown
