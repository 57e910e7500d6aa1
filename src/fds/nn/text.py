"""Text networks over token ids (`fds.data.multimodal.text`): a convolutional encoder (n-gram
filters, max over the record's tokens: several times faster than a GRU on CPU and as good on
short captions) and an autoregressive GRU decoder conditioned on the latent code (teacher
forcing to train, greedy decoding to write)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fds.data.multimodal.text import BOS, EOS, PAD

__all__ = ["TextDecoder", "TextEncoder", "token_nll"]

_EMBED = 32
_FILTERS = 128
_HIDDEN = 96


class TextEncoder(nn.Module):
    """(N, T) ids → embeddings → 1- to 3-gram convolutions → max over real tokens → MLP head."""

    def __init__(self, vocab_size: int, n_out: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, _EMBED, padding_idx=PAD)
        self.ngrams = nn.Conv1d(_EMBED, _FILTERS, kernel_size=3, padding=1)
        self.head = nn.Sequential(
            nn.Linear(_FILTERS, _FILTERS), nn.ReLU(), nn.Linear(_FILTERS, n_out)
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        grams = torch.relu(self.ngrams(self.embed(ids).transpose(1, 2)))  # (N, filters, T)
        grams = grams.masked_fill((ids == PAD)[:, None], 0.0)  # ReLU ≥ 0: padding never wins
        return self.head(grams.amax(2))


class TextDecoder(nn.Module):
    """z → the GRU's first state; every step reads the previous token and z, outputs logits."""

    def __init__(self, latent_dim: int, vocab_size: int, length: int, hidden: int = _HIDDEN):
        super().__init__()
        self.length = length
        self.start = nn.Linear(latent_dim, hidden)
        self.embed = nn.Embedding(vocab_size, _EMBED)
        self.gru = nn.GRU(_EMBED + latent_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (N, T, V) of each token given the true tokens before it."""
        previous = torch.cat([torch.full_like(ids[:, :1], BOS), ids[:, :-1]], 1)
        steps = torch.cat([self.embed(previous), z[:, None].expand(-1, ids.shape[1], -1)], -1)
        states, _ = self.gru(steps, torch.tanh(self.start(z))[None])
        return self.out(states)

    @torch.no_grad()
    def greedy(self, z: torch.Tensor) -> torch.Tensor:
        """(N, T) ids: the most likely token at every step; padding after `<eos>`."""
        state = torch.tanh(self.start(z))[None]
        token = torch.full((len(z), 1), BOS, dtype=torch.long)
        done = torch.zeros(len(z), dtype=torch.bool)
        out = torch.full((len(z), self.length), PAD, dtype=torch.long)
        for t in range(self.length):
            step, state = self.gru(torch.cat([self.embed(token), z[:, None]], -1), state)
            token = self.out(step).argmax(-1)
            out[:, t] = torch.where(done, PAD, token[:, 0])
            done |= token[:, 0] == EOS
        out[~done, -1] = EOS  # a record that never ended is cut at the fitted length
        return out


def token_nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Per-record negative log-likelihood of its tokens up to and including `<eos>`: [batch]."""
    nll = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
    return (nll * (ids != PAD)).sum(1)
