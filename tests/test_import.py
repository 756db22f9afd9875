"""``import qbfast``: what it imports, and the accessor it registers.

Each check runs in a fresh interpreter (the test process has long imported everything).
"""

from __future__ import annotations

import subprocess
import sys

NOT_IMPORTED = """
import sys
import qbfast
heavy = sorted(m for m in ("dask", "distributed", "zarr", "matplotlib", "qutip",
                           "qbfast.analysis.claims", "qbfast.analysis.extrema",
                           "qbfast.runner.driver", "qbfast.store") if m in sys.modules)
print(heavy)
"""

ACCESSOR = """
import sys
import numpy as np
import xarray as xr
import qbfast
from qbfast.analysis.accessor import DataArrayAccessor, DatasetAccessor
assert xr.Dataset.qb is DatasetAccessor and xr.DataArray.qb is DataArrayAccessor
assert "dask" not in sys.modules
ds = qbfast.sweep("cavity", np.linspace(0.0, 3.0, 31), J2=[0.5, 1.0], metrics=["energy"])
ext = ds.qb.extrema("energy")
print(float(ext.energy_max.sel(J2=1.0)), float(ds.energy.sel(J2=1.0).max()))
"""

SHADOWED = """
import types
import qbfast.analysis as qa
import qbfast.analysis.claims, qbfast.analysis.correlation, qbfast.analysis.extrema
from qbfast.analysis.plots import plot_metric  # imports .extrema and .steering itself
names = sorted(qa.__all__)
print([(n, isinstance(getattr(qa, n), types.ModuleType)) for n in ("claims", "correlation",
                                                                      "extrema")])
print(all(hasattr(qa, n) for n in names), sorted(set(names) - set(dir(qa))))
"""


def _run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_import_qbfast_imports_no_dask_no_analysis_no_store():
    assert _run(NOT_IMPORTED) == ["[]"]


def test_accessor_registered_by_import_qbfast_and_works():
    """``ds.qb`` is the registered accessor after a bare ``import qbfast``, and its first call
    imports the analysis: the energy maximum it finds is the largest sample (no refinement
    beyond the samples' range)."""
    found, largest = map(float, _run(ACCESSOR)[0].split())
    assert largest > 0.0 and largest - 1e-9 <= found <= largest + 0.05 * largest


def test_analysis_names_are_the_functions_whatever_imported_the_submodules():
    """``qbfast.analysis.claims`` (and correlation, extrema) is the function even after its
    submodule was imported directly or by another module; every name of __all__ resolves."""
    kinds, complete = _run(SHADOWED)
    assert kinds == "[('claims', False), ('correlation', False), ('extrema', False)]"
    assert complete == "True []"
