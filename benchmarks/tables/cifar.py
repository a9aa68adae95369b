"""The CIFAR training runs that Tables 1-4 and Figures 2-3 are views of, per profile.

Tables 1 and 2 (and Figure 3) read the same CIFAR-10 runs; Tables 3 and 4 (and Figure 2) the
same CIFAR-100 runs. Their jobs are therefore built here once, tagged with the first table's id
(`table1` / `table3`): the job keys coincide, so running any of the views resumes the others.
"""

from __future__ import annotations

from benchmarks.profiles import hyperparameters
from benchmarks.runner import Job
from methods import METHODS

MODELS = ("resnet18", "resnet50")
# Runs per cell: the paper's 3; quick keeps 3 only where a table's quick run fits an hour.
RUNS = {"paper": 3, "quick": 1, "smoke": 1}
# The paper trains every method on 3 GPUs (one process each). On a 2-core CPU the async methods'
# parallelism is their threads, so quick and smoke run them in one process.
DEVICES = {"paper": 3, "quick": 1, "smoke": 1}


def cifar_jobs(
    table: str, dataset: str, methods: tuple[str, ...], profile: str, runs: int | None
) -> list[Job]:
    """models x methods x runs training jobs on `dataset`; methods not implemented yet are left out."""
    jobs = []
    for model in MODELS:
        for method in methods:
            if method not in METHODS:
                continue
            devices = DEVICES[profile] if METHODS[method].max_devices is None else 1
            for run in range(runs or RUNS[profile]):
                jobs.append(
                    Job(
                        table=table,
                        dataset=dataset,
                        model=model,
                        method=method,
                        profile=profile,
                        config=hyperparameters(dataset, model, profile),
                        method_config=METHODS[method].Config(),
                        seed=run,
                        run_index=run,
                        devices=devices,
                    )
                )
    return jobs
