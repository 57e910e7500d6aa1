"""The VAE-GAN term (`preset="vae_gan"`, fds.objectives.gan): its critic is a network with its own
optimizer, each optimizer moves only its own parameters, a run resumes bit for bit, a model
file round-trips, and DP-SGD refuses it in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fds import FDS
from fds.errors import ConfigError
from fds.nn.critic import ConvCritic, MLPCritic, pack
from fds.training.trainer import Trainer
from tests.interrupting import fit_stopped_at

TINY = {"preset": "vae_gan", "latent_dim": 3, "hidden_dims": [16], "batch_size": 16}
TINY |= {"epochs": 2, "seed": 3, "verbose": False, "val_fraction": 0.0}


def _fds(**changes) -> FDS:
    return FDS(**(TINY | changes))


def _table(n: int = 64) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.poisson(3, size=n),
            "c": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
        }
    )


def _images(n: int = 48, side: int = 16) -> np.ndarray:
    rng = np.random.default_rng(1)
    images = np.zeros((n, side, side), dtype=np.uint8)
    for i, (top, left) in enumerate(rng.integers(0, side - 5, size=(n, 2))):
        images[i, top : top + 5, left : left + 5] = 255
    return images


def _trainer(model: FDS, data) -> Trainer:
    """The Trainer `fit` builds, caught as it is made."""
    made: list[Trainer] = []
    original = Trainer.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "__init__", keep)
        model.fit(data)
    return made[0]


def test_the_critic_has_its_own_optimizer_over_its_own_parameters() -> None:
    model = _fds(epochs=1)
    trainer = _trainer(model, _table())
    net = model.model_
    assert set(trainer.optimizers) == {"model", "critic"}
    critic = {id(p) for p in net.critic.parameters()}
    main = {id(p) for group in trainer.optimizers["model"].param_groups for p in group["params"]}
    own = {id(p) for group in trainer.optimizers["critic"].param_groups for p in group["params"]}
    assert own == critic and not main & critic
    assert main | own == {id(p) for p in net.parameters()}
    assert "train_gan" in trainer.history[0] and "train_critic" in trainer.history[0]


@pytest.mark.parametrize("frozen", ["model", "critic"])
def test_each_optimizer_moves_only_its_own_parameters(frozen: str) -> None:
    """With one optimizer's step a no-op, its parameters stay put and the other's move: the
    generator loss's gradient on the critic and the critic loss never reach the wrong side."""
    model = _fds(epochs=1, max_steps=1)
    trainer = _trainer(model, _table())
    net = model.model_
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    trainer.optimizers[frozen].step = lambda *args, **kwargs: None
    x = trainer.train.take(np.arange(16))
    trainer._step(x, step=1, epoch_progress=0.5)
    moved = {name for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    critic = {name for name, _ in net.named_parameters() if name.startswith("critic.")}
    if frozen == "model":
        assert moved == critic
    else:
        assert moved and not moved & critic


def test_a_vae_gan_run_resumes_bit_for_bit(tmp_path) -> None:
    params = TINY | {"epochs": 3}
    table = _table()
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    reference = FDS(**params).fit(table, run_dir=tmp_path / "ref")
    # mid second epoch (4 steps per epoch)
    fit_stopped_at(6, lambda: FDS(**params).fit(table, run_dir=tmp_path / "cut"))
    resumed = FDS(**params).fit(table, run_dir=tmp_path / "cut", resume=True)
    for name, value in reference.model_.state_dict().items():
        assert torch.equal(resumed.model_.state_dict()[name], value), name
    assert (tmp_path / "cut" / "metrics.jsonl").read_text().count("\n") == 3


def test_a_saved_vae_gan_loads_with_its_critic(tmp_path) -> None:
    model = _fds().fit(_table())
    model.save(tmp_path / "model")
    loaded = FDS.load(tmp_path / "model")
    for name, value in model.model_.state_dict().items():
        assert torch.equal(loaded.model_.state_dict()[name], value), name
    pd.testing.assert_frame_equal(loaded.sample(20, seed=1), model.sample(20, seed=1))


def test_images_get_a_conv_critic_with_conv_networks_and_an_mlp_one_otherwise() -> None:
    images = _images()
    conv = _fds(epochs=1, architecture="conv", conv_channels=[8, 8]).fit(images)
    mlp = _fds(epochs=1, architecture="mlp").fit(images)
    assert isinstance(conv.model_.critic, ConvCritic)
    assert isinstance(mlp.model_.critic, MLPCritic) and mlp.model_.critic.pac == 1
    table = _fds(epochs=1).fit(_table())
    assert table.model_.critic.pac == 10  # PacGAN packing on tables, as CTGAN


def test_packing_judges_every_row_whatever_the_batch_size() -> None:
    rows = torch.arange(14.0).view(7, 2)
    packed = pack(rows, 3)
    assert packed.shape == (3, 6)
    assert set(packed.view(-1, 2)[:, 0].tolist()) == set(rows[:, 0].tolist())
    assert torch.equal(pack(rows, 1), rows)


def test_decoded_rows_are_relaxed_draws_gradients_flow_through() -> None:
    model = _fds(epochs=1).fit(_table())
    net = model.model_
    params = net.decode(torch.zeros(5, 3, requires_grad=True)).detach().requires_grad_()
    rows = net.likelihood.relaxed(params, 0.2)
    assert rows.shape == (5, net.likelihood.dim)
    category = model.codec_.blocks[-1]
    torch.testing.assert_close(rows[:, category.start : category.stop].sum(1), torch.ones(5))
    rows.sum().backward()
    assert params.grad is not None and params.grad.abs().sum() > 0


def test_dp_sgd_refuses_vae_gan_in_one_line() -> None:
    with pytest.raises(ConfigError, match="vae_gan cannot be trained with privacy") as caught:
        _fds(privacy={"epsilon": 1.0}).fit(_images())
    assert "\n" not in str(caught.value)
    _fds(gan=0.0, privacy={"epsilon": 1.0}).fit(_images())  # without the critic
