"""pd-transformer-beta (an extension of the papers): the GPT's forward and backward time per batch
and β, Table 9's measurement at `pd-transformer`'s own settings.

000 §3.3 bounds Async LU's speed-up by 1 + β; a ResNet's β says nothing of a Transformer's, so the
claim `gpt-lu-speedup` divides by the β measured here: the profile's GPT (width, depth, context,
batch) on random bytes of the corpus's shape (timing does not depend on the bytes).
"""

from __future__ import annotations

from core.job import Row
from methods.timing import TimingConfig

from .common.spec import Cell, register_table

# profile -> (runs, TimingConfig): as Table 9's quick and smoke; paper times more batches.
PROFILES = {
    "paper": (3, TimingConfig(batches=200, warmup=10)),
    "quick": (3, TimingConfig(batches=10, warmup=2)),
    "smoke": (1, TimingConfig(batches=3, warmup=1)),
}


def cells(profile: str) -> list[Cell]:
    """One timing cell: the GPT on the IMDb text."""
    runs, timing = PROFILES[profile]
    row = Row.of("fwd_bwd_timing", batches=timing.batches, warmup=timing.warmup)
    return [Cell("imdb-lm", "gpt", row, runs, synthetic=True)]  # one device, random bytes


SPEC = register_table(
    id="pd-transformer-beta",
    title="Beyond the papers: the GPT's forward and backward time per batch, and β",
    cells=cells,
    kind="timing",
    source="the suite's extension (Table 9's measurement on pd-transformer's GPT; no paper values)",
    reading="Ours, not the papers': pd-transformer's GPT and batch at this profile, random bytes.",
)
