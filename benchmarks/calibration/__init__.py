"""The claims' calibration through the whole path (`calibrate-claims --path`): simulated stores of
runs with known truths (`stores`), the scenarios and workloads they are drawn from (`cases`,
`workloads`, `measured`), and the rates at which each claim's verdict comes out (`path`). The
rules' own calibration on cells is reports/claims/calibrate.py; "calibration" means these two only.
"""
