"""The cases `calibrate-claims --path` simulates (docs/log/fidelity.md, "Error rates through the whole
path"): for each claim, its rows' truths (`synthetic.RowTruth`) from the true effect of each of its
parts on its band's scale, on workloads whose run-to-run spreads were fitted to stored runs.

A case keys a truth by the row's label, `table/label` or `model/label` (the most specific wins).
Speeds are per epoch and the curves of two compared rows alike, so a time claim's true effect is
the ratio of seconds per epoch; accuracy effects move the best value a row reaches at its last epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from ..tables import layup
from . import measured
from .stores import RowTruth
from .workloads import (
    CIFAR_BEST,
    GPUS,
    SECONDS,
    TWO_GPUS,
    PathCase,
    Truths,
    Workloads,
    falling,
    row,
)


def bu_fastest(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """Every other row slower than BU by exp(effect) per epoch; the curves alike, so the target
    (the lowest best) is reached after as many epochs in expectation."""
    (lead,) = effects
    slower = SECONDS * math.exp(lead)
    return {
        "async_bu": row(CIFAR_BEST, SECONDS, 5, w.cifar),
        **{m: row(CIFAR_BEST, slower, 5, w.cifar) for m in ("async_lu", "lapsgd", "lppsgd")},
    }


def lu_faster(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LPP slower than LU by the every-cell part's effect, LAP by the best-cell part's."""
    every, best = min(effects), effects[1]  # the best cell is LAP's: LPP's is never above it
    return {
        "async_lu": row(CIFAR_BEST, SECONDS, 5, w.cifar),
        "lppsgd": row(CIFAR_BEST, SECONDS * math.exp(every), 5, w.cifar),
        "lapsgd": row(CIFAR_BEST, SECONDS * math.exp(best), 5, w.cifar),
    }


def async_more_accurate(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LAP and LPP `effect` points below LU and BU."""
    (gap,) = effects
    return {
        **{m: row(CIFAR_BEST, SECONDS, 5, w.cifar) for m in ("async_lu", "async_bu")},
        **{m: row(CIFAR_BEST - gap / 100, SECONDS, 5, w.cifar) for m in ("lapsgd", "lppsgd")},
    }


def lu_more_accurate(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """CIFAR: BU the first part's points below LU; IMDb (table6): the second's."""
    cifar, imdb = effects
    return {
        "table1/async_lu": row(CIFAR_BEST, SECONDS, 5, w.cifar),
        "table1/async_bu": row(CIFAR_BEST - cifar / 100, SECONDS, 5, w.cifar),
        "table6/async_lu": row(0.85, 6.5, 8, w.imdb_lu),
        "table6/async_bu": row(0.85 - imdb / 100, 6.5, 8, w.imdb_bu),
    }


def imdb_twice(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """BU exp(first effect) slower per epoch than LU (each reaches its best at its last epoch), and
    the second effect's points less accurate."""
    speed, gap = effects
    return {
        "async_lu": row(0.85, 6.5, 8, w.imdb_lu),
        "async_bu": row(0.85 - gap / 100, 6.5 * math.exp(speed), 8, w.imdb_bu),
    }


def stragglers(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LU's best accuracy moved by the effect (points) at each delay level, one epoch at quick."""
    (drop,) = effects
    delayed = [f"async_lu[straggler_delay_frac={d}]" for d in ("0.25", "0.5", "1")]
    return {
        "async_lu": row(0.48, SECONDS, 1, w.cifar, tau=0.5),
        **{m: row(0.48 + drop / 100, SECONDS * 1.1, 1, w.cifar, tau=0.5) for m in delayed},
    }


# --- table layup (000 v4's abstract): 3 workers, ResNet-18 1 epoch to 40 %, the GPT 3 epochs to
# 4.3 bits per byte at quick, as the pilot ran them (results/mlflow.db, 2026-11-27).
LAYUP_SECONDS = {"resnet18": 45.0, "gpt": 42.0}
LAYUP_BEST = {"resnet18": 0.45, "gpt": 4.15}  # the pilot's DDP: 0.475, 4.152
LAYUP_EPOCHS = {"resnet18": 1, "gpt": 3}


def layup_row(model: str, w: Workloads, slower: float = 0.0, better: float = 0.0, **extra) -> RowTruth:
    """A layup row of `model`: exp(slower) times the seconds per epoch, its best `better` in logs
    (a higher accuracy, lower bits per byte), `extra` per-epoch metrics."""
    seconds, epochs = LAYUP_SECONDS[model] * math.exp(slower), LAYUP_EPOCHS[model]
    if model == "gpt":
        truth = falling(LAYUP_BEST[model] * math.exp(-better), seconds, epochs, w.gpt)
    else:
        truth = row(LAYUP_BEST[model] * math.exp(better), seconds, epochs, w.cifar, tau=0.5)
    return replace(truth, extra={k: (v, DRIFT_SPREAD) for k, v in extra.items()})


def layup_label(model: str, method: str, fraction: float = 0.0, kind: str = "compute") -> str:
    """The label of the method's row of table layup at quick on `model` (with a straggler of this
    kind and size), with the settings its frozen tuning choice adds, as the table names it."""
    tuned = layup.TUNING.settings("quick", model, method)  # the layup cases' profile
    return layup.table_row(method, fraction, kind, tuned=tuned).label


def both(
    method: str, make: Callable[[str], RowTruth], fraction: float = 0.0, kind: str = "compute"
) -> dict[str, RowTruth]:
    """The method's row's truth on both of the table's models, keyed model/label (`layup_label`)."""
    return {f"{model}/{layup_label(model, method, fraction, kind)}": make(model) for model in LAYUP_EPOCHS}


def layup_faster(baseline: str) -> Truths:
    """The baseline slower than LayUp per epoch by the every-model part's effect on the GPT and by
    the best-model part's on ResNet-18."""

    def truths(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
        every, best = min(effects), effects[1]  # the best cell is ResNet-18's: the GPT's never above it
        slower = {"gpt": every, "resnet18": best}
        return {
            **both("layup", lambda m: layup_row(m, w)),
            **both(baseline, lambda m: layup_row(m, w, slower[m])),
        }

    return truths


def layup_straggled(kind: str) -> Truths:
    """Under a 100 % straggler of `kind`: LayUp slowed by the second part's effect (or 10 % where
    the claim has one part), DDP by the first part's effect more."""

    def truths(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
        ratio, own = (*effects, math.log(1.1))[:2]
        return {
            **both("layup", lambda m: layup_row(m, w)),
            **both("ddp", lambda m: layup_row(m, w)),
            **both("layup", lambda m: layup_row(m, w, own), 1.0, kind),
            **both("ddp", lambda m: layup_row(m, w, own + ratio), 1.0, kind),
        }

    return truths


def layup_faster_than_comm(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """PL-SGD the fastest communication-efficient baseline, slower than LayUp as `layup_faster`
    makes a baseline; LAP-SGD and DiLoCo a further 1.3x slower (as at quick, where PL-SGD led)."""
    truths = layup_faster("plsgd")(effects, w)
    every, best = min(effects), effects[1]
    slower = {"gpt": every + math.log(1.3), "resnet18": best + math.log(1.3)}
    for baseline in ("lapsgd", "diloco"):
        truths |= both(baseline, lambda m: layup_row(m, w, slower[m]))
    return truths


DRIFT = 1e-3  # LayUp's replica drift (a relative distance; its level does not matter to a ratio)
DRIFT_SPREAD = measured.noise("layup-lower-drift", 0) / math.sqrt(2)  # a run's share of a pair's spread


def layup_drift(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LAP-SGD's and DiLoCo's replicas exp(effect) times further apart than LayUp's."""
    (ratio,) = effects
    truths = both("layup", lambda m: layup_row(m, w, replica_drift=DRIFT))
    for baseline in ("lapsgd", "diloco"):
        truths |= both(baseline, lambda m: layup_row(m, w, replica_drift=DRIFT * math.exp(ratio)))
    return truths


def layup_task(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LayUp's best metric exp(effect) better than DDP's (accuracy higher, bits per byte lower)."""
    (better,) = effects
    return {
        **both("ddp", lambda m: layup_row(m, w)),
        **both("layup", lambda m: layup_row(m, w, better=better)),
    }


# --- the suite's extensions and 000's GPU tables at quick.
def gpt_lower_loss(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """pd-transformer's 20 quick epochs: BU's best bits per byte `effect` above LU's."""
    (gap,) = effects
    return {
        "async_lu": falling(2.4, 30.0, 20, w.gpt, tau=4.0),
        "async_bu": falling(2.4 + gap, 30.0, 20, w.gpt, tau=4.0),
    }


def throughput(label_rates: dict[str, float], w: Workloads, epochs: int) -> dict[str, RowTruth]:
    """Rows that differ in samples per second alone (each run's log-normal with the time spread)."""
    base = row(CIFAR_BEST, SECONDS, epochs, w.cifar)
    return {
        label: replace(base, extra={"samples_per_s": (1000.0 * rate, w.cifar.time)})
        for label, rate in label_rates.items()
    }


def lu_over_pipelines(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """pd-pipeline: LU's samples per second exp(effect) times GPipe's and 1F1B's."""
    (ratio,) = effects
    return throughput({"async_lu": math.exp(ratio), "gpipe": 1.0, "pipe_1f1b": 1.0}, w, 5)


def thread_ratio(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """pd-threads: 1 forward to 2 backward threads (each method's default) exp(effect) times the
    samples per second of 1:1, for LU and BU on both models."""
    (ratio,) = effects
    rates = {m: math.exp(ratio) for m in ("async_lu", "async_bu")}
    rates |= {f"{m}[backward_threads=1]": 1.0 for m in ("async_lu", "async_bu")}
    return throughput(rates, w, 2)


def lu_about_ddp(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """table7 at quick (ResNet-18): DDP exp(effect) times slower per epoch than LU, bp as slow as
    000's 1.9x speed-up makes it; the curves alike."""
    (ratio,) = effects
    return {
        "async_lu": row(CIFAR_BEST, SECONDS, 5, w.cifar),
        "ddp": row(CIFAR_BEST, SECONDS * math.exp(ratio), 5, w.cifar),
        "bp": row(CIFAR_BEST, SECONDS * 1.9, 5, w.cifar),
    }


CASES: dict[str, PathCase] = {
    "bu-fastest-to-target": PathCase(bu_fastest, "async_bu", 5),
    "lu-faster-than-lap-lpp": PathCase(lu_faster, "async_lu", 5),
    "async-more-accurate-than-lap-lpp": PathCase(async_more_accurate, "async_lu", 5),
    "lu-more-accurate-than-bu": PathCase(lu_more_accurate, "table1/async_lu", 5),
    "imdb-lu-twice-as-fast": PathCase(imdb_twice, "async_lu", 8),
    "004-stragglers-cost-under-2.5-points": PathCase(stragglers, "async_lu[straggler_delay_frac=1]", 1),
    "layup-faster-than-ddp": PathCase(layup_faster("ddp"), f"gpt/{layup_label('gpt', 'layup')}", 3),
    "layup-faster-than-diloco": PathCase(layup_faster_than_comm, f"gpt/{layup_label('gpt', 'layup')}", 3),
    "layup-robust-to-stragglers": PathCase(
        layup_straggled("compute"), f"gpt/{layup_label('gpt', 'layup', 1.0)}", 3, GPUS
    ),
    "layup-robust-to-wire-delays": PathCase(
        layup_straggled("wire"), f"gpt/{layup_label('gpt', 'layup', 1.0, 'wire')}", 3
    ),
    "layup-lower-drift": PathCase(layup_drift, f"gpt/{layup_label('gpt', 'layup')}", 3),
    "layup-task-performance": PathCase(layup_task, f"gpt/{layup_label('gpt', 'layup')}", 3),
    "gpt-lu-lower-loss-than-bu": PathCase(gpt_lower_loss, "async_lu", 20),
    "lu-faster-than-pipelines": PathCase(lu_over_pipelines, "async_lu", 5),
    "004-thread-ratio-1-2-best": PathCase(thread_ratio, "async_lu", 2),
    "lu-speedup-about-ddp": PathCase(lu_about_ddp, "async_lu", 5, TWO_GPUS),
    "beta-about-2": PathCase(measured.beta_about_2, "table9/resnet18", 1),
    "speedup-approaches-1-plus-beta": PathCase(measured.speedup_bound, "", 0, GPUS),
    "gpt-lu-speedup": PathCase(measured.gpt_speedup, "pd-transformer/async_lu", 20, GPUS),
    "lu-staleness-below-bu-grows-with-depth": PathCase(measured.lu_staleness, "resnet18/async_bu", 5),
    "gpt-lu-staleness-below-bu-grows-with-depth": PathCase(
        measured.gpt_staleness, "pd-transformer/async_lu", 20
    ),
    "gpt-remedy-closes-gap": PathCase(
        measured.remedies, f"pd-transformer-remedies/{measured.BEST_REMEDY}", measured.BP_EPOCHS
    ),
    "004-mfu-above-ddp": PathCase(measured.mfu_above, "pd-headline/async_lu", 5, TWO_GPUS),
    "004-faster-than-lppsgd-and-ddp": PathCase(
        measured.headline, "async_lu", measured.HEADLINE_EPOCHS, GPUS, "paper"
    ),
    "imagenet-same-accuracy-3x-faster": PathCase(
        measured.imagenet, "async_lu", measured.IMAGENET_EPOCHS, GPUS, "paper"
    ),
}
