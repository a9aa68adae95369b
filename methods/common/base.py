"""The Method interface and the registry (`@register_method("name")`)."""

from __future__ import annotations

from typing import ClassVar

from core.config import NoConfig, TrainConfig
from core.context import TrainContext
from core.errors import UserError
from core.job import declare_method_settings
from core.registry import Registry


class Method:
    """A training method: `train(ctx)` trains `ctx.model` epoch by epoch through `ctx`.

    The context owns the clock, evaluation, logging and stopping; a method only trains. Its own
    hyperparameters are the fields of `Config` (a frozen dataclass, settable with `--set key=value`;
    an optional `validate()` rejects bad values with a UserError).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig
    max_devices: ClassVar[int | None] = 1  # None: any number of processes
    # How a multi-device method uses a profile's several devices (quick's 2 cores): "processes" (its
    # workers are processes, one per device: DDP, the local-SGD family, a new method by default) or
    # "threads" (its workers are threads of one process; a table spreads it over processes where it
    # asks: the async methods). Read by benchmarks/tables/common/spec.py `devices_for`.
    parallel: ClassVar[str] = "processes"
    # Its wall time relative to bp's on one workload, `run claims`' prior before a run of it has
    # finished on this machine (benchmarks/engine/speed.py; the first finished run replaces it).
    cost_vs_bp: ClassVar[float] = 1.0
    measures: ClassVar[bool] = False  # True: a measurement a table runs (Table 9's timing), not training
    # False: every process reads the whole epoch (a pipeline's stages), not its own shard of it.
    shards_data: ClassVar[bool] = True
    # True: the method cuts the model into stages (models registered with `splits`).
    cuts_model: ClassVar[bool] = False
    # True: the method's loop clips the gradient norm at `grad_clip` (bp's loop); others refuse it.
    clips_gradients: ClassVar[bool] = False
    # True: the method's communication holds a wire straggler's messages (straggler_kind=wire).
    wire_delays: ClassVar[bool] = False

    @classmethod
    def train_defaults(cls, config: TrainConfig, devices: int) -> dict:
        """Shared hyperparameters (TrainConfig keys) this method changes from the profile's `config`
        on `devices` processes, unless `--set` says otherwise: none, as 000 trains every method alike;
        a baseline whose own paper prescribes other values returns them."""
        return {}

    @classmethod
    def device_defaults(cls, devices: int) -> dict:
        """Its own settings whose default depends on the process count, at `devices` processes:
        none by default. Such a field of `Config` is declared `None` (`alpha: float | None = None`);
        `build_job` sets the value used, so a run logs it and its row leaves it out as the default
        it is (one configuration, one row name), while `--set alpha=...` still wins."""
        return {}

    @classmethod
    def check_job(cls, config: TrainConfig, method_config, devices: int) -> None:
        """Reject, with a UserError, a combination of shared and own hyperparameters and devices
        that cannot run (checked when the job is built, before any run exists): none by default."""

    def train(self, ctx: TrainContext) -> None:
        """Train until `ctx` says stop."""
        raise NotImplementedError


METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str):
    """Class decorator: register a Method subclass under `name`."""

    def wrap(cls: type[Method]) -> type[Method]:
        cls.name = name
        declare_method_settings(name, cls.Config, cls.device_defaults)  # its rows' identities (core.job.Row)
        return METHODS.add(name, cls)

    return wrap


def get_method(name: str) -> type[Method]:
    """The Method class registered as `name` (exit 2 naming the valid ones if there is none)."""
    return METHODS.lookup(name)


def check_devices(method: type[Method], devices: int) -> None:
    """Reject a device count the method cannot use."""
    if devices < 1:
        raise UserError(f"--devices must be >= 1, got {devices}")
    if method.max_devices is not None and devices > method.max_devices:
        raise UserError(f"method {method.name} runs on {method.max_devices} device(s), not {devices}")
