"""The original release's calls work here: arrays that ``torch.as_tensor`` takes are accepted
wherever a sample tensor is, with the values the tensor gives."""

import numpy as np
import pytest
import torch

import lejepa_viz as lejepa
from lejepa_viz.toys.simulate import STATISTICS


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_every_statistic_takes_a_numpy_array(name):
    x = np.random.default_rng(0).standard_normal((200, 3))
    statistic = STATISTICS[name]
    expected = statistic(torch.from_numpy(x))
    torch.testing.assert_close(statistic(x), expected)  # float64 stays float64
    torch.testing.assert_close(
        statistic(x.astype(np.float32)), statistic(torch.from_numpy(x).float())
    )


def test_slicing_and_sigreg_take_arrays_and_lists():
    x = np.random.default_rng(1).standard_normal((256, 8)).astype(np.float32)
    test = lejepa.multivariate.SlicingUnivariateTest(lejepa.univariate.EppsPulley(), 64)
    torch.testing.assert_close(test(x, step=0), test(torch.from_numpy(x), step=0))
    sigreg = lejepa.SIGReg(num_slices=64)
    assert sigreg(x.tolist(), step=0) == pytest.approx(sigreg(torch.from_numpy(x), step=0).item())
    with pytest.raises(ValueError, match="torch.as_tensor takes"):
        sigreg({"not": "an array"})


def test_hz_compute_bandwidth_is_the_henze_zirkler_rule():
    from lejepa_viz.multivariate import HZ

    for n, d in ((100, 5), (50, 3), (4096, 128)):
        closed = (1 / 2**0.5) * ((2 * d + 1) * n / 4) ** (1 / (d + 4))
        assert HZ.compute_bandwidth(n_samples=n, n_dims=d) == pytest.approx(closed, rel=1e-12)
    assert HZ.compute_bandwidth(500, 3) > HZ.compute_bandwidth(50, 3)  # grows with N
    with pytest.raises(ValueError, match="n must"):
        HZ.compute_bandwidth(0, 3)
