"""STLPIPS: the network built here from the stlpips-pytorch weight files."""

import importlib.util
import sys

import pytest
import torch
import torch.nn.functional as F
from skimage import data

import indiflow as ind
from indiflow.metrics import perceptual

M = ind.metrics


@pytest.fixture(scope="module")
def alex():
    return M.STLPIPS("alex")


@pytest.fixture(scope="module")
def photo():
    """Two 64 x 64 crops of a real photograph (B = 2), float32 in [0, 1]."""
    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    return torch.stack([image[:, 100:164, 180:244], image[:, 300:364, 60:124]])


def blur(x, sigma):
    r = int(3 * sigma + 1)
    taps = torch.exp(-(torch.arange(-r, r + 1.0) ** 2) / (2 * sigma**2))
    k = (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(x.shape[1], 1, -1, -1)
    return F.conv2d(F.pad(x, (r,) * 4, mode="reflect"), k, groups=x.shape[1])


def noisy(x, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_every_weight_of_the_file_has_a_place_and_every_place_a_weight(net):
    stored = torch.load(perceptual.weights_path(net), map_location="cpu", weights_only=True)
    module = M.STLPIPS(net)  # loads with strict=True
    assert set(module.state_dict()) == set(stored)
    for key, value in module.state_dict().items():
        assert torch.equal(value, stored[key]), key


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_stored_blur_filters_and_scaling_are_the_documented_constants(net):
    stored = perceptual._state_dict(net)
    binomial = torch.tensor([1.0, 2.0, 1.0])
    binomial = binomial[:, None] * binomial[None, :] / 16
    filters = [v for k, v in stored.items() if k.endswith(".filt")]
    assert len(filters) == (3 if net == "alex" else 4)
    for f in filters:
        assert torch.equal(f, binomial.expand_as(f))
    assert torch.allclose(
        stored["scaling_layer.shift"].flatten(), torch.tensor([-0.03, -0.088, -0.188])
    )
    assert torch.allclose(
        stored["scaling_layer.scale"].flatten(), torch.tensor([0.458, 0.448, 0.45])
    )
    assert all((v >= 0).all() for k, v in stored.items() if k.startswith("lin"))


@pytest.mark.parametrize(
    ("net", "channels"), [("alex", (64, 192, 384, 256, 256)), ("vgg", (64, 128, 256, 512, 512))]
)
def test_five_unit_norm_feature_maps_with_the_lpips_channels(net, channels):
    feats = M.STLPIPS(net).features(
        torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    )
    assert tuple(f.shape[1] for f in feats) == channels
    for f in feats:
        norms = f.square().sum(dim=1).sqrt()
        assert torch.allclose(norms[norms > 1e-3], torch.ones(()), atol=1e-5)


def test_distance_is_the_weighted_feature_difference_of_the_file(alex, photo):
    """forward() against the LPIPS formula written out with the stored head weights."""
    x, ref = noisy(photo, 0.05), photo
    stored = perceptual._state_dict("alex")
    want = torch.zeros(2)
    for layer, (fx, fr) in enumerate(zip(alex.features(x), alex.features(ref), strict=True)):
        w = stored[f"lin{layer}.model.1.weight"].flatten()
        want += torch.einsum("c,bchw->b", w, (fx - fr) ** 2) / (fx.shape[-2] * fx.shape[-1])
    assert torch.allclose(alex(x, ref), want, rtol=1e-5, atol=1e-7)


def test_identity_symmetry_and_shape(alex, photo):
    other = blur(photo, 1.0)
    d = alex(photo, other)
    assert d.shape == (2,) and (d > 0).all()
    assert alex(photo, photo).abs().max() < 1e-6
    assert torch.allclose(d, alex(other, photo), rtol=1e-6, atol=1e-8)


def test_blur_and_noise_raise_it_monotonically(alex, photo):
    blurs = torch.stack([alex(blur(photo, s), photo) for s in (0.5, 1.0, 2.0)])
    noises = torch.stack([alex(noisy(photo, s), photo) for s in (0.02, 0.05, 0.15)])
    assert (blurs[1:] > blurs[:-1]).all() and (blurs[0] > 1e-3).all()
    assert (noises[1:] > noises[:-1]).all() and (noises[0] > 1e-3).all()


def test_a_one_pixel_shift_costs_less_than_mild_blur(alex, photo):
    """The trained weights are shift tolerant: the point of ST-LPIPS."""
    shifted = alex(photo[..., 1:, 1:], photo[..., :-1, :-1])
    blurred = alex(blur(photo, 1.0)[..., 1:, 1:], photo[..., 1:, 1:])
    assert (shifted < 0.5 * blurred).all()


def test_batch_independence_and_grey_as_repeated_rgb(alex, photo):
    whole = alex(noisy(photo, 0.1), photo)
    parts = torch.cat([alex(noisy(photo, 0.1)[i : i + 1], photo[i : i + 1]) for i in range(2)])
    assert torch.allclose(whole, parts, rtol=1e-5, atol=1e-7)
    grey = photo.mean(dim=1, keepdim=True)
    g_noisy = noisy(grey, 0.1)
    assert torch.allclose(
        alex(g_noisy, grey), alex(g_noisy.expand(-1, 3, -1, -1), grey.expand(-1, 3, -1, -1))
    )


def test_eval_mode_frozen_weights_and_gradients_reach_the_input(alex, photo):
    assert not alex.training
    assert not any(p.requires_grad for p in alex.parameters())
    x = noisy(photo, 0.1).requires_grad_(True)
    alex(x, photo).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in alex.parameters())


def test_weights_are_read_once_per_process_without_importing_the_wheel():
    perceptual._state_dict.cache_clear()
    M.STLPIPS("alex")
    M.STLPIPS("alex")
    info = perceptual._state_dict.cache_info()
    assert info.misses == 1 and info.hits == 1
    assert "stlpips_pytorch" not in sys.modules


def test_missing_wheel_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "stlpips_pytorch" else real(name, *a),
    )
    perceptual._state_dict.cache_clear()
    try:
        with pytest.raises(ImportError, match=r'pip install -e "\.\[images\]"'):
            M.STLPIPS("alex")
    finally:
        perceptual._state_dict.cache_clear()


def test_bad_input_is_rejected(alex):
    with pytest.raises(ValueError, match=r"\['alex', 'vgg'\].*'squeeze'"):
        M.STLPIPS("squeeze")
    with pytest.raises(ValueError, match="net must be one of"):
        M.STLPIPS(["alex"])
    small = torch.zeros(1, 3, 20, 40)
    with pytest.raises(ValueError, match="at least 21x21"):
        alex(small, small)
    two = torch.zeros(1, 2, 32, 32)
    with pytest.raises(ValueError, match="C = 2"):
        alex(two, two)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        alex(torch.full((1, 3, 32, 32), 1.2), torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="same shape"):
        alex(torch.zeros(1, 3, 32, 32), torch.zeros(2, 3, 32, 32))
