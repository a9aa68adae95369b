"""layup (the suite's reading of 000 v4's abstract, no paper table): LayUp against DDP, PL-SGD,
DiLoCo and LAP-SGD on equal devices, under two kinds of straggler.

Rows: each method without delay, with a compute straggler (`pd-stragglers`' injection,
core/runtime/straggler.py: one unit sleeps a fraction of its own step time after each step: the
last rank for ddp, plsgd and diloco, worker 0 of the last rank for lapsgd, the last worker's
forward thread for layup) and with a wire straggler (`straggler_kind=wire`: the last rank's
outgoing messages held that fraction of its step before they leave: LayUp's abstract's "delays
into the communication between workers"). Models: ResNet-18 on CIFAR-10 (test accuracy) and the
byte-level GPT on the IMDb text (bits per byte). Every job runs on N = 3 processes at every profile
(with one peer of two to draw, the gossip is a gossip), and at quick and paper one cell of LayUp and
DDP on N = 4 (ResNet-18, no delay). On a CPU the processes share the cores (`oversubscribe`). Each
row names its process count (`ddp[devices=3]`): runs of one method on other counts, such as this
table's runs on 2 processes before 2026-11-26, are other rows.
"""

from __future__ import annotations

from core.job import Row
from core.metric import BITS_PER_BYTE

from ..profiles import hyperparameters
from .common.cifar import RUNS
from .common.pd004 import epochs_settings
from .common.spec import Cell, register_table, six_digits
from .common.targets import CIFAR10, GPT, GPT_THREE_EPOCHS, ONE_EPOCH
from .common.tuning import SearchSpace, Tuned, Tuning, equal_trials

METHODS = ("layup", "ddp", "plsgd", "diloco", "lapsgd")
WORKLOADS = (("cifar10", "resnet18"), ("imdb-lm", "gpt"))
WORKLOAD_OF = {model: dataset for dataset, model in WORKLOADS}
# Fractions of the slowed unit's own step time, per kind of straggler and profile: quick keeps the
# extremes that decide the claims (compute 100 %, wire 50 and 100 %) to fit 3 hours on 2 cores.
COMPUTE = {"paper": (0.25, 0.5, 1.0), "quick": (1.0,), "smoke": (1.0,)}
WIRE = {"paper": (0.25, 0.5, 1.0), "quick": (0.5, 1.0), "smoke": (1.0,)}
# quick: 1 epoch of ResNet-18 (pd-stragglers' length) and 3 of the GPT, each cosine compressed to
# its epochs (docs/performance.md, "layup").
EPOCHS = {"resnet18": {"quick": 1}, "gpt": {"quick": 3}}
DEVICES = 3  # every profile
# What each run logs of its wire (core/runtime/wire.py): bytes per step, MiB an epoch, the age at arrival.
WIRE_METRICS = ("wire_bytes_per_step", "wire_mib", "wire_age_median_ms")
WIDER = {"paper": 4, "quick": 4}  # the one cell on more processes (ResNet-18, layup and ddp, no delay)


def spaces(profile: str, model: str) -> dict[str, SearchSpace]:
    """Each method's declared search space on a workload (docs/methods.md, "Equal tuning"): four
    trials each, the step size where a method has no setting of its own to tune."""
    lr = hyperparameters(WORKLOAD_OF[model], model, profile).lr
    scaled = lambda *factors: tuple(six_digits(lr * f) for f in factors)  # noqa: E731
    return equal_trials({
        "ddp": SearchSpace.grid("ddp", "synchronous SGD's one setting, the step size; 3 workers' batch is "
                                "3x the one the workload's lr is set for (linear scaling: 3x)",
                                lr=scaled(0.5, 1, 2, 3)),
        "layup": SearchSpace.grid("layup", "the step size (stale updates favour smaller ones) and the "
                                  "gossip's fan-out", lr=scaled(0.5, 1), peers=(1, 2)),
        "plsgd": SearchSpace.grid("plsgd", "the step size and the local steps between averages after "
                                  "the switch", lr=scaled(0.5, 1), average_every=(4, 16)),
        "lapsgd": SearchSpace.grid("lapsgd", "the step size and the local steps between averages after "
                                   "the switch", lr=scaled(0.5, 1), average_every=(4, 16)),
        "diloco": SearchSpace.grid("diloco", "the outer step: the paper's (0.7, Nesterov 0.9), set for H = "
                                   "500, to plain averaging (1, 0), for the H a run's length gives",
                                   outer_lr=(0.7, 1.0), outer_momentum=(0.9, 0.0)),
    })  # fmt: skip


def _swept(trial: int, reached: str) -> str:
    """A frozen choice's provenance: the sweep of 2026-11-29 (docs/methods.md, "Equal tuning")."""
    return f"2026-11-29, tune layup --profile quick: trial {trial} of 4 (seed 2000), {reached}"


# Frozen choices of `python -m benchmarks tune layup` (profile -> model -> method -> Tuned), each as
# the verb printed it; at smoke and paper none: every method runs its defaults (zero trials each).
TUNING = Tuning(
    spaces,
    chosen={
        "quick": {
            "resnet18": {
                "layup": Tuned(
                    (("lr", 0.05), ("peers", 1)), _swept(1, "reached the target at 81 s, best 0.4016")
                ),
                "ddp": Tuned((("lr", 0.05),), _swept(1, "reached the target at 66 s, best 0.4412")),
                "plsgd": Tuned(
                    (("lr", 0.05), ("average_every", 16)),
                    _swept(2, "reached the target at 63 s, best 0.4307"),
                ),
                "diloco": Tuned(
                    (("outer_lr", 0.7), ("outer_momentum", 0.0)),
                    _swept(2, "reached the target at 62 s, best 0.4539"),
                ),
                "lapsgd": Tuned(
                    (("lr", 0.05), ("average_every", 16)),
                    _swept(2, "reached the target at 65 s, best 0.4221"),
                ),
            },
            "gpt": {
                "layup": Tuned(
                    (("lr", 0.001), ("peers", 1)), _swept(1, "reached the target at 104 s, best 3.93")
                ),
                "ddp": Tuned((("lr", 0.002),), _swept(2, "reached the target at 49 s, best 3.271")),
                "plsgd": Tuned(
                    (("lr", 0.001), ("average_every", 4)), _swept(1, "reached the target at 50 s, best 3.629")
                ),
                "diloco": Tuned(
                    (("outer_lr", 0.7), ("outer_momentum", 0.0)),
                    _swept(2, "reached the target at 47 s, best 3.511"),
                ),
                "lapsgd": Tuned(
                    (("lr", 0.001), ("average_every", 16)),
                    _swept(2, "reached the target at 53 s, best 3.589"),
                ),
            },
        }
    },
)


def table_row(method: str, fraction: float = 0.0, kind: str = "compute", devices: int = DEVICES,
              tuned: dict | None = None) -> Row:  # fmt: skip
    """A row: the method on `devices` processes with its frozen tuned settings, with a straggler of
    this kind and size (none at 0)."""
    settings: dict = {"devices": devices, **(tuned or {})}
    if fraction:
        settings["straggler_delay_frac"] = fraction
        if kind != "compute":
            settings["straggler_kind"] = kind
    return Row.of(method, **settings)


def cells(profile: str) -> list[Cell]:
    """Methods x straggler rows on both workloads (smoke: ResNet-18 only), and the wider cell."""
    workloads = WORKLOADS[:1] if profile == "smoke" else WORKLOADS
    delays = (
        [(0.0, "compute")] + [(f, "compute") for f in COMPUTE[profile]] + [(f, "wire") for f in WIRE[profile]]
    )
    cells = []
    for dataset, model in workloads:
        # Each model's epochs at quick, the cosine compressed to them; processes may share CPU cores.
        epochs, schedule = epochs_settings(dataset, model, profile, EPOCHS[model])
        settings = (*schedule.items(), ("oversubscribe", True))
        rows = [
            table_row(m, f, kind, tuned=TUNING.settings(profile, model, m))
            for m in METHODS
            for f, kind in delays
        ]
        if profile in WIDER and model == "resnet18":
            rows += [table_row(m, devices=WIDER[profile]) for m in ("layup", "ddp")]
        cells += [
            Cell(dataset, model, row, RUNS[profile], epochs=epochs, settings=settings,
                 devices=dict(row.settings)["devices"])
            for row in rows
        ]  # fmt: skip
    return cells


SPEC = register_table(
    id="layup",
    title="LayUp (000 v4, our reading): time to target, loss and drift against DDP, PL-SGD, DiLoCo "
    "and LAP-SGD under straggler delays",
    cells=cells,
    reference=dict(straggler_delay_frac=0.0),
    kind="layup",
    tuning=TUNING,
    model_metrics={"gpt": BITS_PER_BYTE},
    metrics=("samples_per_s", "mfu", "replica_drift", *WIRE_METRICS),
    targets={
        "paper": {"resnet18": CIFAR10["paper"]["resnet18"], "gpt": GPT["paper"]},
        # quick: pd-stragglers' 1-epoch ResNet target; the GPT's from a 3-process pilot (docs/
        # fidelity.md, "LayUp", targets version 2).
        "quick": {"resnet18": ONE_EPOCH, "gpt": GPT_THREE_EPOCHS},
        "smoke": {"resnet18": CIFAR10["smoke"]["resnet18"]},  # smoke runs no GPT here
    },
    source="000 v4 (LayUp, arXiv 2410.05985v4), abstract only: no table of it is public",
    reading=(
        "Ours, from the abstract alone (docs/fidelity.md, 'LayUp'): the gossip, its settings' "
        "defaults, the straggler's placement (pd-stragglers' injection; the abstract delays the "
        "communication between workers) and every workload's hyperparameters (the suite's, the "
        "same for every method)."
    ),
)
