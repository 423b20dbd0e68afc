"""The one radial power spectrum: closed forms of its two normalisations, Parseval, errors."""

import numpy as np
import pytest
import torch

from scalelab._errors import ScalelabError
from scalelab.data import radial_power_spectrum


def _cosine(height, width, ky, kx, amplitude):
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return amplitude * np.cos(2 * np.pi * (ky * y / height + kx * x / width) + 0.3)


@pytest.mark.parametrize("shape", [(16, 16), (12, 20)])
def test_a_cosine_puts_its_variance_in_one_ring(shape):
    """A² cos(2π k·x) has variance A²/2, all of it at |k| = 5 (3-4-5 wavevector)."""
    field = torch.from_numpy(_cosine(*shape, 3, 4, 1.5))
    k, spectrum = radial_power_spectrum(field, "variance")
    expected = np.zeros(min(shape) // 2)
    expected[4] = 1.5**2 / 2
    np.testing.assert_array_equal(k.numpy(), np.arange(1, min(shape) // 2 + 1))
    np.testing.assert_allclose(spectrum.numpy(), expected, atol=1e-12)
    # ring_mean: |F̂|² = (A HW/2)² at ±k, two of the ring's wavevectors
    _, ring_mean = radial_power_spectrum(field, "ring_mean")
    height, width = shape
    ring = np.rint(np.hypot(*np.meshgrid(np.fft.fftfreq(height) * height,
                                         np.fft.fftfreq(width) * width, indexing="ij")))
    count = (ring == 5).sum()
    assert float(ring_mean[4]) == pytest.approx(2 * (1.5 * height * width / 2) ** 2 / count)


def test_variance_normalisation_sums_to_the_variance():
    """Parseval: for a field without power beyond ring K the rings add up to np.var."""
    rng = np.random.default_rng(0)
    low = np.fft.ifft2(np.fft.fft2(rng.normal(size=(3, 32, 32)))
                       * (np.hypot(*np.meshgrid(np.fft.fftfreq(32) * 32, np.fft.fftfreq(32) * 32,
                                                indexing="ij")) < 12)).real
    _, per_field = radial_power_spectrum(torch.from_numpy(low), average=False)
    np.testing.assert_allclose(per_field.sum(-1).numpy(), low.var(axis=(-2, -1)), rtol=1e-12)
    _, mean = radial_power_spectrum(torch.from_numpy(low))
    np.testing.assert_allclose(mean.numpy(), per_field.mean(0).numpy(), rtol=1e-12)


def test_gradients_flow():
    field = torch.randn(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda f: radial_power_spectrum(f, "variance", average=False)[1], (field,))


def test_bad_input_is_one_sentence():
    with pytest.raises(ScalelabError, match="valid choices are variance, ring_mean"):
        radial_power_spectrum(torch.zeros(4, 4), "density")
    with pytest.raises(ScalelabError, match=r"\(\.\.\., H, W\)"):
        radial_power_spectrum(torch.zeros(4))
