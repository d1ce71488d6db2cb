"""MkDocs hooks (mkdocs.yml `hooks:`): pages generated from the code and from measurements.

Before each build the config and CLI reference are written from the code itself
(docs/tools/reference.py) and the tutorial page from the executed lecture notebook
(docs/tools/tutorial.py); while a page is read, each `<!-- benchmark: NAME -->` line on it
becomes the table `benchmarks/NAME.py` last wrote to `benchmarks/results/NAME.md`, so the
Performance page (and a guide that shows a measurement) copies no number by hand."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tutorial  # noqa: E402
from reference import write_pages  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = re.compile(r"^<!-- benchmark: ([a-z_]+) -->$", re.M)


def on_pre_build(config, **kwargs) -> None:
    """Regenerate the reference and the tutorial page before MkDocs reads the docs folder."""
    write_pages(Path(config["docs_dir"]))
    tutorial.write_page(Path(config["docs_dir"]))


def on_page_markdown(markdown: str, **kwargs) -> str:
    """Put each benchmark's own results table where a page names it."""
    return BENCHMARK.sub(lambda match: benchmark_table(match.group(1)), markdown)


def benchmark_table(name: str) -> str:
    """`benchmarks/results/NAME.md` as the script wrote it, its own title dropped (the page
    has one). A missing file fails the build: a page must not name a benchmark nobody ran."""
    path = ROOT / "benchmarks" / "results" / f"{name}.md"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no results for the benchmark a page names")
    text = path.read_text(encoding="utf-8")
    return re.sub(r"^# .*\n+", "", text).strip() + f"\n\n*From `benchmarks/results/{name}.md`.*\n"
