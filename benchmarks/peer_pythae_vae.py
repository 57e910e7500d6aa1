"""The pythae side of benchmarks/train_throughput.py; runs inside the pythae venv
(benchmarks/.envs/pythae, built by peer_env.ensure_env).

Trains pythae 0.1.2's VAE with its own BaseTrainer on the core benchmark's model (MLP encoder
784-512-512-(2×16), decoder 16-512-512-784, Bernoulli likelihood: pythae's "bce" loss, summed
over pixels, plus the analytic KL), Adam at lr 1e-3, batch 128, one thread, and prints one JSON
line with the wall-clock seconds of each epoch's training loop (BaseTrainer.train_step).

    python benchmarks/peer_pythae_vae.py DATA.npy --epochs 3 --seed 0

DATA.npy holds float32 images (N, 784) in [0, 1].
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from pythae.data.datasets import BaseDataset
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from torch import nn

HIDDEN, LATENT, PIXELS = 512, 16, 784


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, n_out),
    )  # fmt: skip


class Encoder(BaseEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(PIXELS, 2 * LATENT)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mean, logvar = self.net(x.flatten(1)).chunk(2, dim=-1)
        return ModelOutput(embedding=mean, log_covariance=logvar)


class Decoder(BaseDecoder):
    """pythae's BCE wants probabilities, so the logits go through a sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(LATENT, PIXELS)

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(-1, 1, 28, 28))


class TimedTrainer(BaseTrainer):
    """pythae's trainer, recording the seconds of each epoch's training loop."""

    epoch_seconds: list[float]

    def train_step(self, epoch: int) -> float:
        started = time.perf_counter()
        loss = super().train_step(epoch)
        self.epoch_seconds.append(time.perf_counter() - started)
        return loss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = torch.from_numpy(np.load(args.data)).view(-1, 1, 28, 28)
    torch.manual_seed(args.seed)
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    model = VAE(config, encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as tmp:
        trainer = TimedTrainer(
            model,
            train_dataset=BaseDataset(images, torch.zeros(len(images))),
            training_config=BaseTrainerConfig(
                output_dir=tmp,
                num_epochs=args.epochs,
                learning_rate=args.lr,
                per_device_train_batch_size=args.batch,
                keep_best_on_train=True,
                seed=args.seed,
                no_cuda=True,
            ),
        )
        trainer.epoch_seconds = []
        trainer.train()
    print(json.dumps({"epoch_seconds": trainer.epoch_seconds, "examples": len(images)}))


if __name__ == "__main__":
    main()
