"""SIGReg's gradient in two gloo DDP processes: exactly one process's on the concatenated
batch with our autograd all-reduce, exactly half of it with torch's plain all-reduce (the
bug lightly fixed in #1923); the forward value is right either way."""

import pytest

from lejepa_viz.toys.ddp import ddp_gradients


@pytest.mark.parametrize("autograd, ratio", [(True, 1.0), (False, 0.5)])
def test_ddp_gradient_is_exact_or_off_by_the_world_size(autograd, ratio):
    found = ddp_gradients(world=2, autograd=autograd)
    one, ddp = found["loss"]
    assert ddp == pytest.approx(one, rel=1e-5)  # the value is the global batch's both ways
    assert found["grad_ratio"] == pytest.approx(ratio, rel=1e-5)
    assert found["grad_error"] < 1e-5 and found["ranks_agree"]
