"""Grouped stores run on a real LocalCluster: tasks stage, merge tasks write the storage
chunks; a run, a resume from every partial state (staged tasks, merged groups), a repair of a
damaged group, and SIGKILLs of the client and its workers at random moments (between a staging
file and its entry, mid-merge, between the chunk files and the group's entry), each compared
bit for bit with the store written task by task in this process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import qbstore

from qbfast import store
from qbfast.runner.driver import execute
from qbfast.runner.spec import load_spec
from qbfast.runner.tasks import DEBUG_DELAY_ENV, run_task
from qbfast.store.record import staged_files
from qbfast.store.writer import DEBUG_JOURNAL_DELAY_ENV

distributed = pytest.importorskip("distributed")

SPEC = qbstore.GROUPABLE_SPEC + qbstore.GROUP  # 36 tasks in 12 groups of up to 2 x 2 tasks


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    return qbstore.spec_file(tmp_path_factory.mktemp("specs"), SPEC, "grouped")


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory) -> Path:
    """The spec written in this process, no cluster: the uninterrupted run."""
    return qbstore.reference_store(spec_file, tmp_path_factory.mktemp("ref"))


def test_grouped_run_equals_the_store_written_in_process(client, spec_file, reference,
                                                         tmp_path):
    path = tmp_path / "a.zarr"
    report = execute(load_spec(spec_file), path, client)
    assert report.status == "created" and report.tasks_computed == 36
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)
    assert not list((path / "_qbfast" / "staging").iterdir())
    assert len(list((path / "energy_max").glob("c.*"))) == 12
    assert "energy" in report.peaks


def test_resume_from_staged_tasks_and_merged_groups(client, spec_file, reference, tmp_path):
    spec = load_spec(spec_file)
    path = tmp_path / "r.zarr"
    info = qbstore.create(spec, path)
    qbstore.write_groups(spec, path, groups=[0, 5])  # merged
    ctx = qbstore.context(spec, path)
    staged = [int(t) for t in info.group_tasks(7)] + [int(info.group_tasks(8)[0])]
    for t in staged:  # group 7 fully staged (to merge only), group 8 partly
        run_task(t, ctx)
    before = store.read_record(info)
    assert before.n_staged == len(staged) and before.n_groups_done == 2
    report = execute(spec, path, client)
    merged = len(info.group_tasks(0)) + len(info.group_tasks(5))
    assert report.status == "resumed"
    assert report.tasks_computed == 36 - merged - len(staged)
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)
    assert not len(staged_files(info))


def test_repair_recomputes_the_whole_group(client, spec_file, reference, tmp_path):
    spec = load_spec(spec_file)
    path = tmp_path / "v.zarr"
    execute(spec, path, client)
    p = path / "ergotropy_max" / "c.1.1.0"  # J2 tasks 2-3, J1 tasks 0-1
    p.write_bytes(p.read_bytes()[:-7] + b"garbage")
    info = store.open_info(path)
    damage = store.verify(info, store.read_record(info))
    tasks = tuple(sorted({d.task for d in damage}))
    assert len(tasks) == 4
    report = execute(spec, path, client, repair=tasks)
    assert report.tasks_computed == 4 and report.repaired == 4
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)


def _entries(path: Path) -> int:
    j = path / "_qbfast" / "journal"
    try:
        return sum(f.stat().st_size for f in j.iterdir())
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_killed_at_random_moments_then_resumed_is_bit_for_bit(client, spec_file, reference,
                                                              tmp_path):
    """The client and its two local workers SIGKILLed together three times, each at a random
    moment (delays widen the windows between a staging file and its entry and between a
    group's chunk files and its entry), then a resume: bit for bit the uninterrupted store."""
    path = tmp_path / "k.zarr"
    seed = int(time.time())
    rng = random.Random(seed)
    env = {DEBUG_DELAY_ENV: "0.05", DEBUG_JOURNAL_DELAY_ENV: "0.15"}
    seen_staging = 0
    for kill in range(3):
        log = open(tmp_path / f"run{kill}.log", "w")
        proc = qbstore.qbfast_proc(["run", str(spec_file), "--store", str(path), "--workers",
                                    "2"], env=env, stdout=log, stderr=subprocess.STDOUT)
        start = _entries(path)
        try:
            qbstore.wait_for(lambda p=proc, s=start: _entries(path) > s or p.poll() is not None,
                             120, "a journal entry")
            time.sleep(rng.uniform(0.0, 1.5))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
            log.close()
        if path.exists():
            seen_staging += len(staged_files(store.open_info(path)))
    assert path.exists(), (tmp_path / "run0.log").read_text()
    assert not qbstore.is_complete(path), f"seed {seed}: the kills came too late"
    report = execute(load_spec(spec_file), path, client)
    assert report.status == "resumed"
    assert qbstore.is_complete(path), f"seed {seed}"
    assert qbstore.data_files(path) == qbstore.data_files(reference), f"seed {seed}"
    assert not len(staged_files(store.open_info(path)))
    assert seen_staging > 0, f"seed {seed}: no kill left a staging file"
