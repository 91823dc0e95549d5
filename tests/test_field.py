import pytest
import torch

import indiflow as ind
from indiflow._checks import check_representable_time
from problems import RecordingRegressor


def linear_regressor(x_t, t):
    return 0.5 * x_t + t[:, None]


def test_field_formula_scalar_and_per_sample_time():
    x = torch.randn(4, 3, dtype=torch.float64)
    field = ind.InDIField(linear_regressor)
    t = 0.4
    expected = (x - (0.5 * x + t)) / t
    torch.testing.assert_close(field(t, x), expected, rtol=0, atol=1e-15)
    tv = torch.tensor([0.1, 0.5, 0.9, 1.0], dtype=torch.float64)
    expected_v = (x - (0.5 * x + tv[:, None])) / tv[:, None]
    torch.testing.assert_close(field(tv, x), expected_v, rtol=0, atol=1e-15)
    torch.testing.assert_close(field.denoise(tv, x), 0.5 * x + tv[:, None])


def test_regressor_sees_batch_times_in_state_dtype():
    rec = RecordingRegressor(lambda x, t: x)
    x = torch.randn(5, 2, 3, dtype=torch.float32)
    ind.InDIField(rec).denoise(0.3, x)
    (t,) = rec.times
    assert t.shape == (5,) and t.dtype == torch.float32
    assert torch.all(t == torch.tensor(0.3, dtype=torch.float32))


def test_module_regressor():
    net = torch.nn.Linear(2, 2)
    field = ind.InDIField(lambda x, t: net(x))
    out = field(0.5, torch.randn(3, 2))
    assert out.shape == (3, 2)


@pytest.mark.parametrize("t", [0.0, -0.1, 1.0001, float("nan")])
def test_rejects_times_outside_unit_interval(t):
    field = ind.InDIField(linear_regressor)
    x = torch.randn(2, 2)
    with pytest.raises(ValueError, match=r"t in \(0, 1\]"):
        field(t, x)
    with pytest.raises(ValueError, match=r"t in \(0, 1\]"):
        field.denoise(torch.tensor([0.5, t]), x)


def test_rejects_non_callable_and_bad_outputs():
    with pytest.raises(TypeError, match="regressor must be callable"):
        ind.InDIField("net")
    field = ind.InDIField(lambda x, t: x[:, :1])
    with pytest.raises(ValueError, match="shaped like x_t"):
        field(0.5, torch.randn(3, 2))
    field = ind.InDIField(lambda x, t: 1.0)
    with pytest.raises(ValueError, match="shaped like x_t"):
        field.denoise(0.5, torch.randn(3, 2))


def test_rejects_badly_shaped_times():
    field = ind.InDIField(linear_regressor)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        field(torch.tensor([0.5, 0.5, 0.5]), torch.randn(2, 2))


def test_times_are_checked_in_the_state_dtype():
    field = ind.InDIField(lambda x, t: 0.5 * x)
    x16 = torch.ones(2, 2, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"t = 1e-08 rounds to 0 in torch\.float16"):
        field.denoise(1e-8, x16)
    with pytest.raises(ValueError, match=r"in torch\.float16, the dtype of the state"):
        field(torch.tensor([0.5, 1e-8], dtype=torch.float64), x16)
    assert torch.equal(field.denoise(1e-7, x16), 0.5 * x16)  # a float16 subnormal, still > 0
    assert torch.equal(field.denoise(1e-30, x16.float()), 0.5 * x16.float())


def test_representable_time_boundaries():
    # float16's smallest subnormal is 2^-24; half of it rounds (to even) to 0, and below too.
    check_representable_time("t", 2.0**-24, torch.float16)
    check_representable_time("t", 2.0**-25 * 1.01, torch.float16)  # rounds up to 2^-24
    for t in (2.0**-25, 2.0**-26):
        with pytest.raises(ValueError, match=r"rounds to 0 in torch\.float16"):
            check_representable_time("t", t, torch.float16)
    check_representable_time("t", 1e-40, torch.float32)  # a float32 subnormal
    with pytest.raises(ValueError, match=r"rounds to 0 in torch\.float32"):
        check_representable_time("t", 1e-46, torch.float32)
    check_representable_time("t", 1e-300, torch.float64)
