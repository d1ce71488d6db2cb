"""NumPy initializers: the distributions Keras' VarianceScaling intends, drawn reproducibly."""

import numpy as np
import pytest
from scipy import stats

from mlpsuite.initializers import INITIALIZERS, draw_kernel, target_variance

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

FAN_IN, FAN_OUT = 300, 200


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_sample_variance_matches_the_intended_variance(name):
    drawn = draw_kernel(name, FAN_IN, FAN_OUT, np.random.default_rng(0))
    assert drawn.shape == (FAN_IN, FAN_OUT) and drawn.dtype == np.float32
    kernel = drawn.astype(np.float64)
    intended = target_variance(name, FAN_IN, FAN_OUT)
    # 60,000 draws: the sample variance is within ~1.5% of the truth with overwhelming odds.
    assert kernel.var() == pytest.approx(intended, rel=0.03)
    assert abs(kernel.mean()) < 4 * np.sqrt(intended / kernel.size)


@pytest.mark.parametrize(
    "name, fan",
    [("glorot_uniform", (FAN_IN + FAN_OUT) / 2), ("he_uniform", FAN_IN), ("lecun_uniform", FAN_IN)],
)
def test_uniform_limits_follow_the_keras_formula(name, fan):
    scale = 2.0 if name.startswith("he") else 1.0
    limit = np.sqrt(3.0 * scale / fan)
    kernel = draw_kernel(name, FAN_IN, FAN_OUT, np.random.default_rng(1))
    assert kernel.min() >= -limit and kernel.max() <= limit
    assert kernel.max() > 0.99 * limit and kernel.min() < -0.99 * limit
    # Kolmogorov-Smirnov against U(-limit, limit).
    assert stats.kstest(kernel.ravel(), stats.uniform(-limit, 2 * limit).cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", ["glorot_normal", "he_normal", "lecun_normal"])
def test_normal_variants_are_truncated_at_two_standard_deviations(name):
    kernel = draw_kernel(name, FAN_IN, FAN_OUT, np.random.default_rng(2)).astype(np.float64)
    stddev = np.sqrt(target_variance(name, FAN_IN, FAN_OUT)) / 0.87962566103423978
    assert np.abs(kernel).max() <= 2 * stddev
    assert np.abs(kernel).max() > 1.95 * stddev
    truncated = stats.truncnorm(-2, 2, scale=stddev)
    assert stats.kstest(kernel.ravel(), truncated.cdf).pvalue > 1e-3


def test_target_variances_are_the_textbook_ones():
    assert target_variance("glorot_uniform", 10, 30) == pytest.approx(1 / 20)
    assert target_variance("he_normal", 10, 30) == pytest.approx(2 / 10)
    assert target_variance("lecun_normal", 10, 30) == pytest.approx(1 / 10)


def test_same_seed_same_kernel_other_seed_other_kernel():
    draw = lambda seed: draw_kernel("he_normal", 5, 4, np.random.default_rng(seed))  # noqa: E731
    np.testing.assert_array_equal(draw(3), draw(3))
    assert not np.array_equal(draw(3), draw(4))


def test_unknown_initializer_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown initializer 'xavier'.*glorot_uniform"):
        draw_kernel("xavier", 2, 2, np.random.default_rng(0))
