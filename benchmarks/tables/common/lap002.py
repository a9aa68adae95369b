"""002's experimental protocol ("Local SGD Meets Asynchrony"), shared by its tables (`lap-table*`).

002 trains every method for 300 epochs after a 5-epoch warm-up from α0 = 0.1 to α0 x B_loc / 128
x Q (Q devices, the linear scaling rule); then MB-SGD and PL-SGD follow Lin et al. (2020)'s steps
(x0.1 at 50 % and 75 % of the epochs) and LAP-SGD and LPP-SGD a cosine to zero without restarts
(002 §3.1, "for the proposed methods we used cosine annealing"); Nesterov momentum 0.9 (002 cites
Sutskever et al. (2013) for its momentum, and the authors' run script for these cells passes
`--nesterov`: bapi/LPP-SGD `samplescripts/singlenoderun.sh`). Weight decay: 002 says "other HPs
identical to [Lin et al.]"; we take 5e-4, the default of the authors' code (`utilities/args.py`)
and the script's value. LAP-SGD/LPP-SGD use "the same averaging schedule as PL-SGD": K = 1 for the
first half, then K = 16 (Table 5 varies K and the switch epoch P).

A cell of 002's tables is a method at a local batch size B (and U workers per device, K, P or Q):
its row (`lap_row`) holds the config fields 002's U, B, K, P, Q set, as typed settings (U = 4, B =
128 is `lapsgd[workers_per_device=4,batch_size=128]`), and 002's values sit beside it.

Profiles (the values: benchmarks/profiles.py, LAP002_*): `paper` is 002's (300 epochs, 3 runs; 5
where 002 used 5). `quick` keeps the models at full width (ResNet-20 and SqueezeNet are small) for
a few epochs of real CIFAR-10, the schedule compressed to them (warm-up 1 epoch, decays at 50 % and
75 %), 1 run. On 2 cores, U workers x Q processes oversubscribe the CPU: times then mean little;
accuracies still compare.
`smoke` is synthetic data at width 1/8, 2 epochs.
"""

from __future__ import annotations

from core.job import Row
from datasets.synthetic import SMOKE_TRAIN

from ...profiles import hyperparameters
from .spec import Cell, six_digits

PAPER_EPOCHS = 300
NOTE_QUICK = (
    "`quick`: full-width models on real CIFAR-10 for a few epochs with 002's schedule compressed to "
    "them; on 2 CPU cores U workers x 2 processes oversubscribe the cores, so times mean little "
    "there and accuracies compare. 002's numbers are after 300 epochs on GPUs."
)


# 002's column names -> the config fields they set (P, the switch epoch, is a fraction of 300 epochs).
CONFIG_FIELDS = {"Q": "devices", "U": "workers_per_device", "B": "batch_size", "K": "average_every"}


def lap_row(method: str, setting: dict[str, int]) -> Row:
    """The row of a 002 cell: `setting` holds 002's B (local batch) and, where 002 varies them, Q, U,
    K, P; its settings are the config fields they set (`lapsgd[workers_per_device=4,batch_size=128]`)."""
    settings: dict[str, int | float] = {CONFIG_FIELDS[k]: v for k, v in setting.items() if k != "P"}
    if "P" in setting:
        settings["average_switch"] = six_digits(setting["P"] / PAPER_EPOCHS)
    return Row.of(method, **settings)


def lap_cell(dataset: str, model: str, method: str, setting: dict[str, int], profile: str, runs: int) -> Cell:
    """A cell of 002's tables: 002's schedule for the method, its LR scaled by the linear rule on
    the job's processes (Q, default 2; `Cell.scale_lr`), then the row's settings."""
    base = hyperparameters(dataset, model, profile)
    row = lap_row(method, setting)
    if method in ("lapsgd", "lppsgd"):  # 002 §3.1: "for the proposed methods ... cosine annealing"
        t_max = six_digits(base.max_epochs - base.warmup_epochs)
        settings: dict[str, object] = dict(lr_schedule="cosine", t_max=t_max, eta_min=0.0)
    else:  # MB-SGD and PL-SGD: Lin et al. (2020)'s steps
        settings = dict(lr_schedule="step")
    if method in ("lapsgd", "lppsgd", "plsgd"):
        settings["average_every"] = 16  # "the same averaging schedule as PL-SGD" unless the cell sets K
    devices = int(dict(row.settings).get("devices", 2))
    return Cell(dataset, model, row, runs, settings=tuple(settings.items()), devices=devices, scale_lr=True)


def lap_cells(
    dataset: str, model: str, rows: list[tuple[str, dict]], profile: str, paper_runs: int = 3
) -> list[Cell]:
    """The cells of a 002 table at `profile`: (method, 002's setting) rows, 002's runs at `paper`,
    else 1; at `smoke`, the cells whose local batch fits a process's share of the synthetic
    stand-in (B = 1024 on 2 processes would take no step of its 1,024 samples)."""
    count = paper_runs if profile == "paper" else 1
    cells = [lap_cell(dataset, model, method, setting, profile, count) for method, setting in rows]
    if profile != "smoke":
        return cells
    return [c for c in cells if dict(c.row.settings).get("batch_size", 128) * (c.devices or 1) <= SMOKE_TRAIN]
