"""Benchmarks of qbfast (timings depend on the machine and its load; nothing is asserted).

- ``python -m bench.kernels``: kernel throughput against NumPy and QuTiP baselines
  (``--quick`` for a smoke run, ``--help`` for sizes). The baselines live in
  :mod:`bench.baselines` and are checked to compute the same 15 metrics as ``qbfast.sweep`` by
  ``tests/bench/test_baselines.py``.
- ``python -m bench.sweeps``: sweep and storage throughput (see :mod:`bench.sweeps`).
"""
