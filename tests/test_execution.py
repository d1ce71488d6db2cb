"""Keras' speed switches as grid settings: `training.steps_per_execution` (the same numbers,
so in no trial key) and `training.jit_compile` (XLA, torch.compile: in the key)."""

import contextlib

import numpy as np
import pytest

from mlpsuite.config import GridSpec, expand
from mlpsuite.errors import ConfigError
from mlpsuite.grid_checks import checked_config

TIMES = ("epoch_time_s", "train_time_s", "diagnostics_time_s")


def _config(**training) -> dict:
    return {
        "name": "switches",
        "dataset": {"name": "digits", "val_size": 0.15},
        "model": {"hidden": [24, 12], "activation": "relu", "dropout": 0.1},
        "optimizer": {"name": "adam", "learning_rate": 0.03},
        "diagnostics": True,
        "training": {
            "epochs": 6,
            "batch_size": 50,
            **training,
            "early_stopping": {"monitor": "val_loss", "patience": 1, "restore_best_weights": True},
        },
        "backends": ["jax"],
        "seeds": [0, 3],
    }


def _trials(**training):
    return expand(GridSpec.model_validate(_config(**training)))


def _run(trials):
    from mlpsuite.trial.training import TrialRunner

    runner, results, events = TrialRunner(), [], []
    for trial in trials:
        results.append(runner.run(trial, events.append))
    epochs = [
        {name: value for name, value in event["metrics"].items() if name not in TIMES}
        for event in events
        if event["event"] == "epoch"
    ]
    return results, epochs


@pytest.mark.backend
def test_one_epoch_per_execution_gives_bit_identical_curves(backend):
    """auto (an epoch's steps per call on TensorFlow and JAX) against 1: every loss, accuracy,
    diagnostic and test score equal to the last bit, early stopping and restored weights too."""
    stepwise, stepwise_epochs = _run(_trials(steps_per_execution=1))
    fused, fused_epochs = _run(_trials())
    steps = stepwise[0].steps_per_epoch
    assert steps > 1
    assert [r.steps_per_execution for r in stepwise] == [1, 1]
    assert [r.steps_per_execution for r in fused] == [1 if backend == "torch" else steps] * 2
    assert fused_epochs == stepwise_epochs  # per epoch, the diagnostics included
    assert any(name.startswith("grad_norm/") for name in fused_epochs[0])
    for one, auto in zip(stepwise, fused, strict=True):
        assert auto.status == one.status == "FINISHED"
        assert {k: v for k, v in auto.history.items() if k not in TIMES} == {
            k: v for k, v in one.history.items() if k not in TIMES
        }
        assert (auto.stopped_epoch, auto.tested_epoch, auto.test) == (
            one.stopped_epoch,
            one.tested_epoch,
            one.test,
        )
    # The seeds' batch orders differ (the curves are not equal by accident), and early stopping
    # stopped at least one of them with its best weights restored.
    assert fused[0].history["loss"] != fused[1].history["loss"]
    assert any(
        r.stopped_epoch is not None and r.tested_epoch < len(r.history["loss"]) for r in fused
    )


@pytest.mark.backend
def test_jit_compile_is_the_backends_compiler(backend):
    """true: XLA on TensorFlow and JAX, torch.compile on PyTorch; false: each backend's
    uncompiled path. The same losses up to float rounding, and the setting as Keras resolved it."""
    trials = {
        jit: expand(
            GridSpec.model_validate(
                {
                    **_config(jit_compile=jit, batch_size=128),
                    "dataset": {"name": "iris", "val_size": 0.2},
                    "diagnostics": False,
                    "model": {"hidden": [8], "activation": "elu"},
                    "seeds": [0],
                }
            )
        )[0]
        for jit in (False, True, "auto")
    }
    assert len({trial.key for trial in trials.values()}) == 3
    with _as_in_a_worker(backend):
        results = {jit: _run([trial])[0][0] for jit, trial in trials.items()}
    assert results[False].jit_compile is False and results[True].jit_compile is True
    assert results["auto"].jit_compile is (backend == "jax")  # Keras' default on a CPU
    np.testing.assert_allclose(
        results[True].history["loss"], results[False].history["loss"], rtol=2e-5
    )
    assert results[True].eval_compile_s >= 0 and results[True].peak_rss_mb > 50


@contextlib.contextmanager
def _as_in_a_worker(backend: str):
    """TensorFlow's op determinism on, as `backends.configure` sets it in every worker (Keras
    would turn XLA off under it unless the suite lets the model compile with it)."""
    if backend != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    config.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            config.disable_op_determinism()


@pytest.mark.check
def test_steps_per_execution_is_in_no_trial_key_and_jit_compile_is():
    """auto is how every trial ran before: its key is unchanged; an explicit setting is not."""
    plain = _trials()
    assert [t.key for t in _trials(steps_per_execution=1)] == [t.key for t in plain]
    assert [t.key for t in _trials(jit_compile="auto")] == [t.key for t in plain]
    assert not {t.key for t in _trials(jit_compile=True)} & {t.key for t in plain}
    assert {t.program_key for t in _trials(steps_per_execution=1)} != {t.program_key for t in plain}


@pytest.mark.check
def test_jit_compile_as_a_grid_axis():
    config = {
        **_config(),
        "backends": ["tensorflow", "jax"],
        "grid": {"training.jit_compile": [False, True]},
    }
    trials = expand(GridSpec.model_validate(config))
    assert len({trial.key for trial in trials}) == len(trials) == 8
    assert {trial.cell_label() for trial in trials} == {"jit_compile=False", "jit_compile=True"}


@pytest.mark.parametrize(
    ("training", "grid", "backends", "expected"),
    [
        (
            {"steps_per_execution": 4},
            {},
            ["torch", "jax"],
            "training.steps_per_execution: PyTorch runs one step per execution, got 4; "
            "allowed: auto",
        ),
        (
            {},
            {"training.steps_per_execution": [1, "auto"]},
            ["jax"],
            "grid.training.steps_per_execution: it changes no result",
        ),
        (
            {"vectorize": "seeds", "jit_compile": False},
            {},
            ["jax"],
            "training.jit_compile: false contradicts training.vectorize: seeds",
        ),
        (
            {"steps_per_execution": 0},
            {},
            ["jax"],
            "training.steps_per_execution: got 0; allowed: auto or a whole",
        ),
        (
            {"jit_compile": "yes"},
            {},
            ["jax"],
            "training.jit_compile: got 'yes'; allowed: auto, true or false",
        ),
    ],
)
@pytest.mark.check
def test_speed_switch_mistakes_are_one_line(training, grid, backends, expected, tmp_path):
    config = {**_config(**training), "grid": grid, "backends": backends}
    config["training"].pop("early_stopping")
    with pytest.raises(ConfigError) as error:
        checked_config(config)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("<config dict>: ")


@pytest.mark.check
def test_torch_compile_without_a_compiler_is_a_config_error(monkeypatch):
    config = {**_config(jit_compile=True), "backends": ["torch"]}
    checked_config(config)  # g++ is on this machine
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(
        ConfigError, match="'no-such-compiler-xyz' .* is not on PATH; allowed: install one"
    ):
        checked_config(config)
    checked_config({**config, "backends": ["jax", "tensorflow"]})  # XLA needs no compiler of ours


@pytest.mark.check
def test_torch_compile_keeps_its_cache_with_jaxs(monkeypatch, tmp_path):
    from mlpsuite.executors.wire import thread_environment

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("MLPSUITE_CACHE_DIR", str(tmp_path))
    assert thread_environment(1)["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "torch")
    monkeypatch.setenv("MLPSUITE_CACHE_DIR", "none")
    assert "TORCHINDUCTOR_CACHE_DIR" not in thread_environment(1)
