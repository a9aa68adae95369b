"""The Method interface and the registry (`@register_method("name")`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from benchmarks.errors import UserError, did_you_mean

if TYPE_CHECKING:
    from benchmarks.config import TrainConfig
    from benchmarks.runner import Job, TrainContext


@dataclass
class NoConfig:
    """A method without hyperparameters of its own."""


class Method:
    """A training method: `train(job, ctx)` trains `ctx.model` epoch by epoch through `ctx`.

    The runner owns the clock, evaluation, logging and stopping; a method only trains. Its own
    hyperparameters are the fields of `Config` (settable with `--set key=value`).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig
    max_devices: ClassVar[int | None] = 1  # None: any number of processes

    @classmethod
    def train_defaults(cls, config: TrainConfig, devices: int) -> dict:
        """Shared hyperparameters (TrainConfig keys) this method changes from the profile's `config`
        on `devices` processes, unless `--set` says otherwise: none, as 000 trains every method alike;
        a baseline whose own paper prescribes other values returns them."""
        return {}

    def train(self, job: Job, ctx: TrainContext) -> None:
        """Train until `ctx` says stop."""
        raise NotImplementedError


METHODS: dict[str, type[Method]] = {}


def register_method(name: str):
    """Class decorator: register a Method subclass under `name`."""

    def wrap(cls: type[Method]) -> type[Method]:
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def get_method(name: str) -> type[Method]:
    """The Method class registered as `name`."""
    if name not in METHODS:
        raise did_you_mean("method", name, METHODS)
    return METHODS[name]


def check_devices(method: type[Method], devices: int) -> None:
    """Reject a device count the method cannot use."""
    if devices < 1:
        raise UserError(f"--devices must be >= 1, got {devices}")
    if method.max_devices is not None and devices > method.max_devices:
        raise UserError(f"method {method.name} runs on {method.max_devices} device(s), not {devices}")
