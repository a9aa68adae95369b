"""Table 9: forward and backward time per batch of 128 on CIFAR-100, ResNet-18 and ResNet-50.

The paper times each pass "averaged over all batches for 15 epochs" on an A100. Timing does not
depend on pixel values, so every profile feeds random inputs of CIFAR-100's shape (no data
needed); the models are the paper's at full width in `paper` and `quick` (a narrower model would
change β), one eighth of it in `smoke`.
"""

from __future__ import annotations

from core.config import TrainConfig
from core.job import Row
from methods.timing import TimingConfig

from .common.spec import Cell, register_table

MODELS = ("resnet18", "resnet50")
# profile -> (runs, TimingConfig, width). paper: 15 epochs of CIFAR-100 at batch 128 = 15 x 390 batches.
PROFILES = {
    "paper": (3, TimingConfig(batches=15 * 390, warmup=10), 1.0),
    "quick": (3, TimingConfig(batches=10, warmup=2), 1.0),
    "smoke": (1, TimingConfig(batches=3, warmup=1), 0.125),
}


def cells(profile: str) -> list[Cell]:
    """One timing cell per model."""
    runs, timing, width = PROFILES[profile]
    row = Row.of("fwd_bwd_timing", batches=timing.batches, warmup=timing.warmup)
    # On one device, on synthetic data of the dataset's shape, at batch 128 and the profile's width.
    config = TrainConfig(batch_size=128, width=width, max_epochs=10**6)
    return [Cell("cifar100", model, row, runs, config=config, synthetic=True) for model in MODELS]


SPEC = register_table(
    id="table9",
    title="Forward and backward time per batch of 128 (CIFAR-100), ResNet-18/50",
    cells=cells,
    # model -> seconds per pass (mean, std)
    paper={
        "resnet18": dict(forward_s=(0.0049, 1e-4), backward_s=(0.0102, 1e-4)),
        "resnet50": dict(forward_s=(0.0166, 5e-5), backward_s=(0.0299, 4e-5)),
    },
    kind="timing",
    source="000 Table 9 (3 A100 GPUs, libtorch), mean ± std",
)
