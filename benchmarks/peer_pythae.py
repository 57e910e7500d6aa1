"""The pythae side of benchmarks/peers.py; runs inside the pythae venv (benchmarks/.envs/pythae).

Trains pythae 0.1.2's BetaTCVAE with its own trainer, on the very conv networks FDS builds
(src/fds/nn/conv.py, loaded by file path so none of FDS's other dependencies are needed; with
their He initialisation unless --torch-init), and writes the test codes (posterior means) and the
training seconds (wall and CPU).

    python benchmarks/peer_pythae.py DATA.npz OUT.npz --seed 0 --epochs 10 --batch 64 --lr 1e-3
        --beta 6 --latent-dim 10 --channels 32,32,64,64

DATA.npz holds `train` and `test` float32 images (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pythae.data.datasets import BaseDataset
from pythae.models import BetaTCVAE, BetaTCVAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig

CONV = Path(__file__).resolve().parents[1] / "src" / "fds" / "nn" / "conv.py"


def _fds_conv():
    spec = importlib.util.spec_from_file_location("fds_conv", CONV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Encoder(BaseEncoder):
    """FDS's ConvEncoder, its 2·latent outputs read as pythae's (embedding, log_covariance)."""

    def __init__(self, chw, channels, latent_dim):
        super().__init__()
        self.net = _fds_conv().ConvEncoder(chw, channels, 2 * latent_dim)

    def forward(self, x):
        mean, logvar = self.net(x.flatten(1)).chunk(2, dim=-1)
        return ModelOutput(embedding=mean, log_covariance=logvar)


class Decoder(BaseDecoder):
    """FDS's ConvDecoder; pythae's BCE wants probabilities, so its logits go through a sigmoid."""

    def __init__(self, chw, channels, latent_dim):
        super().__init__()
        self.chw = chw
        self.net = _fds_conv().ConvDecoder(latent_dim, chw, channels, 1)

    def forward(self, z):
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(-1, *self.chw))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=6.0)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--channels", default="32,32,64,64")
    parser.add_argument(
        "--torch-init",
        action="store_true",
        help="re-initialise the nets as PyTorch does by default (what pythae's own nets get)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = np.load(args.data)
    train, test = torch.from_numpy(data["train"]), torch.from_numpy(data["test"])
    chw = tuple(train.shape[1:])
    channels = [int(c) for c in args.channels.split(",")]
    torch.manual_seed(args.seed)
    config = BetaTCVAEConfig(
        input_dim=chw,
        latent_dim=args.latent_dim,
        reconstruction_loss="bce",
        beta=args.beta,
        use_mss=True,
    )
    model = BetaTCVAE(
        config,
        encoder=Encoder(chw, channels, args.latent_dim),
        decoder=Decoder(chw, channels, args.latent_dim),
    )
    if args.torch_init:
        for layer in model.modules():
            if hasattr(layer, "reset_parameters") and layer is not model:
                layer.reset_parameters()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = BaseTrainer(
            model,
            train_dataset=BaseDataset(train, torch.zeros(len(train))),
            training_config=BaseTrainerConfig(
                output_dir=tmp,
                num_epochs=args.epochs,
                learning_rate=args.lr,
                per_device_train_batch_size=args.batch,
                keep_best_on_train=True,  # no eval set: the model after the last better epoch
                seed=args.seed,
                no_cuda=True,
            ),
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.train()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    model = trainer._best_model  # what pythae saves as its final model
    model.eval()
    with torch.no_grad():
        codes = torch.cat([model.encoder(b).embedding for b in test.split(1024)]).numpy()
    np.savez(args.out, codes=codes, seconds=seconds, cpu_seconds=cpu_seconds)


if __name__ == "__main__":
    main()
