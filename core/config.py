"""Typed hyperparameters of a job, and `--set key=value` overrides validated against them.

Configs are frozen: a job is built once (benchmarks/engine/build.py) and never changed afterwards, so an
setting makes a new config (`apply_settings`) instead of editing one in place.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from .errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw", "nadamw", "muon")

# Settings added after runs were stored, name -> default (`added_setting`). A run logged before one
# existed has no param of it and ran at its default; at its default a setting stays out of the job
# key, so the finished runs of a store still resume after the suite gains a setting.
ADDED_SETTINGS: dict[str, object] = {}
# Settings whose behaviour changed for the jobs where another setting has a value, name -> (default,
# (that setting, its value)) (`changed_where`).
CHANGED_WHERE: dict[str, tuple[object, tuple[str, object]]] = {}


def added_setting(name: str, default: object, since: str) -> dataclasses.Field:
    """The dataclass field of a setting added after runs were stored (`since`: the date), out of
    the job key while at its default, read as its default from the params of older runs."""
    ADDED_SETTINGS[name] = default
    return dataclasses.field(default=default, metadata={"added": since, "name": name})


def changed_setting(name: str, default: object, before: object, since: str) -> dataclasses.Field:
    """The dataclass field of a setting whose behaviour runs stored before `since` had as `before`
    (a new default): always part of the job key, and read as `before` from the params of older
    runs, so their row names it and never collides with the new default's."""
    ADDED_SETTINGS[name] = before
    return dataclasses.field(default=default, metadata={"changed": since, "name": name})


def changed_where(name: str, default: object, before: object, since: str, where: tuple[str, object]):
    """The dataclass field of a setting whose behaviour changed on `since` for the jobs where `where`
    (a setting, a value) holds, which ran before as `before`: in those jobs' keys and in their
    stored runs' rows (core.job.Row.extended), read as `before` from the params of older runs, so
    those runs are rows of their own and their jobs run again; elsewhere out of the key."""
    ADDED_SETTINGS[name] = before
    CHANGED_WHERE[name] = (default, where)
    return dataclasses.field(default=default, metadata={"changed_where": where, "name": name, "since": since})


@dataclass(frozen=True)
class NoConfig:
    """A method without hyperparameters of its own."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters every method shares (the rows of the paper's Table 10, and run control)."""

    batch_size: int = 128
    # sgd | adam | adamw (Adam with decoupled weight decay) | nadamw (NAdam, decoupled weight decay)
    # | muon (Muon on the hidden matrices, AdamW on the rest): methods/common/optim.py
    optimizer: str = "sgd"
    lr: float = 0.015
    momentum: float = 0.9  # SGD's, and Muon's on its matrices
    nesterov: bool = False
    beta1: float = 0.9  # the Adam family's (Adam, AdamW, NAdamW, Muon's AdamW part)
    beta2: float = 0.999
    # Table 10's 0.005, not §4.1's 5e-2 (docs/fidelity.md, "Weight decay").
    weight_decay: float = 0.005
    # The largest gradient norm before each step (torch.nn.utils.clip_grad_norm_); 0 = none. Applied
    # by bp's loop and the methods on it (ddp, plsgd, diloco); others refuse it.
    grad_clip: float = added_setting("grad_clip", 0.0, "2026-11-26")
    # Linear warm-up from warmup_lr to lr over warmup_epochs, then cosine annealing over t_max
    # epochs (torch's CosineAnnealingLR closed form), evaluated at fractional epochs every step.
    warmup_epochs: float = 3.0
    warmup_lr: float = 0.005
    t_max: float = 105.0
    eta_min: float = 0.0
    # cosine (above) | step: after warm-up, lr x 0.1 at 50 % and 75 % of max_epochs (Lin et al.
    # 2020's schedule, which 002 §3.1 gives its MB-SGD and PL-SGD baselines; plsgd's default).
    lr_schedule: str = "cosine"
    max_epochs: int = 200
    patience: int = 30  # epochs without a new best test accuracy (paper: 30)
    time_budget_s: float = 0.0  # training-clock budget; 0 = none
    width: float = 1.0  # model width multiplier (depth is kept)
    depth: int = 0  # blocks of a model that takes a depth (gpt); 0 = the model's own
    seq_len: int = 0  # token datasets: keep each sequence's last seq_len tokens; 0 = the dataset's length
    channels_last: bool = (
        True  # NHWC activations for conv nets: faster on CPUs (docs/performance.md), standard on GPUs
    )
    eval_batch_size: int = 1000
    threads: int = 0  # intra-op threads per process; 0 = cores // devices
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # CUDA only (benchmarks/engine/rank.py, configure_cuda): cuDNN's autotuner picks each convolution's
    # fastest algorithm for the shapes it sees (run to run, results may then differ in the last bits);
    # tf32 lets float32 matmuls and cuDNN convolutions/RNNs use TF32 tensor cores (Ampere and later;
    # PyTorch's own default is TF32 for cuDNN only).
    cudnn_benchmark: bool = True
    tf32: bool = True
    # Injected straggler delays (004; core/runtime/straggler.py says where they fall): after each step of one
    # thread/rank/worker, sleep delay_ms, or delay_frac x its step time, with probability prob.
    straggler_delay_ms: float = 0.0
    straggler_delay_frac: float = 0.0
    straggler_prob: float = 1.0
    straggler_seed: int = 0
    # compute: the unit sleeps after its steps; wire: its rank's outgoing messages are delayed instead.
    straggler_kind: str = added_setting("straggler_kind", "compute", "2026-11-26")
    # What a wire delay is (core/runtime/wire.py): `latency`, the state as of its send time usable a
    # delay later; `hold` (runs before 2026-11-28 only): the sender waited, then read the state.
    wire_model: str = changed_where("wire_model", "latency", "hold", "2026-11-28", ("straggler_kind", "wire"))
    # Allow more CPU processes than cores (each then one intra-op thread): table `layup` runs 3 and
    # 4 workers on 2 cores; its runs are tagged as processes sharing cores, as every run is here.
    oversubscribe: bool = added_setting("oversubscribe", False, "2026-11-26")

    def validate(self) -> None:
        """Reject values that cannot train, with one line naming the key."""
        positive = ("batch_size", "lr", "max_epochs", "patience", "width", "eval_batch_size", "t_max")
        for key in positive:
            if not getattr(self, key) > 0:
                raise UserError(f"{key} must be > 0, got {getattr(self, key)!r}")
        non_negative = (
            "momentum", "weight_decay", "grad_clip", "warmup_epochs", "warmup_lr", "eta_min", "time_budget_s",
            "threads",
            "seq_len", "depth", "straggler_delay_ms", "straggler_delay_frac", "straggler_seed",
        )  # fmt: skip
        for key in non_negative:
            if getattr(self, key) < 0:
                raise UserError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        if not 0 <= self.straggler_prob <= 1:
            raise UserError(f"straggler_prob must be in [0, 1], got {self.straggler_prob!r}")
        if self.straggler_kind not in ("compute", "wire"):
            raise UserError(f"straggler_kind must be one of compute, wire, got {self.straggler_kind!r}")
        if self.wire_model != "latency":
            earlier = f"wire_model={self.wire_model} names runs stored before 2026-11-28"
            raise UserError(f"{earlier}: the wire model of new runs is latency")
        if self.straggler_delay_ms and self.straggler_delay_frac:
            raise UserError("set straggler_delay_ms or straggler_delay_frac, not both")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise UserError(f"{key} must be in [0, 1), got {getattr(self, key)!r}")
        if self.lr_schedule not in ("cosine", "step"):
            raise UserError(f"lr_schedule must be one of cosine, step; got {self.lr_schedule!r}")
        if self.device != "auto":
            import torch  # only here: the config module is imported by the CLI before it needs torch

            try:
                device = torch.device(self.device)
            except RuntimeError:
                raise UserError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}") from None
            if device.type == "cuda" and not torch.cuda.is_available():
                raise UserError(f"device {self.device!r} asked for, but CUDA is not available here")
            if device.type not in ("cpu", "cuda"):
                raise UserError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}")


def parse_value(text: str, kind: type, key: str):
    """`text` as a value of type `kind` (bool, int, float or str)."""
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        value = kind(text)
        if kind is float and not math.isfinite(value):
            raise ValueError
        return value
    except ValueError:
        raise UserError(f"--set {key}={text}: expected a {kind.__name__}") from None


def field_types(config_types) -> dict[str, type]:
    """Each field of the given config dataclasses and its type (the last config that has it wins)."""
    types: dict[str, type] = {}
    for config_type in config_types:
        hints = typing.get_type_hints(config_type)
        for f in fields(config_type):
            # `float | None`: a method setting whose default the process count decides (None)
            kinds = [k for k in typing.get_args(hints[f.name]) if k is not type(None)]
            types[f.name] = kinds[0] if len(kinds) == 1 else hints[f.name]
    return types


def parse_settings(assignments: Sequence[str], config_types, unknown_hint: str = "") -> dict[str, object]:
    """The CLI's `--set key=value` strings as typed values of the fields of `config_types`.

    The only place a setting is parsed from text: everything past the command line passes typed
    values (a table's rows, `build_job`'s `settings`). An unknown key or a bad value raises a
    UserError naming the valid keys (or `unknown_hint` where the caller knows better).
    """
    types = field_types(config_types)
    settings: dict[str, object] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if key not in types:
            hint = unknown_hint or f"valid keys: {', '.join(sorted(types))}"
            raise UserError(f"--set {item}: unknown key {key!r}; {hint}")
        if not sep:
            raise UserError(f"--set {item}: expected key=value")
        settings[key] = parse_value(text.strip(), types[key], key)
    return settings


def apply_settings(configs: list, settings: Mapping[str, object]) -> tuple[list, frozenset[str]]:
    """`configs` with each typed setting replaced (`dataclasses.replace`) in the config that has it.

    Returns (the new configs, in the same order; the keys set). The configs given are not changed;
    a key no config has raises a UserError naming the valid keys.
    """
    owner = {f.name: index for index, cfg in enumerate(configs) for f in fields(cfg)}  # the last wins
    unknown = sorted(set(settings) - set(owner))
    if unknown:
        raise UserError(f"unknown setting {', '.join(unknown)}; valid keys: {', '.join(sorted(owner))}")
    changes: list[dict] = [{} for _ in configs]
    for key, value in settings.items():
        changes[owner[key]][key] = value
    new = [dataclasses.replace(cfg, **change) for cfg, change in zip(configs, changes, strict=True)]
    return new, frozenset(settings)


def floats_as_floats(cfg):
    """`cfg` with each int given to a float field (a profile's `warmup_epochs=0`) as a float, so a
    value logs, keys and reads back as one thing ("0.0", never "0" for the same setting)."""
    if not dataclasses.is_dataclass(cfg):
        return cfg
    changes = {
        f.name: float(value)
        for f in fields(cfg)
        if isinstance(f.default, float)
        and isinstance(value := getattr(cfg, f.name), int)
        and not isinstance(value, bool)
    }
    return dataclasses.replace(cfg, **changes) if changes else cfg


def flatten(*configs) -> dict[str, object]:
    """All fields of the given dataclasses as one flat dict (for MLflow params and job keys)."""
    out: dict[str, object] = {}
    for cfg in configs:
        out.update(dataclasses.asdict(cfg))
    return out


def keyed(*configs) -> dict[str, object]:
    """`flatten`, less the added settings at their default (`added_setting`): a job key's params."""
    out = flatten(*configs)
    for cfg in configs:
        for f in fields(cfg):
            if "added" in f.metadata:
                if f.metadata["name"] != f.name:  # the registry reads older runs' params by this name
                    raise TypeError(f"added_setting({f.metadata['name']!r}) names the field {f.name!r}")
                if out[f.name] == f.default:
                    del out[f.name]
            if "changed_where" in f.metadata:
                key, value = f.metadata["changed_where"]
                if getattr(cfg, key) != value:
                    del out[f.name]
    return out
