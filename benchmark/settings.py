"""The probe and trainer settings as typed objects: the one place their defaults live in code.

Why: the sweep used to read ``trainer_cfg.get("lr_decay_patience", 0)`` while ``configs/trainer/default.yaml``
said 5, so anything calling the sweep with a partial config (the speed benchmark, a notebook) trained a
different schedule from a real run. Code now reads these dataclasses; ``tests/test_settings.py`` checks that their
defaults equal the committed config files, so the YAML a user reads and the code cannot disagree.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

S = TypeVar("S", bound="_Settings")


class _Settings:
    @classmethod
    def from_config(cls: type[S], cfg: Mapping[str, Any] | None) -> S:
        """The settings in ``cfg`` (a group of the composed run config), the defaults for keys it leaves out.

        Keys this class does not know are ignored here: Hydra refuses unknown keys when the config is composed,
        and callers may pass a richer mapping. Values are checked by :func:`benchmark.sweep.check_sweep_config`.
        """
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in (cfg or {}).items() if k in known})  # type: ignore[call-arg]


@dataclass
class TrainerSettings(_Settings):
    """``trainer.*``: how every probe head is trained (configs/trainer/default.yaml documents each key)."""

    max_epochs: int = 100
    patience: int = 10
    lr_decay_patience: int = 5
    lr_decay_factor: float = 0.5
    # how the two counters above count (see benchmark.probe.ScheduleRule): suite | reduce_on_plateau
    lr_decay_rule: str = "suite"
    lr_decay_threshold: float = 0.0  # relative improvement the reduce_on_plateau rule needs (torch's threshold)
    stop_on_non_finite: bool = False  # a non-finite validation score stops a head (Lightning's check_finite)
    batch_size: int = 64
    batch_unit: str = "rows"  # rows | tracks: what trainer.batch_size counts
    accelerator: str = "auto"
    devices: int = 1
    precision: Any = "32-true"
    deterministic: bool = True
    progress_bar: bool = False
    num_nodes: int = 1
    strategy: str = "ddp"


@dataclass
class ProbeSettings(_Settings):
    """``probe.*``: the heads of the sweep (configs/probe/mlp.yaml documents each key; linear sets hidden 0)."""

    name: str = "mlp"
    hidden: int = 512
    dropout: float = 0.2
    lr: Any = field(default_factory=lambda: [1.0e-3])
    weight_decay: float = 0.0
    weighted_sum: bool = True
    weighted_sum_layers: str = "all"  # all | transformer (hidden states 1..L, without the embedding output 0)
    weighted_sum_init: str = "uniform"  # uniform (zero logits) | randn (standard normal logits, seeded per head)
    standardize: bool = True

    @property
    def learning_rates(self) -> list[float]:
        """``lr`` as a list: one head per rate (a single number is one rate)."""
        return [float(x) for x in (self.lr if isinstance(self.lr, (list, tuple)) else [self.lr])]
