"""Assemble docs/performance.md from the per-benchmark sections in docs/perf/*.md.

Each benchmark writes its own section file; run ``python bench/report.py`` after benchmarks.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = """# Performance

Figures from the benchmarks in `bench/`. Each benchmark prints its figures and ends with one line
`BENCH <name> <metric>=<value> target=<value> PASS|FAIL`. Unless a section says otherwise they were
measured on the development machine: a 2-core x86-64 VM with 24 GB RAM and no GPU, shared with
other work at the time (so ratios measured within one run are the reliable figures).
This file is assembled by `python bench/report.py` from `docs/perf/*.md`.
"""


def main() -> None:
    sections = sorted((ROOT / "docs" / "perf").glob("*.md"))
    parts = [HEADER]
    for path in sections:
        parts.append(path.read_text().strip() + "\n")
    (ROOT / "docs" / "performance.md").write_text("\n".join(parts))
    print(f"docs/performance.md: {len(sections)} sections")


if __name__ == "__main__":
    main()
