"""A nearest-neighbour attacker on the public block, censored (weight `local_censor`).

The group MMD compares a batch's groups at the batch's own scale: 128 codes cannot show that,
at the same position and size, a triangle's public code sits a hair away from a square's, yet an
attacker fitted on thousands of codes reads exactly that (shapes: 0.68-0.77 against a majority
of 0.31). This term keeps a bank of the public codes (posterior means, detached) and sensitive
groups of the last `BANK_SIZE` training examples, and asks for each code of the batch how its
bank neighbours' groups are mixed: a kernel (Nadaraya-Watson) estimate of p(s | public code),
with a width set by each batch's distance to its `NEIGHBOURS`-th nearest bank code, so it sees
the scale at which the codes lie, however fine. The encoder is penalised by the estimate's KL
divergence from the bank's group shares: zero where the neighbourhood of every code holds every
group in its overall proportion, which is what no attacker beating the base rate means. Its
gradient moves each code toward its neighbours of the other groups.

The bank holds training codes, so it is kept out of the model's files and checkpoints (a
non-persistent buffer) and starts empty: the term is silent until the bank holds `MIN_BANK`
codes, and a resumed run refills it, so with this term `--resume` does not continue bit for bit.
It couples the examples of a batch with earlier ones, so DP-SGD refuses it.

Measured on shapes (docs/privacy-key.md, "Censoring the public block on images"): at weights 10
to 100 it lowered a gradient-boosting attacker's accuracy on the public block by 1-6 points, but
the whole-code and per-coordinate views' gradients broke the key's training (keyed decodings at
chance after 12 epochs) for 4.3 times the training CPU. No preset sets it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fds.objectives.attributes import AttributeSpec, attribute_groups
from fds.objectives.base import LossTerm, Network, TermInputs

BANK_SIZE = 4096  # recent training codes the attacker compares against
MIN_BANK = 512  # the term is silent until the bank holds this many codes
NEIGHBOURS = 16  # the kernel's width: the median distance to this many-th nearest bank code
WIDTHS = (1.0, 10.0, 100.0)  # kernel widths (squared), times the neighbour distance
PSEUDO_COUNT = 1.0  # prior pseudo-counts per group, so an empty neighbourhood says "base rate"


class CodeBank(nn.Module):
    """A first-in first-out bank of detached codes and their sensitive groups (one column per
    attribute). Not saved with the model: it holds training records' codes."""

    def __init__(self, dim: int, n_attributes: int, size: int = BANK_SIZE) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("codes", torch.zeros(size, dim), persistent=False)
        self.register_buffer(
            "groups", torch.zeros(size, n_attributes, dtype=torch.long), persistent=False
        )
        self.filled = 0
        self.cursor = 0

    def push(self, codes: torch.Tensor, groups: torch.Tensor) -> None:
        """Add a batch (the oldest codes make room), detached."""
        codes, groups = codes.detach()[-self.size :], groups[-self.size :]
        rows = (self.cursor + torch.arange(len(codes))) % self.size
        self.codes[rows] = codes.to(self.codes.dtype)
        self.groups[rows] = groups
        self.cursor = int((self.cursor + len(codes)) % self.size)
        self.filled = min(self.size, self.filled + len(codes))

    def view(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.codes[: self.filled].clone(), self.groups[: self.filled].clone()


def neighbour_divergence(
    codes: torch.Tensor,
    bank_codes: torch.Tensor,
    bank_groups: torch.Tensor,
    n_groups: int,
) -> torch.Tensor:
    """Per-example KL divergence [batch] of kernel estimates of p(group | code), read off the
    bank's codes [M, d] and groups [M], from the bank's group shares; codes [B, d]. Averaged over
    kernel widths `WIDTHS` times the batch's median distance to its `NEIGHBOURS`-th nearest bank
    code: the narrowest sees the finest differences, the wider ones keep a gradient between
    groups that lie further apart."""
    d2 = torch.cdist(codes, bank_codes).pow(2)
    k = min(NEIGHBOURS, len(bank_codes))
    base = d2.detach().kthvalue(k, dim=1).values.median().clamp_min(1e-12)
    onehot = nn.functional.one_hot(bank_groups, n_groups).to(codes.dtype)
    shares = (onehot.sum(0) + PSEUDO_COUNT) / (len(bank_groups) + PSEUDO_COUNT * n_groups)
    total = codes.new_zeros(len(codes))
    for scale in WIDTHS:
        counts = torch.exp(-d2 / (base * scale)) @ onehot + PSEUDO_COUNT * shares
        local = counts / counts.sum(1, keepdim=True)
        total = total + (local * (local.log() - shares.log())).sum(1)
    return total / len(WIDTHS)


def views(codes: torch.Tensor) -> list[torch.Tensor]:
    """The views the attacker reads: the whole code and each coordinate alone (a coordinate's
    fine structure, e.g. a size code whose levels differ by shape, is lost among the other
    coordinates' spread in the whole code's neighbourhoods)."""
    if codes.shape[1] == 1:
        return [codes]
    return [codes] + [codes[:, i : i + 1] for i in range(codes.shape[1])]


def local_censor(
    public: torch.Tensor,
    s: torch.Tensor,
    specs: Sequence[AttributeSpec],
    bank: CodeBank,
    update: bool,
) -> torch.Tensor:
    """Mean over the batch and the attributes of `neighbour_divergence` against the bank (before
    this batch joins it, when `update`); zero while the bank is too small."""
    groups = torch.stack([attribute_groups(s[:, j], spec) for j, spec in enumerate(specs)], 1)
    bank_codes, bank_groups = bank.view()
    penalty = public.new_zeros(())
    if len(bank_codes) >= MIN_BANK:
        for j, spec in enumerate(specs):
            n_groups = spec.n_classes if spec.kind == "categorical" else int(groups[:, j].max()) + 1
            n_groups = max(n_groups, int(bank_groups[:, j].max()) + 1)
            pairs = zip(views(public), views(bank_codes), strict=True)
            for codes, reference in pairs:
                divergence = neighbour_divergence(codes, reference, bank_groups[:, j], n_groups)
                penalty = penalty + divergence.mean() / len(specs)
    if update:
        bank.push(public, groups)
    return penalty


def _local_censor(inputs: TermInputs, weight: float) -> torch.Tensor:
    public, _ = inputs.blocks()  # what transform shares: the attacker reads these
    bank = inputs.networks[BANK.name]
    return weight * local_censor(public, inputs.s, inputs.attributes, bank, bank.training)


BANK = Network(
    "code_bank",
    lambda config, attributes, layout: CodeBank(config.public_dim, len(attributes)),
)

TERM = LossTerm(
    name="local_censor",
    weight="local_censor",
    value=_local_censor,
    needs=frozenset({"private_block", "labels"}),
    when=lambda config: bool(config.local_censor),  # no bank (memory) when it is off
    per_example=False,
    warmup="censor_warmup_epochs",
    network=BANK,
)
