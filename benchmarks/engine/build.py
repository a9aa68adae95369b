"""The one place a job is built: `train`, `run`, the table specs and the perf benchmarks all call
`build_job`, which validates every part and returns a frozen Job (core/job.py).

The order is fixed: the profile's hyperparameters of the workload (or a given base config), then
`--epochs`, then the user's `--set` values, then the method's own defaults on its device count
(never replacing a key the user set), then validation of all of it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from core.config import TrainConfig, apply_settings, flatten
from core.errors import UserError
from core.job import Job, Row, Setting
from datasets import DATASETS
from methods import check_devices, get_method
from models import MODELS, check_depth, check_splits, check_width

from ..profiles import PROFILES, hyperparameters
from .distributed import launched_by_torchrun


def check_device_count(job: Job) -> None:
    """Reject more processes than this machine has devices for the job: one GPU per process on
    CUDA (several processes on one GPU break NCCL), else cores. Checked where a job is about to run
    (`train`, `run`), not where it is described (a report lists the paper profile's 3-device jobs on
    any machine). Under torchrun, its processes on this machine (LOCAL_WORLD_SIZE) are checked."""
    import torch

    from .rank import job_device

    torchrun = launched_by_torchrun()
    devices = int(os.environ.get("LOCAL_WORLD_SIZE", job.devices)) if torchrun else job.devices
    device = job_device(job)
    if device.type == "cuda":
        have, first = torch.cuda.device_count(), device.index or 0
        if first + devices > have:
            where = f"from cuda:{first} " if first else ""
            fewer = "--nproc-per-node" if torchrun else "--devices"
            asked = f"torchrun's {devices} processes here need" if torchrun else f"--devices {devices} needs"
            raise UserError(
                f"{asked} {devices} GPUs {where}(one per process), this machine has {have}; use "
                f"{fewer} N with N <= {max(have - first, 0)}, or run the processes on the CPU with "
                "--set device=cpu"
            )
    elif not torchrun and not job.config.oversubscribe and devices > (have := os.cpu_count() or 1):
        message = (
            f"--devices {devices}: this machine has {have} cores; use --devices N with N <= {have}, "
            "or --set oversubscribe=true to share them"
        )
        raise UserError(message)


def method_defaults(
    config: TrainConfig, method: str, devices: int, user_keys: frozenset[str] = frozenset()
) -> TrainConfig:
    """`config` with the method's `train_defaults` on `devices` processes, except the keys the user set."""
    defaults = get_method(method).train_defaults(config, devices)
    return dataclasses.replace(config, **{k: v for k, v in defaults.items() if k not in user_keys})


def validate(model: str, method: str, devices: int, config: TrainConfig, method_config: object) -> None:
    """Raise a UserError for settings that cannot run: the config's, the model's and the method's."""
    method_cls = get_method(method)
    config.validate()
    check_width(model, config.width)
    check_depth(model, config.depth)
    if method_cls.cuts_model:
        check_splits(model, method)
    if hasattr(method_config, "validate"):
        method_config.validate()
    if config.grad_clip and not method_cls.clips_gradients:
        raise UserError(f"grad_clip is applied by bp's loop (bp, ddp, plsgd, diloco), not by {method}")
    wire = config.straggler_kind == "wire" and (config.straggler_delay_ms or config.straggler_delay_frac)
    if wire and (devices < 2 or not method_cls.wire_delays):
        raise UserError(
            "straggler_kind=wire delays messages between processes: run ddp, plsgd, diloco, layup, "
            f"lapsgd or lppsgd with --devices 2 or more (got {method} on {devices})"
        )
    method_cls.check_job(config, method_config, devices)


def build_job(
    table: str,
    dataset: str,
    model: str,
    method: str,
    profile: str,
    *,
    seed: int = 0,
    run_index: int = 0,
    devices: int = 1,
    config: TrainConfig | None = None,
    method_config: object | None = None,
    settings: Mapping[str, Setting] | None = None,
    epochs: int | None = None,
    synthetic: bool = False,
    row: Row | None = None,
) -> Job:
    """A validated job. `config` replaces the profile's hyperparameters of (dataset, model) as the
    base, `method_config` the method's default `Config()`; `settings` are typed values of either's
    fields (a table's row, or `--set` parsed by the CLI); `epochs` is `--epochs`;
    `row` is the table's row (its settings are among `settings`): the job's row is derived from it
    (`job_row`). Bad input raises a UserError naming the valid choices."""
    method_cls = get_method(method)
    DATASETS.lookup(dataset)
    MODELS.lookup(model)
    if profile not in PROFILES or profile == "auto":
        raise UserError(f"unknown profile {profile!r}; valid profiles: smoke, quick, paper")
    check_devices(method_cls, devices)
    config = config if config is not None else hyperparameters(dataset, model, profile)
    method_config = method_config if method_config is not None else method_cls.Config()
    settings = settings or {}
    user_keys: frozenset[str] = frozenset()
    if epochs is not None:
        if "max_epochs" in settings:
            raise UserError("--epochs and --set max_epochs both given; give one")
        config, user_keys = dataclasses.replace(config, max_epochs=epochs), frozenset({"max_epochs"})
    (config, method_config), set_keys = apply_settings([config, method_config], settings)
    method_config = with_device_defaults(method, method_config, devices)
    # The method's own defaults follow the user's values (plsgd scales the LR with the batch size)
    # but never replace a key the user set.
    config = method_defaults(config, method, devices, user_keys | set_keys)
    validate(model, method, devices, config, method_config)
    return Job(
        table=table,
        dataset=dataset,
        model=model,
        method=method,
        profile=profile,
        config=config,
        method_config=method_config,
        seed=seed,
        run_index=run_index,
        devices=devices,
        synthetic=synthetic,
        row_settings=job_row(method, row or Row(method), config, method_config, devices).settings,
    )


def with_device_defaults(method: str, method_config, devices: int):
    """The method's settings left at None (a default the process count decides) set to the value
    `devices` processes give them (`Method.device_defaults`): what the run uses and logs."""
    unset = {
        key: value
        for key, value in get_method(method).device_defaults(devices).items()
        if getattr(method_config, key, None) is None
    }
    return dataclasses.replace(method_config, **unset) if unset else method_config


def job_row(method: str, declared: Row, config: TrainConfig, method_config: object, devices: int) -> Row:
    """The one place a job's row is derived (core.job.Row): the table row's settings at the job's
    values, then every setting of the method's own that differs from its default. `train --set`,
    `run --set` and a table's rows all name their runs through it."""
    values = {**flatten(config, method_config), "devices": devices}
    return Row(method, tuple((key, values[key]) for key, _ in declared.settings)).extended(values)


def method_settings_hint(jobs: list[Job]) -> str:
    """What `run --set` accepts for these jobs, for its error message."""
    methods = ", ".join(sorted({j.method for j in jobs}))
    valid = sorted({f.name for j in jobs for f in dataclasses.fields(j.method_config)})
    return (
        f"not a setting of this table's methods ({methods}); `run --set` changes method settings: "
        f"{', '.join(valid) or 'these methods have none'}"
    )


def with_method_settings(jobs: list[Job], settings: Mapping[str, Setting]) -> list[Job]:
    """`run --set key=value` (parsed by the CLI): the jobs with each typed value applied to the
    method configs that have the key (e.g. `reading="authors_code"` for the LAP-SGD/LPP-SGD jobs of
    a table), validated. A key that no job's method has is an error: shared hyperparameters are the
    profile's, per table."""
    if not settings:
        return jobs
    owned: set[str] = set()
    out = []
    for job in jobs:
        fields = {f.name for f in dataclasses.fields(job.method_config)}
        mine = {key: value for key, value in settings.items() if key in fields}
        if mine:
            (method_config,), set_keys = apply_settings([job.method_config], mine)
            method_config.validate()
            get_method(job.method).check_job(job.config, method_config, job.devices)
            row = job_row(job.method, job.row, job.config, method_config, job.devices)
            job = dataclasses.replace(job, method_config=method_config, row_settings=row.settings)
            owned |= set_keys
        out.append(job)
    unknown = sorted(set(settings) - owned)
    if unknown:
        raise UserError(f"--set {', '.join(unknown)}: {method_settings_hint(jobs)}")
    return out
