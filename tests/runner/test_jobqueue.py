"""``qbfast run --cluster``: workers as dask-jobqueue batch jobs. For real with
dask-jobqueue's LocalCluster (the same machinery as SLURM and PBS, the jobs run as local
processes); SLURM's job script as dask-jobqueue itself renders it; bad options and a missing
dask-jobqueue in one line, rc 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import qbstore

from qbfast.cli import main
from qbfast.runner.cluster import (
    Jobqueue,
    lifetime_margin,
    minimum_walltime,
    walltime_seconds,
)
from qbfast.runner.driver import read_placements

pytest.importorskip("dask_jobqueue")

#: Stand-ins for sbatch and qsub on the PATH (that fail if run) for the tests of options
#: refused before any job is submitted, on hosts without a batch system.
FAKE_BATCH = Path(__file__).with_name("fake_batch")

SPEC = """
model = "cavity"
metrics = ["energy", "ergotropy"]
dtype = "float32"
[params]
J2 = { start = -1.0, stop = 2.0, num = 6 }
t = { start = 0.0, stop = 5.0, num = 41 }
[chunks]
J2 = 1
"""  # 6 tasks


CLUSTER_TABLE = """
[cluster]
kind = "local"
cores = 1
processes = 1
memory = "1GB"
jobs = 2
walltime = "00:10:00"
"""


@pytest.mark.slow  # batch jobs as local processes
# dask-jobqueue's LocalCluster leaves its jobs' pipes for the garbage collector
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("given", ["flags", "[cluster]"])
def test_local_jobqueue_run_is_bit_for_bit_on_its_jobs_workers(tmp_path, capsys, given):
    """The same jobs from the run flags or from the spec's [cluster] table; the store then
    resumes (here: is found complete) under the spec without the table: same identity."""
    plain = qbstore.spec_file(tmp_path, SPEC, "jq")
    spec = plain if given == "flags" else qbstore.spec_file(tmp_path, SPEC + CLUSTER_TABLE,
                                                            "jq-table")
    flags = ["--cluster", "local", "--cores", "1", "--processes", "1", "--memory", "1GB",
             "--jobs", "2", "--walltime", "00:10:00"] if given == "flags" else []
    reference = qbstore.reference_store(plain, tmp_path / "ref")
    path = tmp_path / "s.zarr"
    assert main(["run", str(spec), "--store", str(path), *flags, "--timeout", "120"]) == 0
    assert "qbfast: dask-jobqueue LocalCluster: 2 jobs\n" in capsys.readouterr().err
    assert main(["run", str(plain), "--store", str(path)]) == 0
    assert "is already complete" in capsys.readouterr().out
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)
    rows = read_placements(path)
    assert sorted(r["task"] for r in rows) == list(range(6))
    assert all(r["dask_threads"] * r["numba_threads"] <= max(r["cores"], r["dask_threads"])
               for r in rows)


def test_walltime_gives_a_staggered_lifetime_in_slurms_job_script():
    """A 1 h walltime: workers leave 6 min (10 %) + up to 3 min (5 %, the stagger) before it;
    the job script dask-jobqueue renders carries those options."""
    from dask_jobqueue import SLURMCluster

    assert walltime_seconds("01:00:00") == 3600 and walltime_seconds("90:00") == 5400
    lifetime, stagger = lifetime_margin(3600)
    assert (lifetime, stagger) == (3600 - 360 - 180, 180)
    kw = Jobqueue("slurm", cores=4, memory="8GB", walltime="01:00:00", account="proj",
                  queue="short").kwargs()
    with SLURMCluster(**kw) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -t 01:00:00" in script and "#SBATCH -A proj" in script
    assert "#SBATCH -p short" in script
    assert "--lifetime 3060s --lifetime-stagger 180s" in script


# a cluster dask-jobqueue refuses in its constructor is half built: its __del__ warns
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("args, fragment", [
    (["--cluster", "local", "--cores", "1", "--jobs", "1"], "--cluster local: dask-jobqueue "
                                                            "refused the options: You must "
                                                            "specify how much cores and memory"),
    (["--cluster", "slurm", "--walltime", "00:02:00"], "--walltime 120 s: too short"),
    (["--cluster", "slurm", "--walltime", "soon"], "--walltime: expected HH:MM:SS"),
    (["--cluster", "slurm", "--cores", "2"], "--cluster slurm: dask-jobqueue refused the "
                                             "options: You must specify how much cores and "
                                             "memory"),
    (["--cores", "4"], "--cores: an option of --cluster"),
    (["--cluster", "pbs", "--jobs", "2", "--adapt-max", "4"], "choose one"),
    (["--cluster", "pbs", "--scheduler", "tcp://127.0.0.1:8786"], "cannot be combined"),
])
def test_bad_jobqueue_options_one_line_rc_2_nothing_written(tmp_path, capsys, monkeypatch,
                                                           args, fragment):
    monkeypatch.setenv("PATH", f"{FAKE_BATCH}{os.pathsep}{os.environ['PATH']}")
    spec = qbstore.spec_file(tmp_path, SPEC, "jq")
    assert main(["run", str(spec), "--store", str(tmp_path / "s.zarr"), *args]) == 2
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith("qbfast: error: ") and fragment in line, err
    assert "Traceback" not in err and not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("kind, command", [("slurm", "sbatch"), ("pbs", "qsub")])
def test_batch_kind_without_its_submit_command_one_line_rc_2(tmp_path, capsys, monkeypatch,
                                                             kind, command):
    """No sbatch (qsub) on the PATH: every job submission would fail, each with a
    traceback, and the run wait --timeout for workers that never come. Refused at once."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    spec = qbstore.spec_file(tmp_path, SPEC, "jq")
    start = time.monotonic()
    assert main(["run", str(spec), "--store", str(tmp_path / "s.zarr"), "--cluster", kind,
                 "--cores", "1", "--memory", "1GB", "--timeout", "60"]) == 2
    assert time.monotonic() - start < 30  # not the --timeout wait for workers
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if "error" in ln.lower()] == [
        f"qbfast: error: --cluster {kind}: {command} not found on the PATH; run on a host of "
        f"the batch system (a login node), or --cluster local for a trial"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "jq.toml"]


# one task of 2e10 cavity evaluations ([chunks] forces it): 133 core-seconds at the planned
# rate of 1.5e8 per core-second, more than the 111 s a worker lives in a 3-minute job
LONG_TASK_SPEC = """
model = "cavity"
metrics = ["energy"]
dtype = "float32"
[params]
J2 = { start = -1.0, stop = 2.0, num = 200000 }
t = { start = 0.0, stop = 5.0, num = 100000 }
[chunks]
J2 = 200000
"""


def test_walltime_shorter_than_a_task_one_line_rc_2_naming_the_minimum(tmp_path, capsys):
    """Workers that leave before one task can finish would lose it every time: refused
    before anything is written or started, naming --walltime and the shortest that holds the
    task; that minimum is checked against the lifetime rule itself."""
    from qbfast.runner.spec import load_spec

    spec = qbstore.spec_file(tmp_path, LONG_TASK_SPEC, "long")
    seconds = load_spec(spec).plan().task_seconds
    assert lifetime_margin(180)[0] < seconds < lifetime_margin(240)[0]
    store = tmp_path / "s.zarr"
    assert main(["run", str(spec), "--store", str(store), "--cluster", "local", "--cores",
                 "1", "--memory", "1GB", "--walltime", "00:03:00"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"qbfast: error: --walltime 00:03:00: a task of this spec is planned at about "
        f"{seconds:.0f} s, longer than the 111 s a worker runs in such a job (it leaves "
        f"before the walltime); use at least --walltime 00:04:00, or smaller tasks "
        f"([chunks])"), err
    assert "Traceback" not in err and "starting on" not in err
    assert not store.exists() and list(tmp_path.iterdir()) == [spec]


@pytest.mark.parametrize("task_seconds", [0.5, 111.0, 111.5, 1000.0, 3000.0, 20000.0])
def test_minimum_walltime_is_the_shortest_whole_minute_that_holds_the_task(task_seconds):
    least = minimum_walltime(task_seconds)
    assert least % 60 == 0 and least >= 180
    assert lifetime_margin(least)[0] >= task_seconds
    if least > 180:  # a minute less would not hold it
        assert lifetime_margin(least - 60)[0] < task_seconds


def test_cluster_table_is_outside_the_specs_identity():
    """[cluster] says where a sweep runs, not what it computes: with any table, or none, the
    canonical form and the hash are the same (existing stores resume under a new table)."""
    from qbfast.runner.spec import parse_spec

    plain = parse_spec(SPEC)
    local = parse_spec(SPEC + CLUSTER_TABLE)
    slurm = parse_spec(SPEC + '[cluster]\nkind = "slurm"\nadapt_max = 8\naccount = "p"\n')
    assert local.cluster == {"kind": "local", "cores": 1, "processes": 1, "memory": "1GB",
                             "jobs": 2, "walltime": "00:10:00"}
    assert plain.cluster == {} and slurm.cluster["adapt_max"] == 8
    assert plain.canonical() == local.canonical() == slurm.canonical()
    assert plain.hash == local.hash == slurm.hash


@pytest.mark.parametrize("table, fragment", [
    ('kind = "slurm"\nnodes = 2', "cluster.nodes: unknown key; allowed: 'kind', 'cores'"),
    ('cores = 2', "cluster.kind: missing; allowed: 'slurm', 'pbs', 'local'"),
    ('kind = "sge"', "cluster.kind: unknown kind 'sge'; allowed: 'slurm', 'pbs', 'local'"),
    ('kind = "slurm"\ncores = 0', "cluster.cores: expected an integer >= 1, got 0"),
    ('kind = "slurm"\njobs = true', "cluster.jobs: expected an integer >= 1, got True"),
    ('kind = "slurm"\nmemory = 64', "cluster.memory: expected a non-empty string, got 64"),
    ('kind = "slurm"\njobs = 2\nadapt_max = 4', "cluster: jobs (fixed) and adapt_max"),
    ('kind = "slurm"\nwalltime = "00:02:00"', "cluster.walltime: 120 s: too short"),
    ('kind = "slurm"\nwalltime = "soon"', "cluster.walltime: expected HH:MM:SS"),
])
def test_bad_cluster_table_one_line_rc_2_nothing_written(tmp_path, capsys, table, fragment):
    spec = qbstore.spec_file(tmp_path, f"{SPEC}[cluster]\n{table}\n", "jq")
    assert main(["run", str(spec), "--store", str(tmp_path / "s.zarr")]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"qbfast: error: {spec}: {fragment}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jq.toml"]


# a cluster dask-jobqueue refuses in its constructor is half built: its __del__ warns
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("table, args, fragment", [
    # the table reaches dask-jobqueue (which wants memory too)
    ('kind = "slurm"\ncores = 2', [], "--cluster slurm: dask-jobqueue refused the options: "
                                       "You must specify how much cores and memory"),
    # a flag overrides the table's kind...
    ('kind = "slurm"\ncores = 2', ["--cluster", "pbs"], "--cluster pbs: dask-jobqueue "
                                                         "refused the options"),
    # ... and a job flag applies to the table's kind (no "add --cluster")
    ('kind = "slurm"\ncores = 1\nmemory = "1GB"', ["--walltime", "00:02:00"],
     "--walltime 120 s: too short"),
])
def test_cluster_table_under_the_flags(tmp_path, capsys, monkeypatch, table, args, fragment):
    monkeypatch.setenv("PATH", f"{FAKE_BATCH}{os.pathsep}{os.environ['PATH']}")
    spec = qbstore.spec_file(tmp_path, f"{SPEC}[cluster]\n{table}\n", "jq")
    assert main(["run", str(spec), "--store", str(tmp_path / "s.zarr"), *args]) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if "error" in ln.lower() or "Traceback" in ln]
    assert len(errors) == 1 and errors[0].startswith("qbfast: error: "), err
    assert fragment in errors[0], err
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.slow  # a subprocess
def test_cluster_without_dask_jobqueue_names_the_extra(tmp_path):
    """dask-jobqueue not importable (a package of that name that fails to import, first on
    the path, as an environment without it): one line naming the extra, rc 2."""
    shim = tmp_path / "shim" / "dask_jobqueue"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named dask_jobqueue')\n")
    spec = qbstore.spec_file(tmp_path, SPEC, "jq")
    r = subprocess.run([sys.executable, "-m", "qbfast", "run", str(spec), "--store",
                        str(tmp_path / "s.zarr"), "--cluster", "slurm", "--cores", "1",
                        "--memory", "1GB"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(
                           [str(tmp_path / "shim"), *sys.path])}, check=False)
    assert r.returncode == 2, r.stderr
    line = qbstore.one_error_line("\n".join(ln for ln in r.stderr.splitlines()
                                            if "error" in ln))
    assert "needs dask-jobqueue: pip install 'qbfast[cluster]'" in line
    assert not (tmp_path / "s.zarr").exists()
