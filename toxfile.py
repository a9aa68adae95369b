"""tox's inline plugin: one environment per registered training method, from the registry.

`tox -e NAME` smoke-trains method NAME through the CLI (ResNet-18 on CIFAR-10, then the GPT on
imdb-lm; a multi-device method on 2 processes, and a method that cuts the model also under torchrun),
so a new method file is in the matrix with no edit here or in tox.ini. Every such environment is
labelled `methods`: `tox run -m methods` runs them all.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tox.config.loader.memory import MemoryLoader
from tox.config.types import Command, EnvList
from tox.plugin import impl

WORKLOADS = (("cifar10", "resnet18"), ("imdb-lm", "gpt"))  # every method's smoke training


def training_methods() -> dict[str, type]:
    """The registry's training methods (a measurement such as Table 9's timing is no method), read
    from this checkout (not an installed copy) by the project's venv, where tox.ini says to run tox."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from methods import METHODS
    except ImportError as missing:
        raise SystemExit(f"toxfile.py: {missing}; run tox from the project's venv: .venv/bin/tox") from None

    return {name: method for name, method in METHODS.items() if not method.measures}


def smoke_commands(name: str, method: type) -> list[str]:
    """The command lines of method `name`'s environment."""
    train = f"-m benchmarks train --method {name}{'' if method.max_devices == 1 else ' --devices 2'}"
    lines = [
        f"python {train} --dataset {data} --model {model} --profile smoke --json" for data, model in WORKLOADS
    ]
    if method.cuts_model:  # a pipeline's stages as torchrun starts them, not as the suite spawns them
        lines.append(f"torchrun --nproc-per-node 2 {train} --profile smoke --json")
    return lines


def description(name: str, method: type) -> str:
    """The environment's one-line description."""
    where = "one process" if method.max_devices == 1 else "2 processes"
    return f"smoke training of {name} ({method.summary}) on {where} through the CLI"


@impl
def tox_extend_envs() -> list[str]:
    return list(training_methods())


@impl
def tox_add_core_config(core_conf, state) -> None:
    # `tox` alone runs lint, the unit tests, every method, then every table at smoke (tox.ini's
    # environments around the registry's).
    env_list = EnvList(["lint", "unit", *training_methods(), "smoke-tables"])
    core_conf.loaders.insert(0, MemoryLoader(env_list=env_list))
    for name, method in training_methods().items():
        commands = [Command(shlex.split(line)) for line in smoke_commands(name, method)]
        loader = MemoryLoader(commands=commands, description=description(name, method), labels=["methods"])
        state.conf.memory_seed_loaders[name].append(loader)
