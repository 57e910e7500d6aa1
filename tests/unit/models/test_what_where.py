"""The image networks: what/where decoder and canonical key encoder, conv nets at any size, and
what `architecture: auto` picks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fds import FDS
from fds.cli import app
from fds.config import make_config
from fds.errors import ConfigError
from fds.evaluation.key import sprite_positions, sprite_sizes
from fds.models.build import choose_architecture, for_data
from fds.nn.conv import ConvDecoder, ConvEncoder
from fds.nn.what_where import (
    DRAWING_GAIN,
    KEY_LOG_SIZE,
    KEY_SHIFT_PIXELS,
    CanonicalEncoder,
    SplitEncoder,
    WhatWhereDecoder,
    _zoomed,
    shift_indices,
    shift_matrices,
)
from tests.interrupting import fit_stopped_at

SIZES = [(1, 16, 16), (3, 17, 23), (1, 16, 128), (3, 100, 60), (1, 128, 128)]


def _square(side: int, top: int, left: int, size: int = 5) -> torch.Tensor:
    image = torch.zeros(1, 1, side, side)
    image[0, 0, top : top + size, left : left + size] = 1.0
    return image


def test_a_one_hot_offset_is_an_exact_shift_with_edges_replicated() -> None:
    maps = torch.arange(36, dtype=torch.float32).view(1, 1, 6, 6)
    index = shift_indices(6)
    identity = torch.zeros(1, 7)
    identity[0, 3] = 1.0  # offset 0
    down_two = torch.zeros(1, 7)
    down_two[0, 5] = 1.0  # offset +2
    assert torch.equal(shift_matrices(identity, index)[:, None] @ maps, maps)
    moved = shift_matrices(down_two, index)[:, None] @ maps
    assert torch.equal(moved[0, 0, 2:], maps[0, 0, :4])
    assert torch.equal(moved[0, 0, 0], maps[0, 0, 0]) and torch.equal(moved[0, 0, 1], maps[0, 0, 0])


@pytest.mark.parametrize("chw", SIZES)
def test_image_networks_fit_any_size_and_channels(chw: tuple[int, int, int]) -> None:
    n = chw[0] * chw[1] * chw[2]
    x, z = torch.rand(2, n), torch.randn(2, 8)
    assert ConvEncoder(chw, (8, 8), 16)(x).shape == (2, 16)
    assert ConvDecoder(8, chw, (8, 8), 2)(z).shape == (2, 2 * n)
    assert WhatWhereDecoder(8, chw, (16,), 2, where_dim=5, key_dim=3)(z).shape == (2, 2 * n)
    assert WhatWhereDecoder(8, chw, (16,), 1, where_dim=8)(z).shape == (2, n)
    assert CanonicalEncoder(chw, (16,), 6)(x).shape == (2, 6)


def test_the_key_encoder_sees_neither_position_nor_size() -> None:
    torch.manual_seed(0)
    encoder = CanonicalEncoder((1, 32, 32), (32,), 4)
    here = encoder(_square(32, 4, 6).flatten(1))
    there = encoder(_square(32, 20, 17).flatten(1))
    larger = encoder(_square(32, 10, 10, size=10).flatten(1))
    torch.testing.assert_close(here, there)
    torch.testing.assert_close(here, larger, atol=0.05, rtol=0.05)
    assert not torch.allclose(here, encoder(torch.rand(1, 1024)), atol=0.05)


def test_the_split_encoder_lays_out_each_parameter_group_public_first() -> None:
    public = torch.nn.Linear(6, 6)  # the image and the key's 2 means → 2 groups × public 3
    private = torch.nn.Linear(4, 4)  # 2 parameter groups × private 2
    x = torch.randn(5, 4)
    out = SplitEncoder(public, private, 3, 2, 2)(x)
    means, logvars = out.chunk(2, dim=1)
    seen = torch.cat([x, private(x)[:, :2]], 1)
    torch.testing.assert_close(means, torch.cat([public(seen)[:, :3], private(x)[:, :2]], 1))
    torch.testing.assert_close(logvars, torch.cat([public(seen)[:, 3:], private(x)[:, 2:]], 1))


def test_the_public_encoder_reads_the_key_without_training_it() -> None:
    """The public encoder sees the key's means, so it can take out what the attribute does to
    the pixels; its censoring terms must not reach the key's encoder through them."""
    torch.manual_seed(0)
    public, private = torch.nn.Linear(6, 6), torch.nn.Linear(4, 4)
    encoder = SplitEncoder(public, private, 3, 2, 2)
    x = torch.randn(5, 4)
    before = encoder(x)[:, :3]
    with torch.no_grad():
        private.bias[:2] += 1.0  # another key for the same images
    assert not torch.allclose(encoder(x)[:, :3], before)
    encoder(x)[:, :3].sum().backward()
    assert private.weight.grad is None or private.weight.grad.abs().sum() == 0
    assert public.weight.grad[:, 4:].abs().sum() > 0  # the columns that read the key learn


def test_the_public_means_are_rounded_to_the_step_with_the_gradient_passed_through() -> None:
    """Only the public block's means are rounded: the σ and the key are as encoded, and the
    encoder still learns (straight-through gradient)."""
    torch.manual_seed(0)
    public, private = torch.nn.Linear(6, 6), torch.nn.Linear(4, 4)
    x = torch.randn(5, 4)
    out = SplitEncoder(public, private, 3, 2, 2, public_step=0.5)(x)
    means, logvars = out.chunk(2, dim=1)
    seen = torch.cat([x, private(x)[:, :2]], 1)
    torch.testing.assert_close(means[:, :3], torch.round(public(seen)[:, :3] * 2) / 2)
    torch.testing.assert_close(means[:, 3:], private(x)[:, :2])  # the remainder's map starts at 0
    torch.testing.assert_close(logvars, torch.cat([public(seen)[:, 3:], private(x)[:, 2:]], 1))
    means[:, :3].sum().backward()
    assert public.weight.grad is not None and public.weight.grad.abs().sum() > 0


def test_what_the_rounding_takes_from_the_public_block_the_key_can_keep() -> None:
    """Two images whose public means round to one shared code still get keys that tell them
    apart: the key's means add a learned map of the remainder (mean − rounded)."""
    public = torch.nn.Linear(2, 2)  # (pixel, key) → the public mean and log-variance
    private = torch.nn.Linear(1, 2)  # pixel → the key's mean and log-variance
    encoder = SplitEncoder(public, private, 1, 1, 2, public_step=1.0)
    with torch.no_grad():
        public.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))  # the mean: the pixel
        public.bias.zero_()
        private.weight.zero_()  # a key of 0 for every image, but for the remainder
        private.bias.zero_()
        encoder.remainder.weight.fill_(1.0)
    means = encoder.eval()(torch.tensor([[0.1], [0.3]])).chunk(2, dim=1)[0]
    torch.testing.assert_close(means[:, 0], torch.zeros(2))  # one shared public code
    torch.testing.assert_close(means[:, 1], torch.tensor([0.1, 0.3]))  # the key keeps the rest


def test_the_key_steers_the_drawing_and_the_public_block_places_it() -> None:
    torch.manual_seed(0)
    decoder = WhatWhereDecoder(6, (1, 16, 16), (32,), 1, where_dim=4, key_dim=2)
    z = torch.randn(1, 6)
    other_key = z.clone()
    other_key[:, 4:] += 1.0
    moved = z.clone()
    moved[:, :4] += 1.0
    assert not torch.allclose(decoder(z), decoder(other_key))
    assert not torch.allclose(decoder(z), decoder(moved))


def test_the_turn_and_the_resize_are_one_exact_resample_of_the_drawing() -> None:
    maps = torch.rand(2, 3, 8, 8)
    ones = torch.ones(2)
    upright = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    quarter = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    torch.testing.assert_close(_zoomed(maps, ones, upright), maps)
    torch.testing.assert_close(_zoomed(maps, ones, None), maps)
    torch.testing.assert_close(_zoomed(maps, ones, quarter), torch.rot90(maps, 1, (2, 3)))
    halved = _zoomed(maps, ones / 2, quarter)  # smaller and turned in the same call
    torch.testing.assert_close(halved, _zoomed(torch.rot90(maps, 1, (2, 3)), ones / 2, None))


def test_a_quarter_turn_from_the_key_turns_the_decoded_drawing_in_place() -> None:
    torch.manual_seed(0)
    decoder = WhatWhereDecoder(6, (1, 16, 16), (32,), 1, where_dim=4, key_dim=2)
    assert decoder.turn[0].in_features == 2  # read from the key alone
    with torch.no_grad():  # placement fixed at offset 0, size 1: only the turn acts
        for shift in (decoder.rows, decoder.cols):
            shift[-1].weight.zero_()
            shift[-1].bias.fill_(-30.0)
            shift[-1].bias[8] = 30.0  # offset 8 − 16 // 2 = 0
        decoder.turn[-1].weight.zero_()
        decoder.turn[-1].bias.zero_()
    z = torch.randn(3, 6)
    upright = decoder(z).view(3, 1, 16, 16)
    with torch.no_grad():
        decoder.turn[-1].bias.copy_(torch.tensor([-1.0, 1.0]))  # + upright (1, 0) → (0, 1)
    turned = decoder(z).view(3, 1, 16, 16)
    torch.testing.assert_close(turned, torch.rot90(upright, 1, (2, 3)))
    assert not torch.allclose(turned, upright)


def test_auto_picks_what_where_for_a_key_conv_without_one_and_an_mlp_below_16_px() -> None:
    key = make_config(preset="fds", sensitive=("s",)).resolved()
    assert choose_architecture(key, (3, 16, 40)) == "what_where"
    assert choose_architecture(key, (1, 8, 8)) == "mlp"
    assert choose_architecture(key, None) == "mlp"
    config = make_config(preset="vae").resolved()
    assert choose_architecture(config, (1, 32, 32)) == "conv"
    assert choose_architecture(config, (3, 16, 40)) == "conv"
    assert choose_architecture(config, (1, 8, 8)) == "mlp"
    assert choose_architecture(config, None) == "mlp"
    conv = make_config(preset="vae", architecture="conv").resolved()
    assert choose_architecture(conv, (1, 8, 8)) == "conv"
    for arch in ("conv", "what_where"):
        with pytest.raises(ConfigError, match=f"architecture {arch} needs images"):
            choose_architecture(make_config(architecture=arch).resolved(), None)


def test_private_only_auto_is_on_for_tables_and_off_for_images() -> None:
    config = make_config(preset="fds", sensitive=("s",)).resolved()
    assert config.private_only == "auto"
    assert for_data(config, None).private_only is True
    assert for_data(config, (1, 32, 32)).private_only is False
    explicit = make_config(preset="fds", private_only=True).resolved()
    assert for_data(explicit, (1, 32, 32)).private_only is True


def test_an_image_key_model_trains_saves_and_loads(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = np.zeros((96, 16, 16), dtype=np.uint8)
    labels = rng.integers(0, 2, size=96)
    for i, (top, left) in enumerate(rng.integers(0, 10, size=(96, 2))):
        images[i, top : top + 6, left : left + (6 if labels[i] else 3)] = 255
    model = FDS(
        preset="fds", latent_dim=5, private_dim=2, hidden_dims=[16], epochs=1, verbose=False
    ).fit(images, sensitive=labels)
    assert isinstance(model.model_.decoder, WhatWhereDecoder)
    assert isinstance(model.model_.encoder, SplitEncoder)
    model.save(tmp_path / "m")
    loaded = FDS.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.transform(images), model.transform(images))
    np.testing.assert_array_equal(
        loaded.inverse_transform(model.transform(images[:4])),
        model.inverse_transform(model.transform(images[:4])),
    )


def _bars(n: int) -> tuple[np.ndarray, np.ndarray]:
    """16×16 bars whose width (3 or 6 px) is the sensitive label, at random places."""
    rng = np.random.default_rng(0)
    images = np.zeros((n, 16, 16), dtype=np.uint8)
    labels = rng.integers(0, 2, size=n)
    for i, (top, left) in enumerate(rng.integers(0, 10, size=(n, 2))):
        images[i, top : top + 6, left : left + (6 if labels[i] else 3)] = 255
    return images, labels


def test_a_public_step_shares_rounded_public_codes_and_keeps_the_key() -> None:
    """With `public_step` the shared block holds multiples of the step only; the key is as
    encoded, and the saved config keeps the step."""
    images, labels = _bars(96)
    model = FDS(
        preset="fds",
        latent_dim=5,
        private_dim=2,
        hidden_dims=[16],
        epochs=1,
        public_step=0.5,
        verbose=False,
    ).fit(images, sensitive=labels)
    public = model.transform(images, part="public")
    np.testing.assert_allclose(public * 2, np.round(public * 2), atol=1e-5)
    key = model.transform(images, part="private")
    assert not np.allclose(key * 2, np.round(key * 2), atol=1e-3)
    assert model.config_.public_step == 0.5


def _swap_drift(model: FDS, images: np.ndarray) -> float:
    """Mean squared distance between each image's public code and the public code read off it
    decoded with the previous image's key."""
    public = model.transform(images, part="public")
    keys = np.roll(model.transform(images, part="private"), 1, axis=0)
    swapped = model.inverse_transform(public, private=keys)
    return float(((model.transform(swapped, part="public") - public) ** 2).sum(1).mean())


def test_swap_invariance_keeps_the_public_code_when_the_key_changes() -> None:
    """Decoded with another record's key, a record reads back as (nearly) its own public code
    when trained with `swap_invariance`; without it, the bar's width moves the code."""
    images, labels = _bars(512)
    base = {"preset": "fds", "latent_dim": 5, "private_dim": 2, "hidden_dims": [64]}
    base |= {"epochs": 6, "mmd": 0.0, "verbose": False, "seed": 0}
    models = {w: FDS(**base, swap_invariance=w).fit(images, sensitive=labels) for w in (0, 100)}
    drift = {weight: _swap_drift(model, images) for weight, model in models.items()}
    assert drift[100] < 0.5 * drift[0]
    # not by collapsing: the public block tells where the bar is as well as without the term
    rows, cols = np.indices((16, 16))
    ink = images.astype(float) / images.sum((1, 2), keepdims=True)
    where = np.stack([(ink * rows).sum((1, 2)), (ink * cols).sum((1, 2))], 1)
    unexplained = {}
    for weight, model in models.items():
        public = model.transform(images, part="public")
        terms = np.c_[public, public**2, np.ones(len(images))]  # a quadratic fit
        residual = where - terms @ np.linalg.lstsq(terms, where, rcond=None)[0]
        unexplained[weight] = (residual.var(0) / where.var(0)).max()
    assert unexplained[100] < unexplained[0] + 0.1


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (0.0, [0.0, 0.125, 0.25, 0.49875, 0.5, 0.5, 0.5]),  # finer first
        (2.0, [2.0, 1.625, 1.25, 0.50375, 0.5, 0.5, 0.5]),  # coarser first
    ],
)
def test_the_step_moves_from_its_start_to_public_step_and_is_full_outside_training(
    start: float, expected: list[float]
) -> None:
    encoder = SplitEncoder(
        torch.nn.Linear(6, 6),
        torch.nn.Linear(4, 4),
        3,
        2,
        2,
        public_step=0.5,
        step_start=start,
        step_warmup_epochs=4,
    )
    steps = []
    for progress in (0.0, 1.0, 2.0, 3.99, 4.0, 10.0, None):
        encoder.set_progress(progress)
        steps.append(encoder.step)
    assert steps == pytest.approx(expected)
    x = torch.randn(5, 4)
    encoder.set_progress(0.0)
    means = encoder(x)[:, :3]
    encoded = encoder.public(torch.cat([x, encoder.private(x)[:, :2]], 1))[:, :3]
    if start:
        torch.testing.assert_close(means, torch.round(encoded / start) * start)
    else:  # step 0: the means as encoded
        torch.testing.assert_close(means, encoded)


def test_a_public_step_warm_up_resumes_bit_for_bit_and_shares_the_full_step(tmp_path) -> None:
    """A run cut inside the step's warm-up reaches the uninterrupted run's weights; after it the
    shared codes are multiples of the full step."""
    images, labels = _bars(96)
    params = {
        "preset": "fds",
        "latent_dim": 5,
        "private_dim": 2,
        "hidden_dims": [16],
        "epochs": 3,
        "batch_size": 16,
        "seed": 4,
        "public_step": 0.5,
        "public_step_start": 2.0,
        "public_step_warmup_epochs": 2,
        "verbose": False,
    }
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    reference = FDS(**params).fit(images, sensitive=labels, run_dir=tmp_path / "ref")
    # mid second epoch (5 steps per epoch), inside the warm-up
    fit_stopped_at(8, lambda: FDS(**params).fit(images, sensitive=labels, run_dir=tmp_path / "cut"))
    resumed = FDS(**params).fit(images, sensitive=labels, run_dir=tmp_path / "cut", resume=True)
    for a, b in zip(resumed.model_.parameters(), reference.model_.parameters(), strict=True):
        assert torch.equal(a, b)
    public = resumed.transform(images, part="public")
    np.testing.assert_allclose(public * 2, np.round(public * 2), atol=1e-5)
    unscheduled = params | {"public_step_start": None, "public_step_warmup_epochs": 0}
    plain = FDS(**unscheduled).fit(images, sensitive=labels)
    assert not torch.equal(
        plain.model_.encoder.public[0].weight, reference.model_.encoder.public[0].weight
    )  # the schedule changed the training


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"public_step_start": 2.0, "public_step_warmup_epochs": 2}, "public_step_start"),
        ({"public_step": 0.5, "public_step_warmup_epochs": 2}, "public_step_start"),
        ({"public_step": 0.5, "public_step_start": 2.0}, "public_step_warmup_epochs"),
        ({"architecture": "conv", "swap_invariance": 10.0}, "swap_invariance"),
    ],
)
def test_a_step_schedule_without_a_step_or_half_given_is_refused_naming_it(params, named) -> None:
    images, labels = _bars(32)
    base = {"preset": "fds", "latent_dim": 5, "private_dim": 2, "hidden_dims": [16], "epochs": 1}
    model = FDS(**base, **params, verbose=False)
    with pytest.raises(ConfigError, match=named):
        model.fit(images, sensitive=labels)


@pytest.mark.parametrize(
    "params",
    [
        {"preset": "vae", "architecture": "conv"},  # images without a key
        {"preset": "fds", "architecture": "mlp"},  # a key, but not the split image encoder
    ],
)
def test_a_public_step_without_an_image_key_model_is_refused_naming_it(params) -> None:
    images, labels = _bars(32)
    model = FDS(latent_dim=5, hidden_dims=[16], epochs=1, public_step=0.5, verbose=False, **params)
    with pytest.raises(ConfigError, match="public_step"):
        model.fit(images, sensitive=labels if params["preset"] == "fds" else None)


def test_the_cli_refuses_a_public_step_on_a_table_in_one_line_writing_nothing(tmp_path) -> None:
    config = tmp_path / "fds.yaml"
    config.write_text("preset: fds\npublic_step: 0.5\nepochs: 1\n")
    out = tmp_path / "run"
    args = ["train", "--data", "census", "--sensitive", "sex", "--config", str(config)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2
    assert "public_step" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_the_quickstart_trains_a_what_where_key_model() -> None:
    from fds.workflows.quickstart import QUICKSTART
    from fds.workflows.train import split_run_params

    params, data = split_run_params(QUICKSTART)
    config = for_data(make_config(**params).resolved(), (1, 32, 32))
    assert data == {"data": "shapes"}
    assert choose_architecture(config, (1, 32, 32)) == "what_where"
    assert config.private_dim and config.private_only is False


@pytest.mark.parametrize("epochs", [None, 2, 50])
def test_the_quickstarts_coarser_step_lasts_the_first_half_of_any_training(epochs) -> None:
    """`fds quickstart --epochs N` and the benchmarks keep the step's warm-up at half the
    training, so the public block is always trained at the step it is shared at."""
    from fds.workflows.quickstart import QUICKSTART, quickstart_params
    from fds.workflows.train import split_run_params

    params, _ = split_run_params(quickstart_params(epochs))
    config = make_config(**params).resolved()
    assert config.epochs == (epochs or QUICKSTART["epochs"])
    assert config.public_step_warmup_epochs == config.epochs / 2
    assert config.public_step_start > config.public_step > 0


def _decoder_drawing(drawing: torch.Tensor, ink: bool) -> WhatWhereDecoder:
    """A decoder whose key picks exactly `drawing` (logits [16, 16]) from its bank, placed at
    offset 0 with the public zoom at 1: what the decoder then does with the drawing's own size
    and centre is all that varies."""
    decoder = WhatWhereDecoder(
        6, (1, 16, 16), (8,), 1, where_dim=4, key_dim=2, ink=torch.sigmoid if ink else None
    )
    with torch.no_grad():
        decoder.template.out.weight.zero_()
        decoder.template.out.bias.zero_()
        decoder.pick[-1].weight.zero_()
        decoder.pick[-1].bias.fill_(-50.0)
        decoder.pick[-1].bias[0] = 50.0
        decoder.drawings.weight.zero_()
        decoder.drawings.weight[:, 0] = drawing.flatten() / DRAWING_GAIN
        for shift in (decoder.rows, decoder.cols):
            shift[-1].weight.zero_()
            shift[-1].bias.fill_(-50.0)
            shift[-1].bias[8] = 50.0  # offset 8 − 16 // 2 = 0
    return decoder


def _blob(top: int, left: int, height: int, width: int) -> torch.Tensor:
    logits = torch.full((16, 16), -12.0)
    logits[top : top + height, left : left + width] = 12.0
    return logits


@pytest.mark.parametrize("ink", [True, False])
def test_the_drawn_size_and_centre_come_from_the_public_block_alone(ink: bool) -> None:
    """Two keys whose drawings differ in size and place: with `ink`, the decoder brings each
    drawing to one centre and spread before the public block sizes and places it, so a swapped
    key cannot move or resize the sprite; without it, the drawing's own size shows through."""
    torch.manual_seed(0)
    z = torch.randn(1, 6)
    small = torch.sigmoid(_decoder_drawing(_blob(2, 3, 3, 3), ink)(z)).detach().numpy()
    large = torch.sigmoid(_decoder_drawing(_blob(6, 5, 7, 6), ink)(z)).detach().numpy()
    sizes = sprite_sizes(small, (1, 16, 16)), sprite_sizes(large, (1, 16, 16))
    places = sprite_positions(small, (1, 16, 16)), sprite_positions(large, (1, 16, 16))
    if ink:
        np.testing.assert_allclose(sizes[0], sizes[1], rtol=0.1)
        np.testing.assert_allclose(places[0], places[1], atol=0.02)
        np.testing.assert_allclose(places[0], 0.5, atol=0.02)  # offset 0: the frame's centre
    else:
        assert sizes[1][0, 0] > 1.5 * sizes[0][0, 0]
        assert abs(places[1][0, 0] - places[0][0, 0]) > 0.1


def test_the_key_resizes_and_moves_its_drawing_only_within_its_frame() -> None:
    """The key may give its drawing the spread and ink centre its attribute has at one public
    size and place, up to e^±KEY_LOG_SIZE and KEY_SHIFT_PIXELS: a swapped key can change the
    sprite's size and place by no more."""
    torch.manual_seed(0)
    z = torch.randn(1, 6)
    decoder = _decoder_drawing(_blob(5, 5, 5, 5), ink=True)
    plain = torch.sigmoid(decoder(z)).detach().numpy()
    with torch.no_grad():
        decoder.frame[-1].bias.fill_(50.0)  # every bound reached: larger, moved +1 px each way
    framed = torch.sigmoid(decoder(z)).detach().numpy()
    chw = (1, 16, 16)
    ratio = sprite_sizes(framed, chw)[0, 0] / sprite_sizes(plain, chw)[0, 0]
    assert ratio == pytest.approx(np.exp(KEY_LOG_SIZE), rel=0.1)
    moved = (sprite_positions(framed, chw) - sprite_positions(plain, chw))[0] * 16
    np.testing.assert_allclose(np.abs(moved), KEY_SHIFT_PIXELS, atol=0.25)
