"""The suite's application: the CLI (`python -m benchmarks`), the job builder, the runner, the table
specs and the perf benchmarks. Importing it changes nothing; `cli.main` and the entry points of
spawned processes apply the allocator setting (core/runtime/allocator.py) explicitly."""
