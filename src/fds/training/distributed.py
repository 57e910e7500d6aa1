"""Training one model over several processes with torch.distributed (launched by `torchrun`).

`torchrun --nproc-per-node K -m fds train …` starts K copies of the command; each finds its rank in
the environment (RANK, WORLD_SIZE, LOCAL_RANK, set by torchrun), joins one process group (gloo on
CPU, NCCL on GPUs) and trains the same model with DistributedDataParallel, which averages the
gradients of every step across the ranks.

The batch: the config's `batch_size` is the batch of ONE process, as in PyTorch's DDP and
Lightning, so a step of K processes trains on a global batch of K × batch_size rows, every rank
costs what one process costs per step, and K processes get through an epoch in about 1/K of the
steps. (When `batch_size` was the global batch, each rank trained on batch_size / K rows; a step's
fixed costs, the full Adam update on every rank and the all-reduce, then ate the gain: 0.62× one
process on the core benchmark's model, docs/benchmarks.md.) The learning rate is used as given; to
train the model one process trains with batch B, give K processes batch_size B / K.

Why the ranks split each global batch instead of each drawing their own: epoch e's permutation
depends only on (seed, e), so every rank computes the same one (as torch's DistributedSampler
does), and rank r trains on rows r, r+K, … of each global batch. The mean of the K ranks' batch
means is then the global batch's mean: K processes at batch_size b train the model one process
trains at batch_size K × b, up to the order of floating-point sums (the all-reduce adds in another
order) and the noise of the posterior samples (each rank draws its own). Under DP-SGD, rank r owns
the training positions p with p mod K = r, and keeps the rows of the global Poisson batch it owns,
so the K local batches together are exactly the batch a single process would draw at the global
batch size, with the sample rate q = global batch / global N the accountant uses.

Local SGD (`distributed: {sync_every: K}`, K > 1; Lin et al. 2020, "Don't use large
mini-batches, use local SGD"): no DDP; each rank steps on its own rows of every global batch
with its own Adam, and every K steps the ranks average their weights (one all-reduce of the
weights per K steps instead of one of the gradients per step, and no per-step wait for the
slowest rank). The first `warmup_steps` steps average the gradients instead, as DDP does
(post-local SGD). Whatever is validated, checkpointed or saved is one model: at every epoch's end
(and before an interrupted run's checkpoint) `settle` averages the weights, buffers and the
optimizers' moments, so every rank holds what rank 0 writes, and a resumed run continues as the
uninterrupted one did. torch ships the averaging step as
`torch.distributed.algorithms.model_averaging` (PeriodicModelAverager); it replaces each
parameter's storage, where this averages in place (the optimizers keep their tensors) and
averages the optimizers' state too.

`Single` is the same interface for one process (identities), so the Trainer calls it without
branching. A batch source with `shard(rank, world_size)` (a streamed table) is handed its shard
by `shard_source`; in-memory and memory-mapped `Rows` are sharded batch by batch.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from fds.config import DistributedConfig
from fds.data.stream import BatchSource, Rows
from fds.errors import ConfigError

Device = Literal["auto", "cpu", "cuda"]
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# how long a rank waits for the others (a checkpoint being written, a slow rank) before failing
TIMEOUT = datetime.timedelta(minutes=30)


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher setting its variables)."""
    return all(name in os.environ for name in LAUNCH_VARIABLES)


def env_rank() -> int:
    """This process's rank as the launcher set it (0 when not launched): rank 0 prints."""
    return int(os.environ.get("RANK", "0"))


def resolve_device(device: Device, local_rank: int = 0) -> torch.device:
    """`auto`: CUDA when a GPU is visible, else CPU; `cuda` without a GPU is a ConfigError."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for, but torch sees no CUDA device here")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


class Single:
    """One process: no sharding, no communication."""

    rank, world_size, main = 0, 1, True
    sync_every, warmup_steps = 1, 0  # as a checkpoint records them (local SGD: Distributed)

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def loss_terms(self, model: nn.Module) -> Callable[..., dict[str, torch.Tensor]]:
        return model.loss_terms

    def local(self, positions: np.ndarray) -> np.ndarray:
        return positions

    def owned(self, positions: np.ndarray) -> np.ndarray:
        return positions

    def shard_rows(self, rows: Rows) -> Rows:
        return rows

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        return values

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        return values

    def broadcast(self, value: int) -> int:
        return value

    def start_epoch(self, seed: int, epoch: int) -> None:
        return None

    def synchronize(self, model: nn.Module) -> None:
        return None

    def after_backward(self, model: nn.Module, step: int) -> None:
        return None

    def after_step(self, model: nn.Module, step: int) -> None:
        return None

    def settle(
        self,
        model: nn.Module,
        optimizers: Iterable[torch.optim.Optimizer],
        averages: list[torch.Tensor] | None = None,
    ) -> None:
        return None

    def barrier(self) -> None:
        return None


class Distributed(Single):
    """Rank `rank` of `world_size` processes in the default process group."""

    def __init__(self, device: torch.device, sync: DistributedConfig | None = None) -> None:
        super().__init__(device)
        self.rank = torch.distributed.get_rank()
        self.world_size = torch.distributed.get_world_size()
        self.main = self.rank == 0
        sync = sync or DistributedConfig()
        self.sync_every, self.warmup_steps = sync.sync_every, sync.warmup_steps

    def loss_terms(self, model: nn.Module) -> Callable[..., dict[str, torch.Tensor]]:
        """`model.loss_terms` through DistributedDataParallel, whose backward averages the
        gradients over the ranks (its constructor also copies rank 0's weights to all); under
        local SGD `model.loss_terms` itself, after copying rank 0's weights to all."""
        if model.optimizer_groups():
            names = ", ".join(group.name for group, _ in model.optimizer_groups())
            raise ConfigError(
                f"distributed training does not support models with their own optimizer "
                f"groups yet ({names}); train this preset in one process"
            )
        if self.sync_every > 1:
            self.synchronize(model)
            return model.loss_terms
        ids = [self.device.index] if self.device.type == "cuda" else None
        # gradients as views into the all-reduce buckets: one copy of them fewer per step
        return nn.parallel.DistributedDataParallel(
            _LossTerms(model), device_ids=ids, gradient_as_bucket_view=True
        )

    def local(self, positions: np.ndarray) -> np.ndarray:
        """This rank's rows of one global batch: every world_size-th, from its rank."""
        return positions[self.rank :: self.world_size]

    def owned(self, positions: np.ndarray) -> np.ndarray:
        """The positions of this rank's fixed shard (p mod world_size = rank), for DP-SGD."""
        return positions[positions % self.world_size == self.rank]

    def shard_rows(self, rows: Rows) -> Rows:
        """This rank's share of `rows` (validation), the same every epoch."""
        index = rows.index[self.rank :: self.world_size]
        return Rows(rows.source, index, rows.encode, rows.attributes)

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """Each value summed over the ranks (every rank passes the same keys)."""
        names = sorted(values)
        packed = torch.tensor([values[n] for n in names], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(packed)
        reduced = dict(zip(names, packed.tolist(), strict=True))
        return {name: reduced[name] for name in values}  # in the caller's order

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        return {k: v / self.world_size for k, v in self.sum(values).items()}

    def broadcast(self, value: int) -> int:
        """Rank 0's `value` on every rank (a secret key drawn on rank 0 only)."""
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def start_epoch(self, seed: int, epoch: int) -> None:
        """Ranks other than 0 reseed torch (posterior noise, dropout) from (seed, rank, epoch):
        their draws differ from rank 0's, and a run resumed at an epoch's start draws the same
        noise as an uninterrupted one (rank 0's state is the one the checkpoint keeps)."""
        if self.rank:
            torch.manual_seed(
                int(np.random.SeedSequence((seed, self.rank, epoch)).generate_state(1)[0])
            )

    def synchronize(self, model: nn.Module) -> None:
        """Copy rank 0's parameters to every rank."""
        with torch.no_grad():
            for parameter in model.parameters():
                torch.distributed.broadcast(parameter.data, 0)

    def after_backward(self, model: nn.Module, step: int) -> None:
        """Local SGD's warm-up steps: average the gradients, as DDP would have."""
        if self.sync_every > 1 and step < self.warmup_steps:
            self._average([p.grad for p in model.parameters() if p.grad is not None])

    def after_step(self, model: nn.Module, step: int) -> None:
        """Local SGD: average the weights after every `sync_every`-th step past the warm-up
        (`step` counts from 0 over the whole run, so a resumed run syncs where the first would)."""
        local = step - self.warmup_steps + 1
        if self.sync_every > 1 and local > 0 and local % self.sync_every == 0:
            self._average(_model_tensors(model))

    def settle(
        self,
        model: nn.Module,
        optimizers: Iterable[torch.optim.Optimizer],
        averages: list[torch.Tensor] | None = None,
    ) -> None:
        """Local SGD: make every rank hold the same model and optimizer state (the averages),
        before anything is validated, checkpointed or saved. DDP's ranks are equal already.
        `averages`: more tensors to average alike (the weights' moving average, ema_decay: the
        mean of the ranks' averages is the average of their mean weights, an EMA being linear)."""
        if self.sync_every > 1:
            moments = [
                value
                for optimizer in optimizers
                for state in optimizer.state.values()
                for value in state.values()
                if isinstance(value, torch.Tensor) and value.is_floating_point()
            ]
            self._average(_model_tensors(model) + moments + list(averages or []))

    def _average(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its mean over the ranks, in place, with one all-reduce."""
        if not tensors:
            return
        with torch.no_grad():
            flat = torch.cat([t.reshape(-1).float() for t in tensors])
            torch.distributed.all_reduce(flat)
            flat /= self.world_size
            offset = 0
            for t in tensors:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()

    def barrier(self) -> None:
        torch.distributed.barrier()


def _model_tensors(model: nn.Module) -> list[torch.Tensor]:
    """What local SGD averages: the parameters and the floating-point buffers (running
    statistics; buffers every rank holds equal stay equal)."""
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    return [p.data for p in model.parameters()] + buffers


class _LossTerms(nn.Module):
    """`model.loss_terms` as a forward pass, the call DistributedDataParallel synchronizes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        return self.model.loss_terms(x, **kwargs)


def current(device: Device = "auto", sync: DistributedConfig | None = None) -> Single:
    """The running process group as a `Distributed` that keeps the ranks' models together as
    `sync` says, or `Single` outside one (or with one rank)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        cuda = dist.get_backend() == "nccl"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return Distributed(resolve_device("cuda" if cuda else "cpu", local_rank), sync)
    return Single(resolve_device(device))


def shard_source(source: BatchSource, world: Single) -> BatchSource:
    """A streamed table gets its rank's shard of row groups; in-memory `Rows` stay whole (they
    are sharded batch by batch, so the ranks together see the single process's batches)."""
    if world.world_size > 1 and not isinstance(source, Rows):
        return source.shard(world.rank, world.world_size)
    return source


@contextmanager
def session(device: Device = "auto") -> Iterator[Single]:
    """Join the process group when launched by torchrun (gloo on CPU, NCCL on CUDA) and leave it
    at the end, also on errors; a plain `Single` otherwise. The ranks meet at a last barrier, so
    none leaves while rank 0 still writes the model."""
    if not launched() or int(os.environ["WORLD_SIZE"]) < 2 or torch.distributed.is_initialized():
        yield current(device)
        return
    local_rank = int(os.environ["LOCAL_RANK"])
    target = resolve_device(device, local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    backend = "nccl" if target.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, timeout=TIMEOUT)
    try:
        world = current(device)
        yield world
        world.barrier()
    finally:
        torch.distributed.destroy_process_group()


def check_resume(loop: dict[str, Any], world: Single, global_batch: int, path: Any) -> None:
    """A checkpoint resumes only with the world size that wrote it and the same global batch
    (world size × batch_size): its epochs were cut into batches of that many rows. Checkpoints of
    one process from before the global batch was recorded had global batch = batch_size; those
    of several processes had batch_size split over them, which this version no longer does."""
    saved = loop.get("world_size") or 1
    if saved != world.world_size:
        raise ConfigError(
            f"{path} was written by a run of {saved} process(es); resume it with the same "
            f"number (torchrun --nproc-per-node/--nnodes), not {world.world_size}"
        )
    saved_batch = loop.get("global_batch", global_batch if saved == 1 else None)
    if saved_batch is None:
        raise ConfigError(
            f"{path} was written when batch_size was the global batch of all processes (it is "
            f"now each process's batch); it cannot be resumed, train it again"
        )
    if saved_batch != global_batch:
        raise ConfigError(
            f"{path} was trained on global batches of {saved_batch} rows; this run's would have "
            f"{global_batch} ({world.world_size} process(es) × batch_size); resume with the "
            f"batch_size it was written with"
        )
