"""The Procfile of docs/deploy.md runs real commands: ``./run serve`` and ``./run worker`` with
queues that exist, every queue has a process, and ``./run`` knows each subcommand it uses."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from workers.jobs.registry import QUEUES

ROOT = Path(__file__).resolve().parents[2]


def processes() -> dict[str, list[str]]:
    found = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            found[name.strip()] = shlex.split(command)
    return found


def run_subcommands() -> set[str]:
    """The subcommands of the ./run script's case statement."""
    return set(re.findall(r"^  ([a-z]+)\)$", (ROOT / "run").read_text(), flags=re.M))


def test_every_process_is_a_real_command_and_every_queue_is_consumed():
    procs = processes()
    assert procs["web"] == ["./run", "serve"]
    consumed = []
    for name, argv in procs.items():
        assert argv[0] == "./run" and argv[1] in run_subcommands(), f"{name}: {argv}"
        if argv[1] == "worker":
            queues = argv[argv.index("-Q") + 1].split(",")
            assert set(queues) <= set(QUEUES), f"{name}: unknown queue in {queues}"
            assert int(argv[argv.index("-c") + 1]) >= 1
            consumed += queues
    assert sorted(consumed) == sorted(QUEUES), "each queue has exactly one process type"


def test_the_deploy_doc_shows_the_procfile():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for name, argv in processes().items():
        assert f"{name}: {' '.join(argv)}" in doc, f"docs/deploy.md does not show the {name} process"
