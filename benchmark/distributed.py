"""One run on several devices or nodes: Lightning starts the processes, the suite splits the work between them.

Why Lightning and not a home-made scheduler: researchers already run Lightning's DDP on their clusters, and its
cluster environments (SLURM, torchrun, a single machine) find the ranks, devices and rendezvous address for us.

How a run uses it (``trainer.devices=N trainer.num_nodes=M``, see :func:`distributed_settings`):

- :func:`launch` starts ``N x M`` processes with Lightning Fabric, or joins them when the cluster already started
  them (``srun`` with one task per device, ``torchrun``); every process runs the same run with its :class:`Ranks`.
- Extraction: the cache shards still to compute are dealt out to the ranks (round robin), each rank commits its
  own shards atomically, and rank 0 merges them once all are done. A shard's rows depend on its tracks only, so
  the cache equals a single-process one and a rerun with another N reuses every finished shard.
- Probing: Lightning's DDP strategy, in the process group Fabric made. Every global batch of the single-process
  run is split between the ranks (see :class:`benchmark.sweep.EpochShuffledBatches`), so the ranks together take
  the same optimisation steps. Validation and test predictions are gathered across ranks
  (:meth:`Ranks.gather_rows`) before anything is scored: a macro ROC-AUC needs every prediction, not a mean of
  per-rank scores.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import numpy as np
import torch

from benchmark.errors import ConfigError

# How long a rank may wait for the others at a barrier: extraction of a split ends with one (rank 0 also merges
# the shards then), and another job of a sweep may hold the split's lock for hours.
PROCESS_GROUP_TIMEOUT = timedelta(hours=12)
STRATEGIES = ("ddp", "auto")  # auto = ddp when there are several processes


@dataclass(frozen=True)
class DistributedSettings:
    """Where the processes of one run live: ``devices`` per node on ``num_nodes`` nodes of ``accelerator``."""

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "ddp"

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes


def distributed_settings(trainer_cfg: dict[str, Any]) -> DistributedSettings:
    """``trainer.devices`` / ``num_nodes`` / ``strategy`` / ``accelerator`` checked, with the fix in the error."""
    values = {}
    for key in ("devices", "num_nodes"):
        value = trainer_cfg.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"trainer.{key}={value!r}: must be a whole number >= 1 (processes per node for "
                              "devices, machines for num_nodes), e.g. trainer.devices=4 trainer.num_nodes=2")
        values[key] = value
    strategy = trainer_cfg.get("strategy", "ddp")
    if strategy not in STRATEGIES:
        raise ConfigError(f"trainer.strategy={strategy!r}: this suite runs several devices with {STRATEGIES} "
                          "(Lightning DDP: data parallel extraction and probing); use trainer.strategy=ddp")
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator not in ("auto", "cpu", "gpu", "cuda"):
        raise ConfigError(f"trainer.accelerator={accelerator!r}: expected auto, cpu, gpu or cuda")
    return DistributedSettings(accelerator=accelerator, devices=values["devices"], num_nodes=values["num_nodes"],
                               strategy=strategy)


def chunk_bounds(num_rows: int, world_size: int) -> list[tuple[int, int]]:
    """Contiguous, balanced ``[start, end)`` row ranges, one per rank, in rank order (their concatenation is
    ``0..num_rows``); used for the part of a batch, or of an evaluation split, that each rank computes."""
    edges = np.linspace(0, num_rows, world_size + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


class Ranks:
    """This process's place among the processes of a run, and the collective steps the suite needs.

    The default instance is a lone process (every operation is the identity), so the single-process code path
    is the same code with nothing to gather.
    """

    def __init__(self, fabric: Any = None) -> None:
        self.fabric = fabric

    @property
    def rank(self) -> int:
        return 0 if self.fabric is None else int(self.fabric.global_rank)

    @property
    def world_size(self) -> int:
        return 1 if self.fabric is None else int(self.fabric.world_size)

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device | None:
        """The device Lightning gave this rank (``cuda:<local rank>`` or the CPU); None for a lone process."""
        return None if self.fabric is None else self.fabric.device

    @property
    def cluster_environment(self) -> Any:
        """The Lightning cluster environment the processes were started under (None for a lone process): the
        probe Trainer is given the same one, so it joins these processes instead of reading ranks elsewhere."""
        return None if self.fabric is None else self.fabric.strategy.cluster_environment

    def barrier(self) -> None:
        if self.fabric is not None:
            self.fabric.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (what rank 0 read from disk is what every rank acts on)."""
        return obj if self.fabric is None else self.fabric.broadcast(obj, src=0)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.fabric is None:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def gather_rows(self, local: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's ``[H, rows_r, C]`` along the rows, in rank order, on every rank."""
        if self.fabric is None:
            return local
        return gather_rows(local.to(self.fabric.device))


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """``[H, rows_r, C]`` on each rank of the default process group -> ``[H, sum(rows_r), C]`` (CPU) in rank
    order, on every rank. Ranks may hold different row counts: each pads to the largest, the padding is cut off.
    ``local`` must be on the device the backend uses (CUDA for NCCL, any for gloo)."""
    dist = torch.distributed
    world = dist.get_world_size()
    count = torch.tensor([local.shape[1]], device=local.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    padded = torch.zeros((local.shape[0], max(sizes), *local.shape[2:]), dtype=local.dtype, device=local.device)
    padded[:, :local.shape[1]] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:, :n] for part, n in zip(parts, sizes)], dim=1).cpu()


def processes_started_externally() -> bool:
    """True when a cluster already started one process per device (``srun`` tasks, ``torchrun``).

    A SLURM job with one task (an ``sbatch`` script that runs the command without ``srun``) did not: its
    processes are spawned here, as on any machine.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    slurm_tasks = SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) > 1
    return slurm_tasks or TorchElasticEnvironment.detect() or "LOCAL_RANK" in os.environ


def launch(settings: DistributedSettings, function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(ranks, *args)`` in every process of the run; return rank 0's result.

    On one machine Lightning spawns the processes (``ddp`` with the spawn start method: it works the same from
    the command line, a Hydra sweep, a submitit job or a test). Under SLURM or torchrun the processes exist
    already and each joins the group (``ddp``). Accelerator ``cpu`` uses the gloo backend, GPUs use NCCL.
    """
    from lightning.fabric import Fabric
    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.fabric.strategies import DDPStrategy

    if processes_started_externally():  # Lightning finds the cluster's environment (SLURM, torchelastic)
        strategy = DDPStrategy(start_method="popen", timeout=PROCESS_GROUP_TIMEOUT)
    else:  # spawned here; the plain environment, even inside a one-task SLURM job
        strategy = DDPStrategy(start_method="spawn", timeout=PROCESS_GROUP_TIMEOUT,
                               cluster_environment=LightningEnvironment())
    fabric = Fabric(accelerator=settings.accelerator, devices=settings.devices, num_nodes=settings.num_nodes,
                    strategy=strategy)
    return fabric.launch(_in_rank, function, *args)


def _in_rank(fabric: Any, function: Callable[..., Any], *args: Any) -> Any:
    """Entry of every rank: expose the ranks as Lightning's own environment variables, so the probe Trainer
    (``strategy=ddp``) joins this process group instead of starting processes of its own."""
    os.environ["LOCAL_RANK"] = str(fabric.local_rank)
    os.environ["NODE_RANK"] = str(fabric.node_rank)
    os.environ["WORLD_SIZE"] = str(fabric.world_size)
    result = function(Ranks(fabric), *args)
    # Leave together and close the process group before the interpreter exits: a gloo group torn down by
    # interpreter shutdown while another rank is still leaving can abort the process ("terminate called
    # without an active exception"), which would turn a finished run into a failed one.
    fabric.barrier()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


SINGLE_PROCESS = Ranks()
