"""Packaging promises: pins, console script, and a coordinator-safe import of mlpsuite."""

import os
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

ROOT = Path(__file__).resolve().parents[1]


def _installed_requirements():
    """What the installed distribution asks for (pyproject.toml as pip saw it)."""
    required = requires("mlpsuite")
    assert required is not None, "no requirements in mlpsuite's metadata"
    return [r.replace(" ", "") for r in required]


def test_torch_is_pinned_exactly_and_tensorflow_is_the_cpu_wheel_on_linux():
    deps = _installed_requirements()
    assert "torch==2.13.0" in deps
    assert any(d.startswith("tensorflow-cpu") and "x86_64" in d for d in deps)


def test_dev_extra_brings_pytest():
    dev = [d for d in _installed_requirements() if 'extra=="dev"' in d]
    assert any(d.startswith("pytest") for d in dev)


def _run(code):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_coordinator_side_loads_no_framework():
    modules = (
        "mlpsuite, mlpsuite.data, mlpsuite.cli, mlpsuite.registry, mlpsuite.initializers, "
        "mlpsuite.config, mlpsuite.runner, mlpsuite.tracking, mlpsuite.present.terminal, "
        "mlpsuite.executors.local, mlpsuite.trial.backends, mlpsuite.results"
    )
    done = _run(
        f"import sys, {modules};"
        "print(sorted(m for m in ('keras','tensorflow','torch','jax') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_console_script_and_python_m_both_answer():
    script = Path(sys.executable).with_name("mlpsuite")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: mlpsuite" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "mlpsuite.cli", "datasets"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "friedman1" in done.stdout and "regression" in done.stdout


def test_mlruns_holds_only_its_gitignore_and_readme():
    tracked = subprocess.run(
        ["git", "ls-files", "mlruns"], cwd=ROOT, capture_output=True, text=True
    )
    if tracked.returncode == 0 and tracked.stdout.strip():
        assert set(tracked.stdout.split()) <= {"mlruns/.gitignore", "mlruns/README.md"}
    ignore = (ROOT / "mlruns" / ".gitignore").read_text().split()
    assert ignore[0] == "*"


HEAVY = ("sklearn", "pandas", "scipy", "mlflow", "keras", "matplotlib")


@pytest.mark.parametrize(
    "argv, code",
    [(["--help"], 0), (["--version"], 0), (["run", "bad.yaml"], 2)],
    ids=["help", "version", "config error"],
)
def test_the_cli_answers_without_importing_heavy_libraries(tmp_path, argv, code):
    """What makes --help and a config error answer in a blink (benchmarks/startup.py)."""
    (tmp_path / "bad.yaml").write_text("name: x\ndataset: {name: iris}\ntraining: {epochs: 0}\n")
    script = (
        "import sys\nfrom mlpsuite import cli\ntry:\n    code = cli.main(sys.argv[1:])\n"
        "except SystemExit as stop:\n    code = stop.code\n"
        f"print({HEAVY!r} and sorted(m for m in {HEAVY!r} if m in sys.modules), code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"},
    )
    assert done.stdout.strip().splitlines()[-1] == f"[] {code}", done.stdout + done.stderr
