"""The documentation: it builds strictly, the user guide's examples run, its TOML specs parse,
every internal link (docs and README) resolves, and the generated parts (bench tables, CLI
help) come from their sources."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDE = sorted((DOCS / "guide").glob("*.md"))
NOT_RUN = "# not run by the docs tests:"  # first line of an example that needs a real cluster

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _hooks():
    spec = importlib.util.spec_from_file_location("qbfast_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (what mkdocs uses; GitHub agrees for these headings)."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())  # '#' lines inside code blocks are not headings
    return {slug(h) for _, h in HEADING.findall(text)}


def broken_links(path: Path) -> list[str]:
    """Relative links of a Markdown file whose target file or #anchor does not exist."""
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    problems = []
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    for target in LINK.findall(text) + IMAGE.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{where}: {target}: no file {file_part}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: {target}: no heading #{anchor}")
    return problems


# ---- the build -------------------------------------------------------------------------------

def test_mkdocs_build_strict(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    perf = (tmp_path / "site" / "performance" / "index.html").read_text()
    assert "<!-- bench:" not in perf and "python -m bench.kernels" in perf
    cli = (tmp_path / "site" / "guide" / "cli" / "index.html").read_text()
    assert "qbfast-help" not in cli and "--scheduler" in cli
    api = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "battery_hamiltonian" in api and "refine_with_kernel" in api and "ds.qb" in api


# ---- the user guide's examples -----------------------------------------------------------------

@pytest.mark.parametrize("page", GUIDE, ids=[p.stem for p in GUIDE])
def test_guide_python_examples_run(page, tmp_path, monkeypatch):
    """Each page's Python blocks run in order in one namespace, in an empty directory."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_guide_{page.stem}"}
    for i, code in enumerate(blocks(page, "python")):
        if code.startswith(NOT_RUN):
            continue
        exec(compile(code, f"{page.name}[python block {i}]", "exec"), namespace)


def test_guide_examples_exist_and_skips_say_why():
    runnable = {p.name: [c for c in blocks(p, "python") if not c.startswith(NOT_RUN)]
                for p in GUIDE}
    assert runnable["sweep.md"] and runnable["analysis.md"]
    skipped = [c for p in GUIDE for c in blocks(p, "python") if c.startswith(NOT_RUN)]
    assert all("needs" in c.splitlines()[0] for c in skipped)
    assert len(skipped) <= 2  # only the examples that need a real cluster


@pytest.mark.parametrize("page", GUIDE, ids=[p.stem for p in GUIDE])
def test_guide_toml_specs_parse(page):
    from qbfast.runner.spec import parse_spec

    for i, text in enumerate(blocks(page, "toml")):
        spec = parse_spec(text, name=f"{page.stem}_{i}")
        assert spec.dims[-1] == "t"


def test_guide_shell_commands_exist():
    from qbfast.cli import _parser

    commands = set(_parser()._subparsers._group_actions[0].choices)
    pages = GUIDE + [ROOT / "README.md", DOCS / "index.md"]
    used = {m for p in pages for body in blocks(p, "bash")
            for m in re.findall(r"(?:^|&&\s*|\s)qbfast\s+([a-z]+)", body, re.MULTILINE)}
    assert used and used <= commands, used - commands


# ---- links -----------------------------------------------------------------------------------

def test_internal_links_resolve():
    pages = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md", ROOT / "CONTRIBUTING.md",
                                          ROOT / "CHANGELOG.md"]
    problems = [p for page in pages for p in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Some `code` part\n\n"
                                   "[ok](a.md#some-code-part) [self](#title)\n")
    assert broken_links(tmp_path / "a.md") == []
    (tmp_path / "b.md").write_text("[x](a.md#missing) [y](nowhere.md) ![z](pic.png)\n"
                                   "```\n[not](a link.md)\n```\n")
    assert len(broken_links(tmp_path / "b.md")) == 3


# ---- generated parts -----------------------------------------------------------------------

def test_bench_tables_render_the_json_figures(tmp_path, monkeypatch):
    hooks = _hooks()
    doc = {"bench": "kernels", "command": "python -m bench.kernels", "date": "2026-01-01",
           "machine": {"cores": 2, "cpu_model": "CPU X", "load_average_1_5_15_min": [1, 2, 3]},
           "versions": {"qbfast": "9.9"}, "figures": [
               {"case": "cavity", "qbfast": 1.5e8, "numpy": 6e6, "qutip": 1.5e5},
               {"case": "field-full", "qbfast": 6.3e6, "route": "fused"}]}
    (tmp_path / "kernels.json").write_text(json.dumps(doc))
    monkeypatch.setattr(hooks, "RESULTS", tmp_path)
    md = hooks.on_page_markdown("x\n<!-- bench: kernels -->\ny", None, None, None)
    assert "150 M/s" in md and "6 M/s" in md and "25x" in md and "1,000x" in md
    assert "6.3 M/s" in md and "fused" in md  # unknown keys still shown
    assert "CPU X" in md and "qbfast 9.9" in md and "1.00/2.00/3.00" in md
    assert "<!--" not in md


def test_missing_bench_results_warn(tmp_path, monkeypatch, caplog):
    hooks = _hooks()
    monkeypatch.setattr(hooks, "RESULTS", tmp_path)
    md = hooks.render_bench("kernels")
    assert "missing" in md and any("bench.kernels" in r.getMessage() for r in caplog.records)


def test_cli_help_is_the_parsers():
    hooks = _hooks()
    text = hooks.command_help("run")
    assert text.startswith("```text\nusage: qbfast run") and "--overwrite" in text


def test_committed_bench_results_have_provenance():
    files = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert {f.stem for f in files} >= {"kernels", "limits", "sweeps", "fastmath"}
    for f in files:
        doc = json.loads(f.read_text())
        bench = doc["bench"]  # the file is <bench>.json or <bench>-<variant>.json
        assert f.stem == bench or f.stem.startswith(f"{bench}-")
        assert doc["command"].startswith(f"python -m bench.{bench}")
        assert doc["machine"]["cores"] >= 1 and doc["machine"]["cpu_model"]
        assert {"qbfast", "numba", "numpy", "python"} <= set(doc["versions"])
        assert doc["figures"] and doc["date"]


def test_pages_of_other_branches_join_the_nav_once_they_exist(tmp_path):
    hooks = _hooks()
    nav = [{"Home": "index.md"}, {"Physics": "physics.md"}, {"Performance": "performance.md"}]
    config = {"nav": [dict(x) for x in nav], "docs_dir": str(tmp_path)}
    assert hooks.on_config(config)["nav"] == nav  # neither file exists: nav unchanged
    (tmp_path / "chargers.md").write_text("# Chargers\n")
    got = hooks.on_config({"nav": [dict(x) for x in nav], "docs_dir": str(tmp_path)})["nav"]
    assert [next(iter(x.values())) for x in got] == ["index.md", "physics.md", "chargers.md",
                                                     "performance.md"]
    listed = nav[:2] + [{"Chargers": "chargers.md"}] + nav[2:]
    again = hooks.on_config({"nav": [dict(x) for x in listed], "docs_dir": str(tmp_path)})
    assert again["nav"] == listed  # already in the nav: not added twice


def test_parameter_and_metric_tables_list_every_entry():
    from qbfast.params import METRIC_LIST, MODELS

    hooks = _hooks()
    models = hooks.on_page_markdown("<!-- qbfast-table: models -->", None, None, None)
    for model in MODELS.values():
        for p in model.parameters:
            assert f"| {model.name} | `{p.name}` | {p.default:g} | {p.units} |" in models
    metrics = hooks.params_table("metrics")
    assert [line.split("|")[1].strip() for line in metrics.splitlines()[2:]] == [
        f"`{m.name}`" for m in METRIC_LIST]


def test_readme_starts_with_the_two_commands():
    """The main job and the tests, exactly as CI and the issue state them."""
    first = blocks(ROOT / "README.md", "bash")[0]
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert first.splitlines() == [
        venv + "pip install -e . && qbfast run sweeps/default.toml",
        venv + "pip install -e '.[test]' && python -m pytest",
    ]
