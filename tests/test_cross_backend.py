"""Files saved on one backend load on the others; build_mlp weights are bit-identical."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mlpsuite.initializers import INITIALIZERS, draw_kernel
from tests.backend_probe import BACKENDS, weights_hash

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _probe_all_backends(mode, directory):
    """One probe process per backend, side by side; returns each one's report."""
    processes = {
        backend: subprocess.Popen(
            [sys.executable, "-m", "tests.backend_probe", mode, str(directory)], cwd=ROOT,
            env={**os.environ, "KERAS_BACKEND": backend},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for backend in BACKENDS
    }
    reports = []
    for backend, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{backend} probe failed:\n{stderr[-3000:]}"
        reports.append(json.loads((directory / f"{backend}.json").read_text()))
    return reports


@pytest.fixture(scope="module")
def probe_reports(tmp_path_factory):
    """Round 1: each backend saves its file. Round 2: each loads the other two."""
    directory = tmp_path_factory.mktemp("cross-backend")
    return _probe_all_backends("save", directory) + _probe_all_backends("load", directory)


def _numpy_mlp_hash(initializer):
    """The weights build_mlp(6, 3, hidden=(16, 8), activation='prelu', seed=11) must have."""
    rng = np.random.default_rng(11)
    arrays = []
    for fan_in, fan_out in ((6, 16), (16, 8), (8, 3)):
        arrays += [draw_kernel(initializer, fan_in, fan_out, rng), np.zeros(fan_out, "float32")]
        if fan_out != 3:
            arrays.append(np.full(fan_out, 0.25, "float32"))  # PReLU slopes
    return weights_hash(arrays)


def test_build_mlp_weights_are_bit_identical_on_every_backend(probe_reports):
    for initializer in INITIALIZERS:
        hashes = {report["backend"]: report["hashes"][initializer] for report in probe_reports}
        assert set(hashes) == set(BACKENDS)
        assert set(hashes.values()) == {_numpy_mlp_hash(initializer)}, initializer


def test_every_backend_loads_every_other_backends_file(probe_reports):
    loaded_pairs = {(report["backend"], other): diff
                    for report in probe_reports for other, diff in report["loaded"].items()}
    expected = {(a, b) for a in BACKENDS for b in BACKENDS if a != b}
    assert set(loaded_pairs) == expected
    for (loader, saver), diff in loaded_pairs.items():
        assert diff < 1e-5, f"saved on {saver}, loaded on {loader}: outputs differ by {diff}"
