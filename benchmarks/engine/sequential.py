"""`run claims --until-decided`: each claim's sequential design run until it decides (docs/design.md).

After the runs of the first look (`planner.run_claims`), each round judges every selected claim on
the store with the code the report uses (`Claim.judge`). For a claim still inconclusive, it plans
the next look of each open cell: the rows the cell compares (`Cell.rows`; the claim's every row
where its rule names none) at the run indices of that look (`Plan.runs_at(look)`), and
the perf results of that look. A cell's rows are run even where the profile's plan left them out
(`run TABLE` made its first runs): the cell counts in the verdict, so it must decide for the
claim to. Rounds run the claims' batches cheapest first within the budget, until every claim is
decided, its open cells have reached the design's last look, or nothing more fits. The store is
the only state: a command killed mid-round and run again judges the same runs, so it plans the
same batches and ends at the same verdicts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .executor import Executor
from .planner import ClaimPlan, Estimates, pending_cost, plan_claims, run_claims

log = logging.getLogger(__name__)


def open_looks(claim, evidence) -> dict[int, set | None]:
    """The next look of each open cell of an inconclusive claim, and the rows whose runs it needs
    (look -> (table, model, label) rows, or None: every row of the plan); {} once decided, not
    measurable, or at the design's last look."""
    from reports.claims import INCONCLUSIVE

    verdict = claim.judge(evidence)
    wanted: dict[int, set | None] = {}
    if verdict.verdict != INCONCLUSIVE:
        return wanted
    for result in verdict.results:
        if result.verdict != INCONCLUSIVE:
            continue  # a reproduced part needs no more runs (a part not reproduced decides the claim)
        for cell in result.open:
            look = cell.look + 1
            if look > claim.plan.last:
                continue
            rows = wanted.get(look, set())
            wanted[look] = None if rows is None or not cell.rows else rows | set(cell.rows)
    return wanted


def next_plan(
    claim, specs: dict, profile: str, devices: int | None, uri: str, missing: set[str]
) -> ClaimPlan:
    """The claim's next batch: the jobs (and perf results) of the next look of its open cells, less
    the datasets not on disk (`missing`)."""
    from reports.claims import Evidence

    batch = ClaimPlan(claim)
    for look, rows in sorted(open_looks(claim, Evidence(uri, specs, profile)).items()):
        runs = claim.plan.runs_at(look)
        if rows is None:
            (full,) = plan_claims([claim], specs, profile, runs, devices, uri)
            batch.jobs += full.jobs
            batch.later += full.later
            batch.perf, batch.perf_runs = full.perf, max(batch.perf_runs, full.perf_runs)
            continue
        # The table's own jobs of the cell's rows: a cell the rule reads counts in the verdict even
        # where this profile's plan did not make its first runs (`run TABLE` did).
        for table in sorted({table for table, _, _ in rows}):
            jobs = specs[table].jobs(profile, runs, devices)
            batch.jobs += [j for j in jobs if (j.table, j.model, j.label) in rows]
    batch.jobs = [j for j in {(j.table, j.key): j for j in batch.jobs}.values() if j.dataset not in missing]
    return batch


def run_until_decided(
    claims: list,
    specs: dict,
    profile: str,
    devices: int | None,
    executor: Executor,
    estimates: Estimates,
    run_perf: Callable[[str], None],
    missing: set[str],
) -> list[tuple[str, float]]:
    """Rounds of next looks (the module docstring) until no claim has a batch this command has not
    tried; returns the claims whose next batch the budget left out (id, estimated seconds)."""
    uri = estimates.tracker.uri
    left_out: list[tuple[str, float]] = []
    for round_ in range(1, 1000):  # each round tries new jobs or ends; a design has a last look
        batches = [next_plan(c, specs, profile, devices, uri, missing) for c in claims]
        batches = [b for b in batches if b.later or b.perf or any(not executor.seen(j) for j in b.jobs)]
        batches = [b for b in batches if pending_cost(b, estimates, set()) > 0]
        if not batches:
            break
        names = ", ".join(b.claim.id for b in batches)
        log.info("until decided, round %d: the next look of %s", round_, names)
        before = progress(batches, executor, estimates)
        left_out = run_claims(batches, executor, estimates, run_perf, dry_run=False)
        if progress(batches, executor, estimates) == before:
            break  # nothing new could run (the budget): the next round would plan the same
    return left_out


def progress(batches: list[ClaimPlan], executor: Executor, estimates: Estimates) -> tuple[int, int]:
    """The batches' jobs this command has tried and their perf results in the store."""
    names = {n for b in batches for n in b.perf}
    return sum(executor.seen(j) for b in batches for j in b.jobs), sum(estimates.perf_count(n) for n in names)


def print_designs(
    plans: list[ClaimPlan],
    specs: dict,
    profile: str,
    devices: int | None,
    estimates: Estimates,
    missing: set[str],
    out: Callable[[str], None] = print,
) -> None:
    """`--dry-run`: each design, and what each claim's runs would cost up to its last look if every
    cell stayed open (`--until-decided` at most), beside the first look's; then the union's."""
    if profile == "smoke":
        return  # smoke runs decide nothing: no look follows the first
    designs = {p.claim.plan.design.text() for p in plans}
    for text in sorted(designs):
        ids = [p.claim.id for p in plans if p.claim.plan.design.text() == text]
        out(f"design ({'every claim' if len(designs) == 1 else ', '.join(ids)}): {text}")
    union: dict = {}
    perf: dict[str, int] = {}
    for plan in plans:
        if not (plan.every_job or plan.perf):
            continue
        claim = plan.claim
        runs = claim.plan.runs_at(claim.plan.last)
        (most,) = plan_claims([claim], specs, profile, runs, devices)
        most.jobs = [j for j in most.jobs if j.dataset not in missing]
        union.update({(j.table, j.key): j for j in most.every_job})
        perf.update({name: max(perf.get(name, 0), most.perf_runs) for name in most.perf})
        first, cost = pending_cost(plan, estimates, set()), pending_cost(most, estimates, set())
        out(
            f"  {claim.id}: ~{first / 60:.1f} min to its first look, at most ~{cost / 60:.1f} min to its last"
        )
    total = sum(estimates.job_s(j) for j in union.values())
    total += sum(estimates.perf_s(name, count) for name, count in perf.items())
    out(f"--until-decided: at most {len(union)} jobs, ~{total / 60:.1f} min, if no cell decides early")
