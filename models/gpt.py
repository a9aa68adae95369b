"""`gpt`: a decoder-only Transformer over bytes, the suite's extension beyond the papers' models.

Written here, no hub weights: learned token and position embeddings, pre-LayerNorm blocks (causal
`scaled_dot_product_attention`, a GELU MLP 4x wide), a final LayerNorm and an output layer tied to
the token embedding. At width 1 it is 384 wide with 6 blocks of 6 heads (a `paper`-class size for
GPUs); `width` scales the width (heads of 64, at least one), `depth` sets the blocks. The position
table has the dataset's window length (`InputSpec.context`).

The forward returns the logits of every position as one [batch x context, vocab] matrix, and the
dataset's targets come flattened the same way: every method's `cross_entropy(logits, targets)`,
its meters (`len(targets)` counts tokens, so samples/s is tokens/s) and evaluation then need no
case of their own for a language model.

Initialisation follows GPT-2: normal(0, 0.02) weights, zero biases, and the projections that write
into the residual stream scaled by 1/sqrt(2 x depth).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.inputs import InputSpec

from .registry import register_model

BASE_WIDTH = 384
BASE_DEPTH = 6
HEAD_WIDTH = 64


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)): one pre-LayerNorm Transformer block."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.out = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(self.ln1(x)).view(batch, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [batch, heads, length, head width]
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """Byte (or token) windows [batch, context] -> next-token logits [batch x context, vocab]."""

    def __init__(self, vocab_size: int, context: int, width: int, depth: int, heads: int):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.apply(self._init)
        for block in self.blocks:
            for residual in (block.proj, block.out):
                nn.init.normal_(residual.weight, std=0.02 / math.sqrt(2 * depth))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        x = self.tokens(tokens) + self.positions(torch.arange(length, device=tokens.device))
        for block in self.blocks:
            x = block(x)
        # The output layer is the token embedding, transposed (tied).
        return F.linear(self.ln_f(x), self.tokens.weight).flatten(0, 1)

    def pipeline_blocks(self) -> list[nn.Module]:
        """The model as a chain whose composition is `forward` (embeddings, each block, the tied
        output layer), sharing this model's parameters: where a pipeline may cut it into stages. The
        token embedding is in the first and the last link (a pipeline sums its two gradients)."""
        return [_Embed(self.tokens, self.positions), *self.blocks, _Head(self.ln_f, self.tokens)]


class _Embed(nn.Module):
    """Token plus position embeddings: GPT.forward's first line, as a pipeline's first link."""

    def __init__(self, tokens: nn.Embedding, positions: nn.Embedding):
        super().__init__()
        self.tokens, self.positions = tokens, positions

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.tokens(tokens) + self.positions(torch.arange(tokens.shape[1], device=tokens.device))


class _Head(nn.Module):
    """The final LayerNorm and the output layer tied to the token embedding: GPT.forward's last line."""

    def __init__(self, ln_f: nn.LayerNorm, tokens: nn.Embedding):
        super().__init__()
        self.ln_f, self.tokens = ln_f, tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.ln_f(x), self.tokens.weight).flatten(0, 1)


def gpt_size(width: float, depth: int) -> tuple[int, int, int]:
    """(width, depth, heads) of the gpt at a width multiplier and depth (0: the base depth)."""
    size = max(1, round(BASE_WIDTH * width))
    heads = max(1, round(size / HEAD_WIDTH))
    while size % heads:  # heads must divide the width
        heads -= 1
    return size, depth or BASE_DEPTH, heads


@register_model("gpt", inputs="text", narrowest=BASE_WIDTH, deep=True, splits=True)
def gpt(spec: InputSpec, width: float = 1.0, depth: int = 0) -> nn.Module:
    """Decoder-only Transformer (384 wide, 6 blocks at width 1) for next-byte prediction."""
    size, blocks, heads = gpt_size(width, depth)
    return GPT(spec.vocab_size, spec.context, size, blocks, heads)
