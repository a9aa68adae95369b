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
its row is `method[cell]`, e.g. `lapsgd[U=4,B=128]`, and 002's values sit beside it.

Profiles (the values: benchmarks/profiles.py, LAP002_*): `paper` is 002's (300 epochs, 3 runs; 5
where 002 used 5). `quick` keeps the models at full width (ResNet-20 and SqueezeNet are small) for
a few epochs of real CIFAR-10, the schedule compressed to them (warm-up 1 epoch, decays at 50 % and
75 %), 1 run. On 2 cores, U workers x Q processes oversubscribe the CPU: times then mean little;
accuracies still compare.
`smoke` is synthetic data at width 1/8, 2 epochs.
"""

from __future__ import annotations

from core.job import Job

from ..jobs import build_job
from ..profiles import hyperparameters

BASE_BATCH = 128  # the batch α0 is for (α0 itself is the profile's lr: benchmarks/profiles.py)
PAPER_EPOCHS = 300
NOTE_QUICK = (
    "`quick`: full-width models on real CIFAR-10 for a few epochs with 002's schedule compressed to "
    "them; on 2 CPU cores U workers x 2 processes oversubscribe the cores, so times mean little "
    "there and accuracies compare. 002's numbers are after 300 epochs on GPUs."
)


def cell_label(setting: dict) -> str:
    """`U=4,B=128` from {U: 4, B: 128} (002's column names, in its order)."""
    return ",".join(f"{k}={v}" for k, v in setting.items())


def job_for(
    table: str,
    dataset: str,
    model: str,
    method: str,
    setting: dict,
    profile: str,
    run: int,
    devices: int | None,
) -> Job:
    """One run of a 002 cell: `setting` holds B (local batch) and, where 002 varies them, U, K, P, Q."""
    processes = devices or setting.get("Q", 2)
    batch = setting.get("B", BASE_BATCH)
    base = hyperparameters(dataset, model, profile)
    overrides = [f"batch_size={batch}", f"warmup_lr={base.lr}"]
    if method in ("lapsgd", "lppsgd"):  # 002 §3.1: "for the proposed methods ... cosine annealing"
        overrides += ["lr_schedule=cosine", f"t_max={base.max_epochs - base.warmup_epochs:g}", "eta_min=0"]
    else:  # MB-SGD and PL-SGD: Lin et al. (2020)'s steps
        overrides.append("lr_schedule=step")
    # The linear scaling rule on every method (plsgd's own default does the same; set here for all).
    overrides.append(f"lr={base.lr * batch / BASE_BATCH * processes:g}")
    if "U" in setting:
        overrides.append(f"workers_per_device={setting['U']}")
    if method in ("lapsgd", "lppsgd", "plsgd"):
        overrides.append(f"average_every={setting.get('K', 16)}")
        if "P" in setting and method != "plsgd":
            overrides.append(f"average_switch={setting['P'] / PAPER_EPOCHS:g}")
    return build_job(
        table,
        dataset,
        model,
        method,
        profile,
        seed=run,
        run_index=run,
        devices=processes,
        overrides=overrides,
        cell=cell_label(setting),
    )


def lap_jobs(
    table: str,
    dataset: str,
    model: str,
    cells: list[tuple[str, dict]],
    profile: str,
    runs: int | None,
    devices: int | None,
    paper_runs: int = 3,
) -> list[Job]:
    """cells x runs jobs of a 002 table (quick and smoke: 1 run; paper: 002's count)."""
    count = runs or (paper_runs if profile == "paper" else 1)
    return [
        job_for(table, dataset, model, method, setting, profile, run, devices)
        for method, setting in cells
        for run in range(count)
    ]
