"""The training loop: minibatches in a seeded order, validation each epoch, JSONL log, checkpoints.

The order of batches in epoch e depends only on (seed, e), and the checkpoint stores torch's RNG
state, so a run resumed from any checkpoint reaches the same weights as an uninterrupted one.

With validation rows, the weights of the epoch with the lowest validation loss are kept (in memory
and in the checkpoint) and restored when training ends, so a late spike of the loss is never what
the user gets; `best_epoch` says which epoch they are. Not under DP-SGD: choosing among epochs by
the loss on held-out rows is a use of the data its accountant does not cover, so the last epoch's
weights are kept there. Epochs inside a loss warm-up (kl_warmup_epochs, censor_warmup_epochs,
public_step_warmup_epochs) are not candidates: their losses weigh the terms differently.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from fds.config import FDSConfig, with_training_defaults
from fds.data.stream import BatchSource, Rows
from fds.errors import ConfigError, TrainingDivergedError
from fds.models import FactorizedAutoencoder
from fds.rundir import LAST_CHECKPOINT_FILE, METRICS_FILE, write_text
from fds.runtime.precision import PRECISIONS, choose_precision
from fds.runtime.threads import MAX_THREADS, choose_threads, threads_in_use
from fds.training import distributed
from fds.training.checkpoint import load_checkpoint, save_checkpoint
from fds.training.dp import DPSGD
from fds.training.ema import WeightAverage
from fds.training.optimizers import make_adam
from fds.training.progress import TrainingProgress
from fds.training.schedule import lr_at

# The modules of fds.nn.mlp's networks (what `precision="auto"` may run in bfloat16).
_MLP_PARTS = (nn.Sequential, nn.Linear, nn.ReLU)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after the current step; `on_disk` says which checkpoint was kept."""

    def __init__(self, on_disk: str) -> None:
        super().__init__(on_disk)
        self.on_disk = on_disk


class Trainer:
    """Trains `model` on `train` rows; writes to `run_dir` when given (log and checkpoints)."""

    def __init__(
        self,
        model: FactorizedAutoencoder,
        config: FDSConfig,
        train: BatchSource,
        val: Rows | None = None,
        run_dir: Path | None = None,
        show_progress: bool = True,
        extra_loss: Callable[[FactorizedAutoencoder], torch.Tensor] | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """`extra_loss(model)` is added to every step's loss (e.g. FedProx's proximal term).
        `on_epoch(record)` sees each epoch's metrics.jsonl record once its checkpoint is written
        (experiment trackers, Optuna's pruning); an exception it raises stops training there.
        `self.config` is `config` with the batch size and learning rate filled by data where
        unset (fds.config.TRAINING_DEFAULTS)."""
        config = with_training_defaults(
            config, "table" if model.layout.image_chw is None else "other", rows=len(train)
        )
        # one process, or this rank of a torchrun launch (fds.training.distributed)
        self.world = distributed.current(config.device, config.distributed)
        self.model = model.to(self.world.device)
        self.config, self.val = config, val
        self.train = distributed.shard_source(train, self.world)
        self.extra_loss = extra_loss
        self.on_epoch = on_epoch
        self.run_dir = Path(run_dir) if run_dir else None
        self.show_progress = show_progress
        # "model" (the main optimizer) and one per optimizer group of the model's terms; the
        # names are the checkpoint's, so a run resumes with the optimizers it saved.
        self.optimizers = {
            "model": make_adam(
                model.main_parameters(),
                lr=config.lr,
                weight_decay=config.weight_decay,
                decoupled=config.optimizer == "adamw",
            )
        }
        self.lr_scales = {"model": 1.0}
        for group, params in model.optimizer_groups():
            self.optimizers[group.name] = make_adam(
                params, lr=config.lr * group.lr_scale, betas=group.betas
            )
            self.lr_scales[group.name] = group.lr_scale
        # config.batch_size is per process (PyTorch's and Lightning's convention): a step of K
        # processes trains on a global batch of K × batch_size rows (fds.training.distributed)
        sharded = self.train is not train  # a streamed shard: this rank's own rows
        rank_rows = len(self.train) if sharded else len(train) // self.world.world_size
        if rank_rows < 1:
            raise ConfigError(
                f"{len(train)} training rows cannot feed {self.world.world_size} processes; "
                f"use fewer processes or more rows"
            )
        self.local_batch = min(config.batch_size, rank_rows)
        self.batch_size = self.local_batch * self.world.world_size  # the global batch
        self.steps_per_epoch = len(self.train) // (self.local_batch if sharded else self.batch_size)
        self.total_steps = config.max_steps or config.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None  # the epoch whose weights fit restored (1-based)
        self._best: dict[str, torch.Tensor] | None = None  # those weights, while training
        self._stop_requested = False
        self.saved: dict[str, int] | None = None  # step and epochs done of the checkpoint on disk
        # DP-SGD (config.privacy): Poisson batches, per-example clipping and noise; see dp.py.
        self.dp: DPSGD | None = None
        self.privacy: dict[str, Any] | None = None  # the spent (ε, δ) once fit has run
        if config.privacy is not None:
            if not isinstance(train, Rows):
                raise ConfigError(
                    "DP-SGD draws Poisson batches, which needs random access to the rows: a "
                    "streamed table cannot give it; train on rows in memory or memory-mapped"
                )
            self.dp = DPSGD(
                model,
                self.optimizers["model"],
                config.privacy,
                n_train=len(train),
                batch_size=self.batch_size,
                total_steps=self.total_steps,
                world=self.world,
            )
            self.optimizers["model"] = self.dp.optimizer
        # under torchrun: DDP averages the gradients (DP-SGD: Opacus' DistributedDPOptimizer)
        self._loss_terms = self.world.loss_terms(model) if self.dp is None else model.loss_terms
        # the weights' moving average (config.ema_decay): what is validated, kept and returned
        self.ema = WeightAverage(self.model, config.ema_decay) if config.ema_decay else None

    # ------------------------------------------------------------------ public
    def fit(self, resume: bool = False) -> list[dict[str, Any]]:
        if self.dp is not None and self.dp.closed:
            raise ConfigError(
                "this DP Trainer has already trained: its noise was calibrated for one run's "
                "planned steps; build a new Trainer (and account for both runs together)"
            )
        loop = {"epoch": 0, "batch": 0, "step": 0, "best_val": None, "bad_epochs": 0, "sums": {}}
        loop["best_epoch"] = None
        if resume and self.run_dir is None:
            raise ConfigError("resume needs the run directory (run_dir) that holds the checkpoint")
        if resume and self._path(LAST_CHECKPOINT_FILE).is_file():
            loop = load_checkpoint(
                self._path(LAST_CHECKPOINT_FILE),
                self.model,
                self.optimizers,
                self._generators(),
                ema=self.ema,
            )
            if self.dp is not None:
                self.dp.restore(loop.pop("dp"), reseed=False)
            distributed.check_resume(
                loop, self.world, self.batch_size, self._path(LAST_CHECKPOINT_FILE)
            )
            self.history = loop.pop("history")
            self._best = loop.pop("best_state", None)
            self.saved = {"step": loop["step"], "epochs": loop["epoch"]}
            if self._writes():
                self._truncate_log(len(self.history))
        elif self._writes():  # a new run, or one stopped before its first checkpoint
            self._path(METRICS_FILE).write_text("")
        loop["world_size"], loop["global_batch"] = self.world.world_size, self.batch_size
        loop["sync_every"], loop["warmup_steps"] = self.world.sync_every, self.world.warmup_steps
        with (
            self._catch_interrupt(),
            threads_in_use(self._threads(loop)),
            self._compute_dtype(loop),
            TrainingProgress(self.show_progress, self.epochs, self.batch_size) as progress,
        ):
            while loop["epoch"] < self.epochs and loop["step"] < self.total_steps:
                if self._run_epoch(loop, progress):
                    break
        if self.dp is not None:
            self.privacy = self.dp.record(loop["step"])
            self.dp.close()
        if self.ema is not None:  # the model ends with its averaged weights
            self.ema.copy_to_model()
        self._restore_best(loop)
        self.model.to("cpu")  # the fitted model is used (encode, sample, save) on the CPU
        return self.history

    def _threads(self, loop: dict[str, Any]) -> int:
        """The run's thread count: config.threads if set, else the count the checkpoint's run
        used (the last bits of the weights may depend on it), else one chosen from the cores
        that are free now (fds.runtime.threads). It is kept in the loop state, so checkpoints
        carry it."""
        saved = loop.get("threads")
        if self.config.threads is None and type(saved) is int and 1 <= saved <= MAX_THREADS:
            return saved
        loop["threads"] = choose_threads(self.config.threads, work=self._work())
        return loop["threads"]

    @contextmanager
    def _compute_dtype(self, loop: dict[str, Any]) -> Iterator[None]:
        """Run the networks' passes in the run's number format (fds.runtime.precision) while
        training. The format is kept in the loop state like the thread count: with `auto`, a
        resumed run reuses its checkpoint's (float32 for checkpoints written before the choice
        existed), so it matches an uninterrupted run on any machine."""
        saved = loop.get("precision")
        if saved is None and loop["step"] > 0:
            saved = "float32"
        if self.config.precision != "auto" or saved not in PRECISIONS:
            nets = (self.model.encoder, self.model.decoder)
            saved = choose_precision(
                self.config.precision,
                image=self.model.layout.image_chw is not None,
                mlp=all(isinstance(m, _MLP_PARTS) for net in nets for m in net.modules()),
                private=self.dp is not None,
                work=self._work(),
            )
        loop["precision"] = saved
        self.model.compute_dtype = torch.bfloat16 if saved == "bfloat16" else None
        try:
            yield
        finally:
            self.model.compute_dtype = None

    def _work(self) -> int:
        """Parameters × batch rows: how much a step of this process computes (threads and
        precision read it)."""
        return sum(p.numel() for p in self.model.parameters()) * self.local_batch

    def _restore_best(self, loop: dict[str, Any]) -> None:
        """Load the best validation epoch's weights (the last checkpoint keeps the last ones, so a
        resumed run goes on from where it stopped)."""
        self.best_epoch = loop.get("best_epoch")
        if self._best is not None and self.best_epoch != len(self.history):
            self.model.load_state_dict(self._best)
        self._best = None

    # ------------------------------------------------------------------ epoch
    def _run_epoch(self, loop: dict[str, Any], progress: TrainingProgress) -> bool:
        """One epoch (or its remainder after a resume); returns True when early stopping fires."""
        epoch = loop["epoch"]
        self.world.start_epoch(self.config.seed, epoch)
        started = time.perf_counter()
        self.model.train()
        progress.start_epoch(epoch, self.steps_per_epoch, loop["batch"])
        batches = self._batches(epoch, loop["batch"])
        for b in range(loop["batch"], self.steps_per_epoch):
            if loop["step"] >= self.total_steps:
                break
            x, s = next(batches)
            terms = self._step(x, loop["step"], epoch + b / self.steps_per_epoch, s)
            for name, value in terms.items():
                loop["sums"][name] = loop["sums"].get(name, 0.0) + value
            loop["batch"], loop["step"] = b + 1, loop["step"] + 1
            progress.advance(terms)
            if self._stop_requested:
                self._settle()  # one model to save
                self._checkpoint(loop)
                raise TrainingInterrupted(self.on_disk("a checkpoint"))
        batches.close()  # a streamed source stops reading ahead
        record = self._end_epoch(loop, time.perf_counter() - started)
        progress.end_epoch(record)
        stop = self._early_stop(loop, record)
        if self.on_epoch is not None:
            self.on_epoch(record)
        return stop

    def _batches(
        self, epoch: int, start: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """The epoch's batches from batch `start` on: the source's own order (a streamed shard
        under torchrun); in-memory rows under torchrun, this rank's part of each global batch of
        the single process's permutation; under DP-SGD the Poisson batches (an empty one is
        passed on as zero rows: a noise-only step)."""
        if not isinstance(self.train, Rows) or (self.dp is None and self.world.world_size == 1):
            yield from self.train.epoch_batches(self.local_batch, self.config.seed, epoch, start)
            return
        if self.dp is None:
            order = np.random.default_rng((self.config.seed, epoch)).permutation(len(self.train))
        for b in range(start, self.steps_per_epoch):
            if self.dp is not None:
                positions = self.world.owned(self.dp.batch_positions(epoch, b))
            else:
                positions = self.world.local(order[b * self.batch_size : (b + 1) * self.batch_size])
            x = self.train.take(positions) if len(positions) else self._empty_batch()
            yield x, self.train.attributes_at(positions)

    def _step(
        self, x: torch.Tensor, step: int, epoch_progress: float, s: torch.Tensor | None = None
    ) -> dict[str, float]:
        cfg = self.config
        lr = lr_at(step, self.total_steps, cfg.lr, cfg.lr_schedule)
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = lr * self.lr_scales[name]
        weight = 1.0
        if self.dp is not None and len(x) == 0:
            # An empty Poisson batch still takes a (noise-only) step, as the accounting assumes:
            # one zero row whose loss is weighted 0 contributes a zero gradient.
            x, weight = torch.zeros(1, *x.shape[1:]), 0.0
            s = None if s is None else torch.zeros(1, *s.shape[1:], dtype=s.dtype)
        device = self.world.device
        terms = self._loss_terms(
            x.to(device),
            dataset_size=len(self.train),
            epoch_progress=epoch_progress,
            per_example=self.dp is not None,
            s=None if s is None else s.to(device),
        )
        if self.extra_loss is not None:
            terms["extra"] = self.extra_loss(self.model)
            terms["loss"] = terms["loss"] + terms["extra"]
        if self.dp is not None:
            per_example_loss = terms["loss"] * weight
            terms = {name: value.mean() for name, value in terms.items()}
        values = {name: float(t.detach()) for name, t in terms.items()}
        if not math.isfinite(values["loss"]):
            bad = next((n for n, v in values.items() if not math.isfinite(v)), "loss")
            self._diverged(
                f"loss term {bad!r} became {values[bad]} at epoch {int(epoch_progress) + 1} "
                f"(step {step + 1})"
            )
        main = self.optimizers["model"]
        main.zero_grad(set_to_none=True)
        if self.dp is not None:
            self.dp.backward(per_example_loss)
        else:
            terms["loss"].backward()
        self.world.after_backward(self.model, step)  # local SGD's warm-up: DDP's average
        main.step()
        self.world.after_step(self.model, step)  # local SGD: the weights' average every K steps
        for name, opt in self.optimizers.items():  # the groups' networks, on their own loss
            if name != "model" and name in terms:
                opt.zero_grad(set_to_none=True)
                terms[name].backward()
                opt.step()
        if self.ema is not None:
            self.ema.update(step)
        return values

    def _end_epoch(self, loop: dict[str, Any], seconds: float) -> dict[str, Any]:
        self._settle()
        n = max(1, loop["batch"])
        record: dict[str, Any] = {"epoch": loop["epoch"] + 1, "step": loop["step"]}
        record["lr"] = lr_at(
            loop["step"], self.total_steps, self.config.lr, self.config.lr_schedule
        )
        record |= {f"train_{k}": v / n for k, v in self.world.mean(loop["sums"]).items()}
        if self.val is not None and len(self.val):
            with self._averaged():
                record |= self.validate(self.val)
        elif self.dp is None:  # no validation rows: judge the new weights on one training batch
            with self._averaged():
                check = self.validate(self._first_batch())["val_loss"]
            if not math.isfinite(check):
                self._diverged(
                    f"the loss of one training batch became {check} at epoch "
                    f"{record['epoch']} (after the epoch's last step)"
                )
        bad = next((k for k, v in record.items() if not math.isfinite(v)), None)
        if bad is not None:  # a validation NaN, or a training mean that overflowed
            self._diverged(f"{bad} became {record[bad]} at epoch {record['epoch']}")
        record["seconds"] = round(seconds, 3)
        self.history.append(record)
        loop["epoch"], loop["batch"], loop["sums"] = loop["epoch"] + 1, 0, {}
        if self._writes():
            with self._path(METRICS_FILE).open("a") as log:
                log.write(json.dumps(record) + "\n")
        return record

    def _early_stop(self, loop: dict[str, Any], record: dict[str, Any]) -> bool:
        """Track the best validation epoch (keeping its weights, except under DP); True when
        patience runs out."""
        patience, val = self.config.early_stopping_patience, record.get("val_loss")
        # while a warm-up ramps a term's weight, losses of different epochs are not comparable
        warm = record["epoch"] >= max(
            self.config.kl_warmup_epochs,
            self.config.censor_warmup_epochs,
            self.config.public_step_warmup_epochs,
        )
        keep = self.dp is None
        if val is not None and warm and (keep or patience):
            if loop["best_val"] is None or val < loop["best_val"]:
                loop["best_val"], loop["bad_epochs"] = val, 0
                if keep:
                    loop["best_epoch"] = record["epoch"]
                    with self._averaged():
                        state = self.model.state_dict()
                        self._best = {k: v.detach().clone() for k, v in state.items()}
            else:
                loop["bad_epochs"] += 1
        self._checkpoint(loop)
        return bool(patience) and loop["bad_epochs"] >= patience

    def _settle(self) -> None:
        """Local SGD: the ranks' models (and weight averages) become one before anything is
        validated, kept or saved."""
        averages = self.ema.average if self.ema is not None else []
        self.world.settle(self.model, self.optimizers.values(), averages)

    def _averaged(self) -> AbstractContextManager[None]:
        """The model holds its averaged weights inside the block (its own without ema_decay)."""
        return self.ema.applied() if self.ema is not None else nullcontext()

    @torch.no_grad()
    def validate(self, rows: Rows) -> dict[str, float]:
        """Validation loss and ELBO, with a fixed seed and without touching the training RNG.
        Under torchrun each rank scores its share of the rows and the sums are added up."""
        self.model.eval()
        sums: dict[str, float] = {"val_loss": 0.0, "val_nll": 0.0, "val_elbo": 0.0}
        device = self.world.device
        with torch.random.fork_rng():
            torch.manual_seed(self.config.seed)
            for x, s in self.world.shard_rows(rows).batches_with_attributes(
                max(self.local_batch, 256)
            ):
                x, s = x.to(device), None if s is None else s.to(device)
                terms = self.model.loss_terms(x, dataset_size=len(self.train), s=s)
                sums["val_loss"] += float(terms["loss"]) * len(x)
                sums["val_nll"] += float(terms["nll"]) * len(x)
                sums["val_elbo"] += float(self.model.elbo(x).sum())
        self.model.train()
        return {k: v / len(rows) for k, v in self.world.sum(sums).items()}

    def _first_batch(self) -> Rows:
        return self.train.head(self.batch_size)

    def _empty_batch(self) -> torch.Tensor:
        """A batch of zero rows with the encoded width (read from one row, never trained on)."""
        assert isinstance(self.train, Rows)
        return self.train.take(np.arange(1))[:0]

    # ------------------------------------------------------------------ files
    def _writes(self) -> bool:
        """Whether this process writes the log and checkpoints: with a run directory, on rank 0."""
        return self.run_dir is not None and self.world.main

    def _path(self, name: str) -> Path:
        assert self.run_dir is not None
        return self.run_dir / name

    def _checkpoint(self, loop: dict[str, Any]) -> None:
        """Save the loop position, after checking that the weights are finite: a checkpoint on
        disk is always one a run can resume from."""
        bad = next((n for n, p in self.model.named_parameters() if not p.isfinite().all()), None)
        if bad is not None:
            self._diverged(f"weights {bad!r} became NaN or inf at step {loop['step']}")
        if self._writes():  # rank 0 writes, the other ranks wait for it
            extra = {"dp": self.dp.state()} if self.dp is not None else {}
            save_checkpoint(
                self._path(LAST_CHECKPOINT_FILE),
                self.model,
                self.optimizers,
                loop | {"history": self.history} | extra,
                self._generators(),
                best=self._best,
                ema=self.ema.state() if self.ema is not None else None,
            )
        self.world.barrier()
        if self.run_dir is not None:
            self.saved = {"step": loop["step"], "epochs": loop["epoch"]}

    def on_disk(self, what: str) -> str:
        """What the run directory holds to resume from, in words ("" without a run directory)."""
        if self.run_dir is None:
            return ""
        if self.saved is None:
            return "no checkpoint was written yet"
        epochs = self.saved["epochs"]
        done = f"step {self.saved['step']}, {epochs} epoch{'' if epochs == 1 else 's'} done"
        return f"{what} ({done}) is in {self._path(LAST_CHECKPOINT_FILE)}"

    def _diverged(self, what: str) -> NoReturn:
        raise TrainingDivergedError(
            f"{what}; lower lr or check the data",
            self.on_disk("the last checkpoint with finite values"),
        )

    def _generators(self) -> dict[str, torch.Generator]:
        return {"dp_noise": self.dp.generator} if self.dp is not None else {}

    def _truncate_log(self, n_records: int) -> None:
        """Drop log lines written after the checkpoint (a kill between log and checkpoint)."""
        lines = (
            self._path(METRICS_FILE).read_text().splitlines()[:n_records]
            if self._path(METRICS_FILE).exists()
            else []
        )
        write_text(self._path(METRICS_FILE), "".join(line + "\n" for line in lines))

    @contextmanager
    def _catch_interrupt(self) -> Iterator[None]:
        """Ctrl-C finishes the current step, writes a checkpoint, then raises KeyboardInterrupt."""
        if self.run_dir is None or threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:
            self._stop_requested = True

        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
