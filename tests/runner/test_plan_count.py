"""One task count per run: the plan line's "(N to run)" and the tasks line "N tasks to run" are
the same number, the tasks that really run, also when recorded tasks lost chunk files (issue
19: the plan said "(0 to run)" and the next line "39 tasks to run")."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from qbstore import SMALL_SPEC, data_files, is_complete, reference_store, spec_file

from qbfast import store
from qbfast.runner.driver import tasks_to_run

PLAN = re.compile(r"in ([\d,]+) tasks \(([\d,]+) to run\)")
TASKS = re.compile(r"qbfast: ([\d,]+) tasks to run")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    path = reference_store(spec_file(d, SMALL_SPEC, "small"), d)
    info = store.open_info(path)
    store.write_complete(info, store.read_record(info))
    return path


def test_tasks_to_run_counts_lost_and_repaired_tasks(reference):
    info = store.open_info(reference)
    record = store.read_record(info)
    assert record.n_done == 3 and not len(record.missing)
    todo, redo = tasks_to_run(info, record, np.array([2]), (0,))
    assert todo.tolist() == [0, 2] and redo.tolist() == [0, 2]
    todo, redo = tasks_to_run(info, record, np.zeros(0, dtype=np.int64))
    assert todo.tolist() == [] and redo.tolist() == []


@pytest.mark.slow
def test_plan_and_tasks_lines_say_one_count(reference, tmp_path):
    import shutil

    path = tmp_path / "small.zarr"
    shutil.copytree(reference, path)
    (path / "energy" / "c.0.1.0").unlink()  # task 1 recorded, one of its chunk files gone
    spec = spec_file(tmp_path, SMALL_SPEC, "small")
    r = subprocess.run([sys.executable, "-m", "qbfast", "run", str(spec), "--store", str(path),
                        "--workers", "1"], capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    plan = PLAN.search(r.stderr)
    tasks = TASKS.findall(r.stderr)
    assert plan is not None and tasks, r.stderr
    assert plan.group(1) == "3" and plan.group(2) == "1", r.stderr
    assert tasks == ["1"], r.stderr
    assert is_complete(path) and data_files(path) == data_files(reference)
