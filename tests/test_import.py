"""``import qbfast``: what it imports, and the accessor it registers.

Each check runs in a fresh interpreter (the test process has long imported everything).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

#: One fresh interpreter for the three tests (an interpreter start costs seconds): what
#: ``import qbfast`` imported, then the accessor, then the analysis names.
SCRIPT = """
import sys, types
import qbfast
heavy = sorted(m for m in ("dask", "distributed", "zarr", "matplotlib", "qutip",
                           "qbfast.analysis.claims", "qbfast.analysis.extrema",
                           "qbfast.runner.driver", "qbfast.store") if m in sys.modules)
print(heavy)

import numpy as np
import xarray as xr
from qbfast.analysis.accessor import DataArrayAccessor, DatasetAccessor
print(xr.Dataset.qb is DatasetAccessor and xr.DataArray.qb is DataArrayAccessor)
ds = qbfast.sweep("cavity", np.linspace(0.0, 3.0, 31), J2=[0.5, 1.0], metrics=["energy"])
ext = ds.qb.extrema("energy")
print(float(ext.energy_max.sel(J2=1.0)), float(ds.energy.sel(J2=1.0).max()))

import qbfast.analysis as qa
import qbfast.analysis.claims, qbfast.analysis.correlation, qbfast.analysis.extrema
from qbfast.analysis.plots import plot_metric  # imports .extrema and .steering itself
names = sorted(qa.__all__)
print([(n, isinstance(getattr(qa, n), types.ModuleType)) for n in ("claims", "correlation",
                                                                      "extrema")])
print(all(hasattr(qa, n) for n in names), sorted(set(names) - set(dir(qa))))
"""


@pytest.fixture(scope="module")
def printed() -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_import_qbfast_imports_no_dask_no_analysis_no_store(printed):
    assert printed[0] == "[]"


def test_accessor_registered_by_import_qbfast_and_works(printed):
    """``xr.Dataset.qb`` / ``xr.DataArray.qb`` are the accessors after a bare
    ``import qbfast``, and the first call imports the analysis: the energy maximum it finds
    is the largest sample (parabolic refinement moves it up by little)."""
    assert printed[1] == "True"
    found, largest = map(float, printed[2].split())
    assert largest > 0.0 and largest - 1e-9 <= found <= largest + 0.05 * largest


def test_analysis_names_are_the_functions_whatever_imported_the_submodules(printed):
    """``qbfast.analysis.claims`` (and correlation, extrema) is the function even after its
    submodule was imported directly or by another module; every name of __all__ resolves."""
    assert printed[3] == "[('claims', False), ('correlation', False), ('extrema', False)]"
    assert printed[4] == "True []"
