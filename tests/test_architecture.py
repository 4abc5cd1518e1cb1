"""The structure the code promises (docs/architecture.md), checked on every run: the import
contracts in .importlinter, one registry of job kinds checked at start-up, and the committed map
bundle being what frontend/map builds."""
from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from archive.models import Job
from workers.jobs import registry

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """lint-imports: museum -> explorer -> workers -> archive, the kernel imports no stage, no cycles."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") >= 4, result.stdout[-2000:]


def test_every_job_kind_has_exactly_one_stage():
    assert registry.problems() == []
    assert set(registry.kinds()) == set(Job.Kind.values)
    for kind, stage in registry.stages().items():
        assert stage.queue in registry.QUEUES, kind
    assert "score_label" not in registry.launchable() and "layout" in registry.launchable()


def test_the_system_check_fails_on_a_kind_without_a_stage(monkeypatch):
    monkeypatch.setattr(registry, "STAGE_MODULES", [m for m in registry.STAGE_MODULES if m != "workers.faces"])
    with pytest.raises(SystemCheckError, match="job kind 'faces' has no stage"):
        call_command("check")


def test_the_system_check_fails_on_two_stages_for_one_kind_and_an_unknown_queue():
    problems = registry.problems(registry.STAGE_MODULES + ["tests.workers.misregistered_stage"])
    assert any("'embed' is claimed by two stages" in p for p in problems), problems
    alone = registry.problems(["tests.workers.misregistered_stage"], kinds_declared=["embed"])
    assert any("unknown queue 'no-such-queue'" in p for p in alone), alone
    assert registry.problems(["no.such.module"], kinds_declared=[])[0].startswith("stage module no.such.module cannot be loaded")


def test_the_committed_map_bundle_is_what_frontend_map_builds(tmp_path):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node or npm is not installed: the map bundle cannot be rebuilt here")
    work = tmp_path / "map"
    shutil.copytree(ROOT / "frontend" / "map", work, ignore=shutil.ignore_patterns("node_modules"))
    installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=work, capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        pytest.skip(f"npm ci could not install the map's packages (registry unreachable?): {installed.stderr[-500:]}")
    out = tmp_path / "out"
    built = subprocess.run([node, "build.mjs"], cwd=work, capture_output=True, text=True, timeout=600,
                           env={"PATH": str(Path(node).parent), "MAP_OUT": str(out)})
    assert built.returncode == 0, built.stderr[-2000:]
    committed = ROOT / "static" / "map"
    names = ["map.js", "map.css", "THIRD_PARTY_LICENSES"]
    _, mismatch, errors = filecmp.cmpfiles(committed, out, names, shallow=False)
    assert not mismatch and not errors, f"static/map differs from a fresh build ({mismatch + errors}): run `npm ci && npm run build` in frontend/map"
