"""002 Table 6: WideResNet-16x8 / CIFAR-10 on Q = 2, 4 and 8 devices (002's settings S1, S2, S3).

LAP-SGD with U = 4 workers per device, LPP-SGD with U = 3 (002's caption; B = 128 for both, which
002 does not state), MB-SGD and PL-SGD at B_loc = 128 and 512. An 11 M-parameter model on up to 8
GPUs: `paper` only (and `smoke`, which runs Q = 2 at width 1/8 to test the spec); `quick` has no
jobs, since a 2-core CPU cannot say anything about it.
"""

from __future__ import annotations

from .common.lap002 import lap_cells, lap_row
from .common.spec import Cell, register_table, single_values

QS = (2, 4, 8)
CELLS = [("lapsgd", dict(U=4, B=128)), ("lppsgd", dict(U=3, B=128)), ("ddp", dict(B=128)),
         ("ddp", dict(B=512)), ("plsgd", dict(B=128)), ("plsgd", dict(B=512))]  # fmt: skip
# Per cell, in CELLS' order: 002's Tr.A., Te.A., T for Q = 2, 4, 8.
PAPER = [
    ((100.0, 94.92, 6368), (100.0, 94.91, 3092), (100.0, 94.69, 1562)),
    ((99.97, 94.89, 5551), (99.96, 94.87, 2724), (99.99, 93.78, 1377)),
    ((100.0, 93.98, 8265), (100.0, 94.22, 4045), (100.0, 93.83, 2116)),
    ((95.68, 88.42, 7920), (99.87, 89.46, 3913), (87.54, 73.97, 2076)),
    ((99.99, 94.21, 8293), (99.98, 94.02, 4022), (99.98, 94.18, 2105)),
    ((95.34, 88.33, 7829), (98.52, 84.45, 3784), (89.19, 81.80, 1977)),
]


def with_q(setting: dict[str, int], q: int) -> dict[str, int]:
    """002's setting on Q devices, Q first as in the row's name (`lapsgd[devices=2,...]`)."""
    return dict(Q=q, **setting)


def cells(profile: str) -> list[Cell]:
    """paper: the cells x Q; smoke: Q = 2 only; quick: none."""
    qs = {"paper": QS, "smoke": (2,)}.get(profile, ())
    rows = [(method, with_q(setting, q)) for q in qs for method, setting in CELLS]
    return lap_cells("cifar10", "wrn16_8", rows, profile)


SPEC = register_table(
    id="lap-table6",
    title="002 Table 6: WideResNet-16x8 / CIFAR-10 on 2, 4 and 8 devices (paper profile)",
    cells=cells,
    rows=tuple(lap_row(method, with_q(setting, q)) for method, setting in CELLS for q in QS),
    paper={
        ("wrn16_8", lap_row(method, with_q(setting, q))): single_values(
            train_acc_pct=tr, test_acc_pct=te, time_s=t
        )
        for (method, setting), per_q in zip(CELLS, PAPER, strict=True)
        for q, (tr, te, t) in zip(QS, per_q, strict=True)
    },
    kind="final",
    reading="Scalability over devices at 002's settings; runs only at `paper` (GPUs). `--devices N` "
    "runs every cell on N devices instead.",
    source="002 Table 6 (S1: 2 RTX 2080 Ti, S2: 4 and S3: 8 GPUs, 300 epochs), mean of 3 runs",
)
