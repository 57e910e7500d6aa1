"""What/where networks for images: a drawing made in a frame of its own, then sized and placed.

The decoder draws a template from the whole code ("what"), resizes it about its centre and
places it with two soft shifts, one over rows and one over columns, all three computed from the
public block ("where"), as a spatial transformer places a glimpse (Jaderberg et al. 2015) but
with the shifts separable and spread over offsets, so the placement gets a gradient from every
offset. The template's layers are modulated by the private block (FiLM, Perez et al. 2018), so
the key steers what is drawn; the key also adds a soft choice among a bank of learned drawings
and turns the drawing by an angle it predicts, resampled once with the resize, so a rotated
outline need not be redrawn by the MLP pixel by pixel. For a model with a private block, the
key is read by an encoder that sees each image in a frame of its own (centred on its centre of
pixel mass and zoomed to a fixed spread): it cannot carry the position or the size, which
therefore stay in the public block. The decoder mirrors it: the key's drawing is brought to one
centre and one spread (its ink's centre of mass and radius of gyration, read off the drawing)
before the public block's zoom and shifts, so a swapped key changes what is drawn
without moving or resizing it beyond the key's own frame: a size factor within e^±0.3 and a
shift within a pixel, the spread and ink centre that the attribute itself gives a drawing at one
nominal size and place (a triangle's ink sits off its box's centre). The public encoder reads the
image and the key's means, so it can take that effect out and hold the nominal size and place,
which do not tell the attribute (VFAE conditions its encoder on the attribute for the same
reason, Louizos et al. 2016).

Measured on the built-in `shapes` (docs/privacy-key.md): a decoder that must place the drawing
itself (MLP or stride-2 convolutions) still drew blobs after the quickstart's training, while
this one drew the shapes; a key encoder that saw the uncentred image carried the position, so
swaps moved the sprite. Most keyed errors were triangles drawn as rounded blobs (a triangle has 8
distinct orientations 15° apart); the bank and the turn raised the quickstart's keyed decodings
from 0.75 to 0.83 of the originals' accuracy (triangles 0.25 → 0.41). The key still carried the
size (a forest reads the scale off the private block at R² 0.97–0.99: the canonical frame's zoom
stops at 1 and its resampling blurs small sprites), and the template's extent followed it, so
swaps resized the sprite (seed 1 of the benchmark: swap size R² 0.42); with the drawing brought
to one spread, 0.86, and the quickstart's keyed decodings rose to 0.88 (seed 0, 25 epochs). The
key's frame with a public encoder that reads the key lowered the shape leakage the censoring
terms leave in the public block, and raised the key's figures (docs/privacy-key.md).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fds.nn.mlp import mlp

WHERE_HIDDEN = 64  # the small networks that place the drawing
MAX_LOG_ZOOM = 1.4  # the drawing is resized by a factor in [e^-1.4, e^1.4] ≈ [1/4, 4]
KEY_DRAWINGS = 8  # learned drawings the key blends (softmax weights) into its template
# The bank is stored divided by this gain, so Adam's steps (≈ lr each) move its logits this many
# times faster: at gain 1 the quickstart's 1 750 steps of 3e-3 could move a logit by 5 at most.
DRAWING_GAIN = 10.0
DRAWN_SPREAD = 0.25  # radius of gyration the key's drawing is brought to before the public zoom
# The key's own frame: at one public size and position, the drawings of different attributes
# differ in ink spread and centre (a triangle's ink sits off its box's centre), so the key may
# resize its drawing by up to e^±KEY_LOG_SIZE and move its ink centre by up to KEY_SHIFT_PIXELS;
# the public block can then hold the nominal size and place, which do not tell the attribute.
KEY_LOG_SIZE = 0.3
KEY_SHIFT_PIXELS = 1.0


def shift_indices(n: int) -> torch.Tensor:
    """[n, n + 1] source index of output position i under offset o − n//2, edges replicated."""
    offsets = torch.arange(n + 1) - n // 2
    return (torch.arange(n)[:, None] - offsets[None, :]).clamp(0, n - 1)


def shift_matrices(weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """[B, n, n] matrices that move a map along one axis by each offset, weighted by `weights`
    ([B, n + 1], a distribution over offsets): a one-hot weight is an exact shift."""
    batch, n = len(weights), indices.shape[0]
    out = weights.new_zeros(batch, n, n)
    return out.scatter_add_(
        2, indices[None].expand(batch, -1, -1), weights[:, None, :].expand(-1, n, -1)
    )


@functools.cache
def _base_grid(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[h, w, 3] output pixel centres (x, y, 1) in [-1, 1] units, as `F.affine_grid` makes them
    with align_corners=False."""
    xs = torch.linspace(-1, 1, w, dtype=dtype, device=device) * ((w - 1) / w)
    ys = torch.linspace(-1, 1, h, dtype=dtype, device=device) * ((h - 1) / h)
    return torch.stack(
        [xs.expand(h, w), ys[:, None].expand(h, w), torch.ones_like(xs).expand(h, w)], -1
    )


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """`F.affine_grid(theta, [B, C, h, w], align_corners=False)` bit for bit, forward and
    backward at any thread count, in 40 % of its CPU time: the base grid is made once per size
    (torch makes it on every call, twice per training step of the quickstart); the batched
    matmul is torch's own. In `theta`'s dtype, as torch's, under autocast too."""
    base = _base_grid(h, w, theta.dtype, theta.device).view(1, h * w, 3)
    with torch.autocast(theta.device.type, enabled=False):
        grid = base.expand(len(theta), h * w, 3).contiguous().bmm(theta.transpose(1, 2))
    return grid.view(len(theta), h, w, 2)


def _zoomed(
    maps: torch.Tensor,
    zoom: torch.Tensor,
    turn: torch.Tensor | None,
    centre: torch.Tensor | None = None,
) -> torch.Tensor:
    """Maps [B, K, H, W] resized by `zoom` [B] and turned by the unit vectors `turn` [B, 2]
    (cos, sin; None: not turned) about `centre` [B, 2] (x, y in `affine_grid`'s [-1, 1] units;
    None: the frame's centre), which lands on the frame's centre, in one bilinear resample with
    the edges replicated."""
    zero = torch.zeros_like(zoom)
    inverse = 1 / zoom  # affine_grid maps output coordinates to input ones
    if turn is None:
        cos, sin = inverse, zero
    else:
        cos, sin = turn[:, 0] * inverse, turn[:, 1] * inverse
    cx, cy = (zero, zero) if centre is None else centre.unbind(1)
    theta = torch.stack([torch.stack([cos, -sin, cx], 1), torch.stack([sin, cos, cy], 1)], 1)
    grid = affine_grid(theta, *maps.shape[2:])
    return F.grid_sample(maps, grid, padding_mode="border", align_corners=False)


def mass_frames(mass: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre of pixel mass [B, 2] (x, y) and radius of gyration [B] of maps [B, H, W], in the
    [-1, 1] units of `affine_grid` (the frame is 2 units wide); an empty map: its centre."""
    _, h, w = mass.shape
    total = mass.sum((1, 2)).clamp_min(1e-6)
    ys = (torch.arange(h, dtype=mass.dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=mass.dtype) + 0.5) / w * 2 - 1
    cy = (mass.sum(2) * ys).sum(1) / total
    cx = (mass.sum(1) * xs).sum(1) / total
    spread2 = (ys[None, :, None] - cy[:, None, None]) ** 2 + (
        xs[None, None, :] - cx[:, None, None]
    ) ** 2
    radius = ((mass * spread2).sum((1, 2)) / total).sqrt()
    return torch.stack([cx, cy], 1), radius


class FiLMMLP(nn.Module):
    """An MLP whose hidden layers are scaled and shifted by a conditioning vector (FiLM)."""

    def __init__(self, n_in: int, n_cond: int, hidden: Sequence[int], n_out: int) -> None:
        super().__init__()
        widths = [n_in, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.films = nn.ModuleList(nn.Linear(n_cond, 2 * b) for b in hidden)
        self.out = nn.Linear(widths[-1], n_out)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = x
        for layer, film in zip(self.layers, self.films, strict=True):
            scale, shift = film(cond).chunk(2, dim=1)
            h = torch.relu(layer(h) * (1 + scale) + shift)
        return self.out(h)


class WhatWhereDecoder(nn.Module):
    """Latent → template maps (FiLM-modulated by the key) → soft row and column shifts from the
    `where_dim` first latents. Outputs the likelihood's (P, C·H·W) parameter layout, flattened.

    `ink` (with a key) maps that layout to pixel intensities (the likelihood's mean): the drawing
    is then centred on its ink and resized to `DRAWN_SPREAD` before the public block's zoom."""

    def __init__(
        self,
        latent_dim: int,
        chw: tuple[int, int, int],
        hidden: Sequence[int],
        params_per_pixel: int,
        where_dim: int,
        key_dim: int = 0,
        ink: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        # with a key, the drawing is brought to one centre and spread by its own ink before the
        # public block sizes and places it: what the key draws cannot move or resize the sprite
        self.ink = ink if key_dim else None
        c, h, w = chw
        self.chw, self.params_per_pixel = chw, params_per_pixel
        self.where_dim, self.key_dim = where_dim, key_dim
        n_maps = params_per_pixel * c * h * w
        if key_dim:
            self.template: nn.Module = FiLMMLP(latent_dim, key_dim, hidden, n_maps)
            # a Linear (not a bare Parameter), so DP-SGD (Opacus) clips its per-example gradients
            self.drawings = nn.utils.skip_init(nn.Linear, KEY_DRAWINGS, n_maps, bias=False)
            with torch.no_grad():
                self.drawings.weight.copy_(
                    torch.randn(KEY_DRAWINGS, n_maps).T * (0.1 / DRAWING_GAIN)
                )
            self.pick = mlp(key_dim, (WHERE_HIDDEN,), KEY_DRAWINGS)
            self.turn = mlp(key_dim, (WHERE_HIDDEN,), 2)
            self.frame = mlp(key_dim, (WHERE_HIDDEN,), 3)  # log size, then the ink's shift
            nn.init.zeros_(self.frame[-1].weight)  # starts at the drawing's own frame
            nn.init.zeros_(self.frame[-1].bias)
        else:
            self.template = mlp(latent_dim, hidden, n_maps)
        self.rows = mlp(where_dim, (WHERE_HIDDEN,), h + 1)
        self.cols = mlp(where_dim, (WHERE_HIDDEN,), w + 1)
        self.zoom = mlp(where_dim, (WHERE_HIDDEN,), 1)
        nn.init.zeros_(self.zoom[-1].weight)  # starts at 1: the template as drawn
        nn.init.zeros_(self.zoom[-1].bias)
        self.register_buffer("upright", torch.tensor([1.0, 0.0]), persistent=False)
        self.register_buffer("row_index", shift_indices(h), persistent=False)
        self.register_buffer("col_index", shift_indices(w), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c, h, w = self.chw
        turn = None
        if self.key_dim:
            key = z[:, -self.key_dim :]
            picked = self.drawings(torch.softmax(self.pick(key), dim=1)) * DRAWING_GAIN
            maps = self.template(z, key) + picked
            # a unit vector (cos, sin), biased towards no turn so an untrained key draws upright
            turn = F.normalize(self.turn(key) + self.upright, dim=1)
        else:
            maps = self.template(z)
        maps = maps.view(len(z), self.params_per_pixel * c, h, w)
        where = z[:, : self.where_dim]
        zoom = torch.exp(torch.tanh(self.zoom(where)[:, 0]) * MAX_LOG_ZOOM)
        centre = None
        if self.ink is not None:
            centre, radius = self._drawn_frame(maps)
            frame = torch.tanh(self.frame(z[:, -self.key_dim :]))
            zoom = zoom * (DRAWN_SPREAD / radius) * torch.exp(frame[:, 0] * KEY_LOG_SIZE)
            # a shift of the output by up to KEY_SHIFT_PIXELS along each axis of the drawing
            pixel = torch.tensor([2.0 / w, 2.0 / h], dtype=frame.dtype)  # affine_grid's units
            centre = centre + frame[:, 1:] * (KEY_SHIFT_PIXELS * pixel) / zoom[:, None]
        maps = _zoomed(maps, zoom, turn, centre)
        rows = shift_matrices(torch.softmax(self.rows(where), dim=1), self.row_index)
        cols = shift_matrices(torch.softmax(self.cols(where), dim=1), self.col_index)
        placed = rows[:, None] @ maps @ cols[:, None].transpose(2, 3)
        return placed.reshape(len(z), -1)

    def _drawn_frame(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre and radius of gyration of the drawing's ink above its faintest pixel. The
        gradient flows through them: with the frame read off a detached drawing, the quickstart's
        key learned more slowly (25 epochs, seed 0: keyed 0.74 of the originals' accuracy
        against 0.88 with the gradient)."""
        c, h, w = self.chw
        ink = self.ink(maps.reshape(len(maps), -1)).view(len(maps), c, h, w).sum(1)
        mass = ink - ink.amin((1, 2), keepdim=True)
        centre, radius = mass_frames(mass)
        return centre, radius.clamp(DRAWN_SPREAD / 4, DRAWN_SPREAD * 4)


class CanonicalEncoder(nn.Module):
    """An MLP reading each image in a frame of its own: moved so that its centre of pixel mass
    sits at the centre and zoomed so that the mass spreads over `SPREAD` of the frame (radius of
    gyration), bilinearly. Whatever it encodes, it cannot be the position; the size gets through
    in part (the zoom stops at 1, and enlarging blurs small drawings), so the decoder sizes its
    drawing by construction."""

    SPREAD = 1 / 8

    def __init__(self, chw: tuple[int, int, int], hidden: Sequence[int], n_out: int) -> None:
        super().__init__()
        self.chw = chw
        self.net = mlp(chw[0] * chw[1] * chw[2], hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.chw
        images = x.view(-1, c, h, w)
        with torch.no_grad():  # where to look is read off the pixels, not learned
            grid = affine_grid(self._frames(images.sum(1)), h, w)
        canonical = F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
        return self.net(canonical.reshape(len(x), -1))

    def _frames(self, mass: torch.Tensor) -> torch.Tensor:
        """[B, 2, 3] affine maps from the canonical frame to each image, in the [-1, 1] units
        of `affine_grid`."""
        centre, radius = mass_frames(mass)
        zoom = (radius / (2 * self.SPREAD)).clamp(1 / max(mass.shape[1:]), 1.0)
        zero = torch.zeros_like(zoom)
        cx, cy = centre.unbind(1)
        return torch.stack([torch.stack([zoom, zero, cx], 1), torch.stack([zero, zoom, cy], 1)], 1)


class SplitEncoder(nn.Module):
    """Two encoders, one per latent block, whose outputs are interleaved into the posterior's
    layout (each of the `params_per_dim` parameter groups holds the public block, then the
    private block). The public encoder reads the image and the key's means, detached: it may use
    the attribute to take the attribute's effect out of what it encodes, and its censoring terms
    never train the key.

    `public_step` (> 0): the public block's posterior means are rounded to multiples of it, with
    the gradient passed straight through (Bengio et al. 2013). Images at one position and size
    then share one public code whatever their sensitive attribute, as long as their pixels move
    the encoder by less than a step: the sub-step differences an attribute leaves in the pixels
    (on `shapes` a sprite's ink centre and spread tell its shape) do not reach the shared code,
    which no batch-level penalty achieved. What the rounding takes (mean − rounded) is added to
    the key's means through a learned map, so the decoder can still place the sprite to the
    pixel: the key is private, and a swap moves the sprite by less than a step.

    `step_start` and `step_warmup_epochs`: during training the step moves linearly from the
    start to `public_step` over the warm-up (`set_progress`, called by the model's loss); in
    eval mode it is always `public_step`. On `shapes` (step 0.75) a start 4 × the step, a public
    block too coarse to draw from at first, raised seed 0's keyed decodings from 0.715 to 0.845
    of the originals' at the same leakage, but moved the sprite's size into the key
    (docs/privacy-key.md)."""

    def __init__(
        self,
        public: nn.Module,
        private: nn.Module,
        public_dim: int,
        private_dim: int,
        params_per_dim: int,
        public_step: float = 0.0,
        step_start: float | None = None,
        step_warmup_epochs: float = 0.0,
    ) -> None:
        super().__init__()
        self.public, self.private = public, private
        self.public_dim, self.private_dim = public_dim, private_dim
        self.params_per_dim = params_per_dim
        self.public_step, self.step_warmup_epochs = public_step, step_warmup_epochs
        self.step_start = public_step if step_start is None else step_start
        self.step = public_step  # the step in use: `set_progress` moves it during the warm-up
        if public_step:  # what the rounding takes from the public block, the key may keep
            self.remainder = nn.Linear(public_dim, private_dim)
            nn.init.zeros_(self.remainder.weight)
            nn.init.zeros_(self.remainder.bias)

    def set_progress(self, epoch_progress: float | None) -> None:
        """The step for training at `epoch_progress` (epochs done, fractional): `step_start`
        moved linearly to `public_step` over the first `step_warmup_epochs`; None (outside
        training): `public_step`, so what is shared never depends on the schedule."""
        self.step = self.public_step
        if epoch_progress is not None and epoch_progress < self.step_warmup_epochs:
            done = epoch_progress / self.step_warmup_epochs
            self.step = self.step_start + (self.public_step - self.step_start) * done

    def _step(self) -> float:
        """The rounding step now: the scheduled one in training, else the full step, which is
        what is shared."""
        return self.step if self.training else self.public_step

    def _public_params(self, x: torch.Tensor, key_means: torch.Tensor) -> list[torch.Tensor]:
        """The public encoder's parameter groups for `x`, read beside the key's means
        (detached: the public block's terms never train the key)."""
        seen = torch.cat([x, key_means.detach()], dim=1)
        return list(self.public(seen).chunk(self.params_per_dim, dim=1))

    def public_means(self, x: torch.Tensor) -> torch.Tensor:
        """The public block's posterior means before any rounding."""
        key_means = self.private(x).chunk(self.params_per_dim, dim=1)[0]
        return self._public_params(x, key_means)[0]

    def kept_remainder(self, mean: torch.Tensor) -> torch.Tensor:
        """What the key's means keep of the rounding of the public means `mean` (mean −
        rounded, through the learned map; zeros without a step)."""
        step = self._step()
        if not step:
            return mean.new_zeros(len(mean), self.private_dim)
        return self.remainder(mean - torch.round(mean / step) * step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        private = list(self.private(x).chunk(self.params_per_dim, dim=1))
        public = self._public_params(x, private[0])
        step = self._step()
        if step:
            mean = public[0]
            rounded = torch.round(mean / step) * step
            public[0] = mean + (rounded - mean).detach()
            private[0] = private[0] + self.kept_remainder(mean)
        return torch.cat(
            [part for pair in zip(public, private, strict=True) for part in pair], dim=1
        )
