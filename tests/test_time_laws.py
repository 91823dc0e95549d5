"""Time laws: each matches its law (KS tests), stays in (0, 1], is reproducible, validates input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import indiflow as ind

N = 20_000


def _draw(law: ind.TimeLaw, seed: int = 0, n: int = N) -> torch.Tensor:
    return law.sample(n, torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_uniform_matches_its_law() -> None:
    t = _draw(ind.UniformTime()).numpy()
    assert stats.kstest(t, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("k", [0.0, 0.5, 2.0, 5.0])
def test_power_matches_its_law(k: float) -> None:
    t = _draw(ind.PowerTime(k)).numpy()
    # CDF of the density (k + 1) t^k on (0, 1] is t^(k + 1).
    assert stats.kstest(t, lambda u: u ** (k + 1)).pvalue > 1e-3


def test_power_is_not_uniform() -> None:
    """The KS test above has power: a k = 2 law is told apart from the uniform one."""
    t = _draw(ind.PowerTime(2.0)).numpy()
    assert stats.kstest(t, "uniform").pvalue < 1e-6


@pytest.mark.parametrize("a", [0.5, 1.0, 3.0])
def test_mixture_matches_its_law(a: float) -> None:
    law = ind.MixtureTime(a)
    t = _draw(law)
    at_one = t == 1.0
    # Point mass: binomial count with p = a / (1 + a); the uniform part never hits 1 exactly
    # except with probability ~2^-53 per draw.
    p = a / (1 + a)
    assert law.point_mass == pytest.approx(p)
    assert stats.binomtest(int(at_one.sum()), N, p).pvalue > 1e-3
    assert stats.kstest(t[~at_one].numpy(), "uniform").pvalue > 1e-3


@given(
    law=st.one_of(
        st.just(ind.UniformTime()),
        st.floats(0.01, 10).map(ind.MixtureTime),
        st.floats(0, 20).map(ind.PowerTime),
    ),
    n=st.integers(0, 200),
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
)
@settings(max_examples=40, deadline=None)
def test_draws_lie_in_half_open_interval(law: ind.TimeLaw, n: int, dtype: torch.dtype) -> None:
    t = law.sample(n, torch.Generator().manual_seed(n), dtype=dtype)
    assert t.shape == (n,)
    assert t.dtype == dtype
    assert bool(((t > 0) & (t <= 1)).all())


@pytest.mark.parametrize("law", [ind.UniformTime(), ind.MixtureTime(1.0), ind.PowerTime(2.0)])
def test_generator_makes_draws_reproducible(law: ind.TimeLaw) -> None:
    assert torch.equal(_draw(law, seed=3, n=100), _draw(law, seed=3, n=100))
    assert not torch.equal(_draw(law, seed=3, n=100), _draw(law, seed=4, n=100))


LAWS = [ind.UniformTime(), ind.MixtureTime(1.0), ind.PowerTime(0.0), ind.PowerTime(2.0)]
LOW_PRECISION_AND_FULL = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _fake_rand(monkeypatch: pytest.MonkeyPatch, first: torch.Tensor) -> list[dict]:
    """Make ``torch.rand`` return ``first`` on its first call and ones afterwards.

    The ones are MixtureTime's component pick: ``1 < a / (1 + a)`` never holds, so the uniform
    component is the one observed. Every call's keyword arguments are recorded.
    """
    calls: list[dict] = []

    def rand(n, *, generator=None, dtype=None, device=None):
        calls.append({"n": n, "generator": generator, "dtype": dtype, "device": device})
        values = first if len(calls) == 1 else torch.ones(n, dtype=dtype)
        return values.to(dtype)

    monkeypatch.setattr(torch, "rand", rand)
    return calls


@pytest.mark.parametrize("dtype", LOW_PRECISION_AND_FULL)
@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_uniform_draws_at_their_end_points_give_times_in_half_open_interval(
    law: ind.TimeLaw, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``u = 0`` gives ``t = 1``; the largest ``u < 1`` and a faulty ``u = 1`` both give the
    smallest time ``eps / 2`` of the uniform law (``(eps / 2)^(1 / (k + 1))`` for a power law),
    never 0; ``torch.rand`` returns ``u = 1`` in float16 / bfloat16 on some devices."""
    eps = torch.finfo(dtype).eps
    u = torch.tensor([0.0, 1.0 - eps / 2, 1.0, 0.5, torch.finfo(dtype).tiny], dtype=dtype)
    assert float(u[1]) < 1.0  # the largest draw torch.rand may return in this dtype
    g = torch.Generator().manual_seed(0)
    calls = _fake_rand(monkeypatch, u)
    t = law.sample(5, g, dtype=dtype)
    # One draw of u, plus the mixture's component pick in the same dtype, generator and device.
    draw = {"n": 5, "generator": g, "dtype": dtype, "device": None}
    pick = {**draw, "device": torch.device("cpu")}
    assert calls == ([draw, pick] if isinstance(law, ind.MixtureTime) else [draw])
    assert t.dtype == dtype and bool(((t > 0) & (t <= 1)).all()), t
    uniform = torch.tensor([1.0, eps / 2, eps / 2, 0.5, 1.0], dtype=dtype)
    # The power law maps its uniform draw by t = v^(1/(k + 1)) (its law is checked above).
    expected = uniform.pow(1 / (law.k + 1)) if isinstance(law, ind.PowerTime) else uniform
    assert torch.equal(t, expected), (t, expected)


@pytest.mark.parametrize("dtype", LOW_PRECISION_AND_FULL)
def test_mixture_point_mass_is_exactly_one_at_the_pick_end_points(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The component pick ``p`` selects the point mass iff ``p < a / (1 + a)``."""
    law = ind.MixtureTime(1.0)  # point mass 0.5
    eps = torch.finfo(dtype).eps
    picks = torch.tensor([0.0, 0.5 - eps / 4, 0.5, 1.0 - eps / 2], dtype=dtype)
    draws = iter([torch.full((4,), 0.75, dtype=dtype), picks])
    monkeypatch.setattr(torch, "rand", lambda n, **kw: next(draws).to(kw["dtype"]))
    t = law.sample(4, dtype=dtype)
    assert torch.equal(t, torch.tensor([1.0, 1.0, 0.25, 0.25], dtype=dtype))


def test_default_dtype_is_torch_default() -> None:
    assert ind.UniformTime().sample(4).dtype == torch.get_default_dtype()


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_draws_land_on_the_requested_device(law: ind.TimeLaw) -> None:
    """``device`` reaches every draw: on the meta device nothing is computed, only placed."""
    t = law.sample(3, dtype=torch.float64, device="meta")
    assert t.device == torch.device("meta") and t.shape == (3,) and t.dtype == torch.float64


@pytest.mark.parametrize(
    ("make", "attr", "given", "stored"),
    [
        (ind.MixtureTime, "a", torch.tensor(2.0), 2.0),
        (ind.MixtureTime, "a", 3, 3.0),
        (ind.PowerTime, "k", torch.tensor(0.5, dtype=torch.float64), 0.5),
        (ind.PowerTime, "k", 2, 2.0),
    ],
)
def test_parameters_are_stored_as_python_floats(make, attr, given, stored) -> None:
    law = make(given)
    assert type(getattr(law, attr)) is float and getattr(law, attr) == stored
    assert law == make(stored)  # equal (and hashable alike) whatever form the value came in


@pytest.mark.parametrize("law", [*LAWS, ind.MixtureTime(0.25)], ids=repr)
def test_check_time_law_returns_the_law_itself(law: ind.TimeLaw) -> None:
    assert ind.time_laws.check_time_law(law) is law


def test_check_time_law_accepts_any_object_with_sample() -> None:
    class Fixed:
        def sample(self, n, generator=None, *, dtype=None, device=None):
            return torch.full((n,), 0.5, dtype=dtype, device=device)

    law = Fixed()
    assert ind.time_laws.check_time_law(law) is law


@pytest.mark.parametrize(("bad", "name"), [("uniform", "str"), (42, "int"), (None, "NoneType")])
def test_check_time_law_rejects_objects_without_sample(bad: object, name: str) -> None:
    message = (
        "time_law must be a time law such as indiflow.UniformTime(), MixtureTime(a) or "
        f"PowerTime(k) (an object with .sample(n, generator)), got {name}"
    )
    with pytest.raises(TypeError) as info:
        ind.time_laws.check_time_law(bad)
    assert str(info.value) == message


@pytest.mark.parametrize("a", [0.0, -1.0])
def test_mixture_rejects_nonpositive_a(a: float) -> None:
    with pytest.raises(ValueError, match=rf"^MixtureTime a must be > 0, got {a}$"):
        ind.MixtureTime(a)


def test_power_rejects_negative_k() -> None:
    with pytest.raises(ValueError, match=r"^PowerTime k must be >= 0, got -0.5$"):
        ind.PowerTime(-0.5)


def test_laws_reject_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"^MixtureTime a must be a real number, got str: '1'$"):
        ind.MixtureTime("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^PowerTime k must be a real number, got bool: True$"):
        ind.PowerTime(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^n must be >= 0, got -1$"):
        ind.UniformTime().sample(-1)
    with pytest.raises(TypeError, match=r"^n must be an int, got float: 2.5$"):
        ind.PowerTime(1.0).sample(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^generator must be a torch.Generator or None, got int$"):
        ind.MixtureTime(1.0).sample(3, generator=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^dtype must be a floating-point dtype, got torch.int64$"):
        ind.UniformTime().sample(3, dtype=torch.int64)
