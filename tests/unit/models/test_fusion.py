"""Fusion models: how experts combine, that absent modalities never reach a record's objective,
and that a briefly trained model generates one modality from another."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fds.config import make_config
from fds.data.datasets.shapes_mm import SAMPLE_RATE, make_shapes_mm
from fds.data.multimodal import MultimodalCodec
from fds.data.multimodal.codec import hide_at_random
from fds.errors import ConfigError, ModelFormatError
from fds.models.fusion import FUSIONS, build_fusion
from fds.models.fusion.experts import mixture_mean, product_of_experts
from fds.nn.conv import ConvDecoder, ConvEncoder
from fds.nn.what_where import WhatWhereDecoder
from fds.training.fusion import train_fusion

TINY = {"hidden_dims": (32,), "latent_dim": 4, "modality_specific_dim": 2, "batch_size": 32}


@pytest.fixture(scope="module")
def shapes() -> tuple[MultimodalCodec, dict, np.ndarray]:
    X, _ = make_shapes_mm(24, seed=0)
    codec = MultimodalCodec.fit(X, sample_rate=SAMPLE_RATE)
    encoded, present = codec.encode(X)
    return codec, encoded, np.stack([present[k] for k in codec.modalities])


def test_product_of_experts_weights_by_precision_and_falls_back_to_the_prior() -> None:
    mu = torch.tensor([[[1.0]], [[3.0]]])  # two experts, one record, one dimension
    logvar = torch.log(torch.tensor([[[1.0]], [[0.25]]]))
    both = torch.ones(2, 1)
    mean, lv = product_of_experts(mu, logvar, both, prior=False)
    assert mean.item() == pytest.approx((1 * 1 + 3 * 4) / 5) and lv.exp().item() == pytest.approx(
        0.2
    )
    mean, lv = product_of_experts(mu, logvar, both, prior=True)
    assert mean.item() == pytest.approx(13 / 6) and lv.exp().item() == pytest.approx(1 / 6)
    none = torch.zeros(2, 1)
    for prior in (True, False):
        mean, lv = product_of_experts(mu, logvar, none, prior=prior)
        assert mean.item() == 0.0 and lv.item() == pytest.approx(0.0)
    assert mixture_mean(mu, torch.tensor([[1.0], [0.0]])).item() == 1.0


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_an_absent_modality_never_reaches_the_objective(fusion: str, shapes) -> None:
    codec, encoded, _ = shapes
    torch.manual_seed(0)
    model = build_fusion(codec, make_config(fusion=fusion, **TINY).resolved())
    x = {k: torch.from_numpy(v) for k, v in encoded.items()}
    mask = torch.ones(len(codec.modalities), 24)
    mask[codec.modalities.index("image"), :12] = 0.0  # the first 12 records lack their image
    torch.manual_seed(1)
    loss = model.loss(x, mask)
    assert loss.shape == (24,) and torch.isfinite(loss).all()
    scrambled = dict(x, image=torch.rand_like(x["image"]))
    torch.manual_seed(1)
    again = model.loss(scrambled, mask)
    torch.testing.assert_close(again[:12], loss[:12])
    assert not torch.allclose(again[12:], loss[12:])
    code, _ = model.fuse(x, mask)
    assert code.shape == (24, 4)


def test_hiding_at_random_keeps_one_modality_per_record(shapes) -> None:
    _, _, present = shapes
    hidden = hide_at_random(present, 0.7, seed=0)
    assert (hidden <= present).all() and hidden.any(0).all()
    assert 0.3 < 1 - hidden.mean() < 0.75
    np.testing.assert_array_equal(hidden, hide_at_random(present, 0.7, seed=0))


def test_training_lowers_the_loss_and_repeats_with_the_seed(shapes) -> None:
    codec, encoded, present = shapes
    config = make_config(fusion="mopoe", epochs=6, lr=1e-2, **TINY).resolved()
    histories = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_fusion(codec, config)
        histories.append(train_fusion(model, encoded, hide_at_random(present, 0.5, 0), config))
    assert histories[0] == histories[1]
    losses = [record["train_loss"] for record in histories[0]]
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("ema_decay", [0.0, 0.9], ids=["last", "averaged"])
def test_a_resumed_run_reaches_the_weights_of_an_uninterrupted_one(
    shapes, tmp_path, ema_decay
) -> None:
    """Also with the weights' moving average, which the checkpoint carries."""
    codec, encoded, present = shapes
    mask = hide_at_random(present, 0.5, 0)

    def run(epochs: int, run_dir, resume: bool = False):
        config = make_config(
            fusion="mmvae_plus", epochs=epochs, lr=1e-2, ema_decay=ema_decay, **TINY
        ).resolved()
        torch.manual_seed(0)
        model = build_fusion(codec, config)
        history = train_fusion(model, encoded, mask, config, run_dir=run_dir, resume=resume)
        return model, history

    whole, whole_history = run(3, tmp_path / "whole")
    run(1, tmp_path / "cut")  # stopped after its first epoch
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 1
    resumed, history = run(3, tmp_path / "cut", resume=True)
    assert history == whole_history
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 3
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    (tmp_path / "cut" / "checkpoints" / "last.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFormatError, match=r"last\.safetensors"):
        run(3, tmp_path / "cut", resume=True)
    with pytest.raises(ConfigError, match="run directory"):
        run(3, None, resume=True)


@pytest.mark.parametrize(
    ("architecture", "encoder", "decoder"),
    [
        ("auto", ConvEncoder, ConvDecoder),  # 32 px sprites: what `auto` picks for one modality
        ("conv", ConvEncoder, ConvDecoder),
        ("what_where", nn.Sequential, WhatWhereDecoder),
        ("mlp", nn.Sequential, nn.Sequential),
    ],
)
def test_the_image_networks_follow_the_architecture(shapes, architecture, encoder, decoder) -> None:
    codec, encoded, _ = shapes
    config = make_config(fusion="mmvae_plus", architecture=architecture, **TINY).resolved()
    model = build_fusion(codec, config)
    image = model.modalities["image"]
    assert type(image.encoder) is encoder and type(image.decoder) is decoder
    rows = torch.from_numpy(encoded["image"])
    assert image.encoder(rows).shape == (24, 2 * (4 + 2))
    assert image.decoder(torch.zeros(24, 4 + 2)).shape == rows.shape


def test_a_what_where_image_is_placed_by_the_shared_block_alone(shapes) -> None:
    codec, _, _ = shapes
    config = make_config(fusion="mmvae_plus", architecture="what_where", **TINY).resolved()
    torch.manual_seed(0)
    decoder = build_fusion(codec, config).modalities["image"].decoder
    z = torch.randn(8, 4 + 2)
    assert decoder.where_dim == 4
    moved = z.clone()
    moved[:, 4:] += 1.0  # the own latents change what is drawn, never where
    with torch.no_grad():
        placement = decoder.rows(z[:, :4]), decoder.rows(moved[:, :4])
        drawn = decoder(z), decoder(moved)
    torch.testing.assert_close(*placement)
    assert not torch.allclose(*drawn)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_reconstruct_decodes_a_modality_from_itself_with_its_own_latents(fusion, shapes) -> None:
    codec, encoded, _ = shapes
    torch.manual_seed(0)
    model = build_fusion(codec, make_config(fusion=fusion, **TINY).resolved()).eval()
    x = {k: torch.from_numpy(v) for k, v in encoded.items()}
    alone = torch.zeros(len(codec.modalities), 24)
    alone[codec.modalities.index("image")] = 1.0
    z, _ = model.fuse(x, alone)
    scrambled = dict(x, text=torch.zeros_like(x["text"]))  # other modalities play no part
    rebuilt = model.reconstruct(scrambled, "image")
    own = model.own_mean(x, "image")
    assert (own is not None) == (fusion == "mmvae_plus")
    torch.testing.assert_close(rebuilt, model.generate(z, "image", own))
    if own is not None:  # the own latents' posterior mean, not their prior mean
        assert not torch.allclose(rebuilt, model.generate(z, "image"))
