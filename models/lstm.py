"""The paper's sequence model (000 §4.3): embedding -> 2-layer LSTM (256 hidden) -> linear head."""

from __future__ import annotations

import torch
from torch import nn

from core.inputs import InputSpec

from .registry import register_model


class LSTMClassifier(nn.Module):
    """Classifies a right-padded batch from the top layer's output at each review's own last token.

    000 gives only "a 2-layer LSTM network with 256 hidden dimensions"; the embedding has the
    hidden size (256) and there is no dropout (neither is mentioned). `width` scales both sizes.
    The LSTM is causal, so its output at a review's last token never sees the padding after it:
    the same values as packed sequences give. We do not pack because on CPUs the packed LSTM's
    backward is quadratic in the length (each time step's `narrow` of the packed input is undone
    by a zero-filled input-sized gradient, then summed: a third of the backward time and most of
    its memory traffic at 200 tokens, measured); batches are length-bucketed, so padding is small.
    The LSTM is one op (cuDNN on GPUs, ATen's on CPUs): a layer's weight gradients are complete
    before its hook fires, so layer-wise updates stay exact with one pass in flight (tested).
    """

    def __init__(
        self, vocab_size: int, num_classes: int, hidden: int = 256, embedding: int = 256, layers: int = 2
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding, padding_idx=0)
        self.lstm = nn.LSTM(embedding, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, batch) -> torch.Tensor:
        """`batch` is (tokens [B, T], lengths [B], on the same device) -> logits [B, classes]."""
        tokens, lengths = batch
        outputs, _ = self.lstm(self.embedding(tokens))  # [B, T, hidden]
        last = (lengths - 1).to(outputs.device)  # a no-op when the dataset gives them on the device
        return self.fc(outputs[torch.arange(len(tokens), device=outputs.device), last])


def build_lstm(vocab_size: int, num_classes: int, width: float = 1.0) -> LSTMClassifier:
    """The paper's 2x256 LSTM classifier, with hidden and embedding sizes scaled by `width`."""
    size = max(1, round(256 * width))
    return LSTMClassifier(vocab_size, num_classes, hidden=size, embedding=size)


@register_model("lstm", inputs="tokens", narrowest=256)
def lstm(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """2-layer LSTM (256 hidden) over token sequences, for IMDb."""
    return build_lstm(spec.vocab_size, spec.num_classes, width)
