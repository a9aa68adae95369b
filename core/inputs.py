"""What a dataset feeds a model, and the memory layout of its batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import TrainConfig


@dataclass(frozen=True)
class InputSpec:
    """What a dataset feeds a model: enough for a builder to pick its stem and head."""

    num_classes: int
    image_size: int = 0  # 0 for non-image inputs
    vocab_size: int = 0  # 0 for non-token inputs
    # Next-token prediction: the window length (a model's positions); 0 for classification inputs.
    context: int = 0

    @property
    def kind(self) -> str:
        """What a model must read: `images`, `tokens` (a sequence, one label) or `text` (next token)."""
        if self.context:
            return "text"
        return "tokens" if self.vocab_size else "images"


def uses_channels_last(cfg: TrainConfig, spec: InputSpec) -> bool:
    """Image models train in channels_last when the config asks (1.7x faster convolutions here)."""
    return cfg.channels_last and spec.image_size > 0


def to_model_layout(inputs, channels_last: bool):
    """A batch's inputs in the model's memory format (channels_last image batches, others as they are)."""
    return inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs
