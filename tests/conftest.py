"""Test settings: never touch the network, keep torch to the machine's cores, share small fixtures."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub: hub calls fail fast

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures" / "mert"


@pytest.fixture
def compose_config(tmp_path):
    """Compose the run config as ``python -m benchmark run`` would, with data, cache and results in tmp."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    def _compose(*overrides: str) -> dict:
        base = [f"data_root={tmp_path / 'data'}", f"cache_dir={tmp_path / 'cache'}",
                f"results_dir={tmp_path / 'results'}", "num_workers=0"]
        with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[*base, *overrides])
        return OmegaConf.to_container(cfg, resolve=True)

    return _compose
