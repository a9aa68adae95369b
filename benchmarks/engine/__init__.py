"""The engine: how a job is built (`build`), run start to end and recorded (`runner`, `tracking`),
trained in one process (`rank`) or several (`distributed`), and measured (`mfu`). The catalogue of
what to run (tables, profiles, perf benchmarks) and the CLI sit beside it in `benchmarks/`."""
