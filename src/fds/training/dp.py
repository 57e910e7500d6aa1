"""DP-SGD through Opacus: per-example clipping, calibrated Gaussian noise, Poisson batches, accounting.

The `Trainer` stays one loop: with `config.privacy` set it asks a `DPSGD` for each step's batch
(Poisson sampling, as Opacus' accountants assume), for the backward pass (per-example losses,
clipped per example) and for the optimizer (Opacus' DPOptimizer, which adds the noise).

Why not `PrivacyEngine.make_private_with_epsilon`: it needs a torch DataLoader, and FDS batches come
from `Rows` (possibly memory-mapped, resumable from a checkpoint). The engine's three parts are
used directly instead: `get_noise_multiplier` (the calibration make_private_with_epsilon calls, for
the planned number of steps), the grad-sample module and the DP optimizer; sampling is Poisson with
rate q = batch_size / n.

Secret randomness: the analysis assumes the adversary can predict neither the noise nor which rows
each batch holds (amplification by subsampling). Both therefore come from a secret key drawn from
the OS (`secrets`), not from the config's `seed`, which is written to config.yaml and config.json;
`privacy.noise_seed` fixes the key for tests and reproductions only. The key and the noise
generator's state are kept in the run's checkpoint (keep RUN/checkpoints private), so `--resume`
draws the same batches and noise as an uninterrupted run. The accountant's history is (noise
multiplier, q, steps), so a resumed DP run reports the same ε as an uninterrupted one.
"""

from __future__ import annotations

import secrets
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fds.config import DPConfig
from fds.errors import ConfigError
from fds.objectives import check_trainable_under_dp
from fds.training.accounting import default_delta, epsilon_spent, opacus_module

if TYPE_CHECKING:
    from fds.models import FactorizedAutoencoder
    from fds.training.distributed import Single

COVERS = (
    "the model weights, with respect to adding or removing one training record (record-level, "
    "add/remove neighbours); not the validation rows or hyper-parameter choices; the codec's "
    "statistics are declared or DP (codec_statistics)"
)


def make_private_model(model: nn.Module) -> nn.Module:
    """Replace layers Opacus cannot clip per example (BatchNorm → GroupNorm) and validate the rest.

    Runs before the optimizer is built (it may swap modules) and again when a DP model is loaded,
    so the saved weights fit the same layers.
    """
    validator = opacus_module().validators.ModuleValidator
    errors = validator.validate(model, strict=False)
    if errors:
        model = validator.fix(model)
        errors = validator.validate(model, strict=False)
        if errors:
            raise ConfigError(f"DP-SGD cannot train this model: {errors[0]}")
    return model


def noise_multiplier_for(privacy: DPConfig, sample_rate: float, steps: int, delta: float) -> float:
    """σ/C for the planned steps, so the whole run spends at most `privacy.epsilon`."""
    utils = opacus_module().accountants.utils
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            utils.get_noise_multiplier(
                target_epsilon=privacy.epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=privacy.accountant,
            )
        )


class DPSGD:
    """Everything DP-SGD changes in a training step; built by the Trainer when privacy is set."""

    def __init__(
        self,
        model: FactorizedAutoencoder,
        optimizer: torch.optim.Optimizer,
        privacy: DPConfig,
        *,
        n_train: int,
        batch_size: int,
        total_steps: int,
        world: Single | None = None,
    ) -> None:
        """`world`: under torchrun, the ranks share the secret key (rank 0's) and Opacus'
        DistributedDPOptimizer adds the noise once (on rank 0) to the sum of all ranks' clipped
        gradients, which it averages over an expected batch of batch_size / world_size per rank:
        the step is the single process's step on the same global Poisson batch."""
        check_trainable_under_dp(model.config)
        self.world = world
        self.privacy = privacy
        self.n_train = n_train
        self.sample_rate = batch_size / n_train
        self.delta = privacy.delta if privacy.delta is not None else default_delta(n_train)
        if self.delta >= 1.0 / n_train:
            raise ConfigError(
                f"privacy.delta = {self.delta:g} is not below 1/n = {1 / n_train:g} for "
                f"{n_train} training rows; use a smaller delta (or leave it unset)"
            )
        self.noise_multiplier = noise_multiplier_for(
            privacy, self.sample_rate, total_steps, self.delta
        )
        opacus = opacus_module()
        clip = privacy.max_grad_norm
        if privacy.grad_sample_mode == "ghost":
            from opacus.grad_sample import GradSampleModuleFastGradientClipping
            from opacus.optimizers import DPOptimizerFastGradientClipping

            self.module = GradSampleModuleFastGradientClipping(
                model, max_grad_norm=clip, use_ghost_clipping=True, loss_reduction="mean"
            )
            optimizer_cls = DPOptimizerFastGradientClipping
            if world is not None and world.world_size > 1:
                from opacus.optimizers import DistributedDPOptimizerFastGradientClipping

                optimizer_cls = DistributedDPOptimizerFastGradientClipping
        else:
            self.module = opacus.GradSampleModule(model, loss_reduction="mean")
            optimizer_cls = opacus.optimizers.DPOptimizer
            if world is not None and world.world_size > 1:
                optimizer_cls = opacus.optimizers.DistributedDPOptimizer
        ranks = 1 if world is None else world.world_size
        if world is not None:
            world.synchronize(model)  # rank 0's initial weights everywhere, as Opacus' DPDDP
        self.closed = False
        self.generator = torch.Generator()
        self.restore({"key": privacy.noise_seed})
        self.optimizer = optimizer_cls(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=clip,
            expected_batch_size=batch_size // ranks,
            loss_reduction="mean",
            generator=self.generator,
        )

    def state(self) -> dict[str, Any]:
        """The secret key, for the checkpoint (the generator's state is saved as a tensor)."""
        return {"key": self.key}

    def restore(self, state: dict[str, Any], *, reseed: bool = True) -> None:
        """Set the secret key (None: a fresh one from the OS) and reseed the noise from it; a
        resumed run keeps the generator state its checkpoint restored (`reseed=False`)."""
        self.key = state["key"] if state["key"] is not None else secrets.randbits(63)
        if self.world is not None:
            self.key = self.world.broadcast(self.key)
        if reseed:
            self.generator.manual_seed(self.key)

    def batch_positions(self, epoch: int, batch: int) -> np.ndarray:
        """Poisson sampling: every training row joins this step's batch with probability q."""
        rng = np.random.default_rng((self.key, epoch, batch))
        return np.flatnonzero(rng.random(self.n_train) < self.sample_rate)

    def backward(self, per_example_loss: torch.Tensor) -> None:
        """Gradients of the per-example losses, clipped example by example (noise: at step)."""
        with warnings.catch_warnings():
            # the input rows need no gradient, which torch's full backward hooks remark on
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            if self.privacy.grad_sample_mode == "ghost":
                from opacus.utils.fast_gradient_clipping_utils import (
                    DPTensorFastGradientClipping,
                )

                DPTensorFastGradientClipping(
                    self.module, self.optimizer, per_example_loss, "mean"
                ).backward()
            else:
                per_example_loss.mean().backward()

    def history(self, steps: int) -> list[tuple[float, float, int]]:
        return [(self.noise_multiplier, self.sample_rate, steps)]

    def record(self, steps: int) -> dict[str, Any]:
        """The manifest's `privacy` entry for a run that took `steps` noisy steps."""
        return {
            "mechanism": "dp-sgd",
            "epsilon": epsilon_spent(self.history(steps), self.delta, self.privacy.accountant),
            "target_epsilon": self.privacy.epsilon,
            "delta": self.delta,
            "accountant": self.privacy.accountant,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": steps,
            "max_grad_norm": self.privacy.max_grad_norm,
            "grad_sample_mode": self.privacy.grad_sample_mode,
            "n_train": self.n_train,
            "covers": COVERS,
        }

    def close(self) -> None:
        """Remove Opacus' hooks so the trained model runs as a plain module afterwards."""
        if not self.closed:
            self.module._close()
            self.closed = True
