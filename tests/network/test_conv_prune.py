"""prune_network on convolutional models: the estimate, exact cases, radii,
the per-layer and composed guarantees, BatchNorm, input forms, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError, MagnitudeError, fold_batchnorm
from coreset_verify.network import (
    composed_bound,
    conv_operator_bound,
    prune_network,
    select_channels,
)
from coreset_verify.network.conv_bounds import box_radius, chain_radius, window_overlap
from coreset_verify.network.conv_model import read_conv_model

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional


def _randomise(model, seed):
    """Random float64 weights (and BatchNorm statistics) from one seed."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / fan_in**0.5)
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.3 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return model.double().eval()


def conv_net(seed=0, *, bn=False, flat=True, pool=nn.MaxPool2d):
    """(2, 10, 10) -> Conv(8) [BN] ReLU pool -> Conv(6) ReLU -> Flatten -> 12 -> 3."""
    layers = [nn.Unflatten(1, (2, 10, 10))] if flat else []
    layers += [nn.Conv2d(2, 8, 3, padding=1)]
    layers += [nn.BatchNorm2d(8)] if bn else []
    layers += [nn.ReLU(), pool(2), nn.Conv2d(8, 6, 3, stride=2), nn.ReLU(), nn.Flatten(),
               nn.Linear(24, 12), nn.Tanh(), nn.Linear(12, 3)]
    return _randomise(nn.Sequential(*layers), seed)


def ball(d, beta, n, seed):
    """Inputs with ``||x|| <= beta``: interior and boundary points, (2 n, d)."""
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(2 * n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x *= np.concatenate([beta * gen.uniform(size=n) ** (1 / d), np.full(n, beta)])[:, None]
    x *= 1 - 1e-12  # inside the ball in spite of the rounding of the normalisation
    return torch.as_tensor(x)


def upto(model, x, index):
    """The output of ``model[:index]``."""
    with torch.no_grad():
        for module in list(model)[:index]:
            x = module(x)
    return x


def run(model, x):
    with torch.no_grad():
        return model(x)


def test_pruned_model_is_the_reweighted_estimate():
    """Conv -> conv: the pruned model's second conv equals, on its kept channels,
    ``sum_c cnt[c] / (m pr[c]) conv2d(a_c, V[:, c]) + bias`` over the kept c."""
    net = conv_net(1)
    p = prune_network(net, keep=0.5, beta=3.0, rng=0)
    first, second = p.layers[:2]
    c = first.coreset
    x = ball(200, 3.0, 20, 0)
    a = upto(net, x, 4)  # relu(conv1) pooled, original model (B, 8, 5, 5)
    conv2 = net[4]
    factor = c.counts / (c.sample_size * c.probabilities)
    estimate = conv2.bias.detach()[None, :, None, None].expand(x.shape[0], -1, 2, 2).clone()
    for ch in np.flatnonzero(c.counts):
        estimate += factor[ch] * F.conv2d(a[:, ch:ch + 1], conv2.weight.detach()[:, ch:ch + 1],
                                          stride=2)
    got = upto(p.model, x, 5)
    np.testing.assert_allclose(got.numpy(), estimate[:, second.kept].numpy(), rtol=1e-10,
                               atol=1e-12)
    assert first.n_after == 4
    assert np.array_equal(first.kept, np.flatnonzero(c.counts))


def test_conv_then_linear_is_the_reweighted_estimate():
    """Conv -> Flatten -> Linear: channel c owns the H W columns c P .. c P + P - 1."""
    net = _randomise(nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 10, 3), nn.ReLU(),
                                   nn.AvgPool2d(2), nn.Flatten(), nn.Linear(90, 4)), 2)
    p = prune_network(net, keep=0.3, beta=2.0, rng=1)
    c = p.layers[0].coreset
    x = ball(64, 2.0, 20, 1)
    a = upto(net, x, 4).reshape(x.shape[0], 10, 9)
    W = net[5].weight.detach().reshape(4, 10, 9)
    factor = c.counts / (c.sample_size * c.probabilities)
    estimate = net[5].bias.detach() + sum(factor[ch] * a[:, ch] @ W[:, ch].T
                                          for ch in np.flatnonzero(c.counts))
    np.testing.assert_allclose(run(p.model, x).numpy(), estimate.numpy(), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "batchnorm"])
def test_keep_one_is_the_same_network(bn):
    net = conv_net(3, bn=bn)
    p = prune_network(net, keep=1.0, beta=2.0, rng=0)
    assert all(la.exact for la in p.layers)
    x = ball(200, 50.0, 10, 2)  # outside the ball too: nothing was changed
    np.testing.assert_array_equal(run(p.model, x).numpy(), run(net, x).numpy())


def test_identical_channels_make_the_estimate_exact():
    """Equal filters, biases and next blocks: pr = 1/C and the estimate
    ``sum_c cnt[c] C / m g = C g`` is the original sum, whatever the draws."""
    net = _randomise(nn.Sequential(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 8, 3), nn.ReLU(),
                                   nn.Conv2d(8, 3, 2), nn.ReLU(), nn.Flatten(),
                                   nn.Linear(27, 2)), 4)
    with torch.no_grad():
        net[1].weight.copy_(net[1].weight[:1].expand(8, -1, -1, -1))
        net[1].bias.fill_(0.1)
        net[3].weight.copy_(net[3].weight[:, :1].expand(-1, 8, -1, -1))
    for seed in range(5):
        p = prune_network(net, keep=0.25, beta=1.0, rng=seed)
        assert p.layers[0].n_after == 2
        assert not p.layers[0].exact
        x = ball(36, 1.0, 10, seed)
        np.testing.assert_allclose(upto(p.model, x, 4).numpy(),
                                   upto(net, x, 4).numpy()[:, p.layers[1].kept],
                                   rtol=1e-12, atol=1e-12)


def test_shapes_and_parameter_counts():
    net = conv_net(5, bn=True)
    p = prune_network(net, keep=0.5, beta=2.0, rng=0)
    assert [(la.n_before, la.n_after) for la in p.layers] == [(8, 4), (6, 3), (12, 6)]
    conv1, bn, conv2, fc1, fc2 = (p.model[i] for i in (1, 2, 5, 8, 10))
    assert tuple(conv1.weight.shape) == (4, 2, 3, 3)
    assert bn.num_features == 4
    assert tuple(conv2.weight.shape) == (3, 4, 3, 3)
    assert conv2.stride == (2, 2)
    assert tuple(fc1.weight.shape) == (6, 12)
    assert tuple(fc2.weight.shape) == (3, 6)
    expected = (4 * 2 * 9 + 4 + 2 * 4) + (3 * 4 * 9 + 3) + (6 * 12 + 6) + (3 * 6 + 3)
    assert p.params_after == expected == sum(q.numel() for q in p.model.parameters())
    assert p.params_before == sum(q.numel() for q in net.parameters())
    assert [type(m) for m in p.model] == [type(m) for m in net]
    assert composed_bound(p).shape == (3,)


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_parameter_budget(fraction):
    p = prune_network(conv_net(6), keep={"params": fraction}, beta=2.0, rng=0)
    assert p.param_fraction <= fraction
    assert p.target == f"params={fraction:g}"


def test_batchnorm_is_folded_and_indexed():
    net = conv_net(7, bn=True)
    p = prune_network(net, keep=0.5, beta=2.0, rng=0)
    conv, bn = net[1], net[2]
    w, b = fold_batchnorm(conv.weight.detach().numpy(), conv.bias.detach().numpy(),
                          weight=bn.weight.detach().numpy(), bias=bn.bias.detach().numpy(),
                          running_mean=bn.running_mean.numpy(),
                          running_var=bn.running_var.numpy(), eps=bn.eps)
    layer_w, layer_b, _ = p.layers[0].coreset.layer
    np.testing.assert_allclose(layer_w, w, rtol=1e-13)
    np.testing.assert_allclose(layer_b, b, rtol=1e-13, atol=1e-15)
    kept = p.layers[0].kept
    for name in ("weight", "bias", "running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(p.model[2], name).detach().numpy(),
                                      getattr(bn, name).detach().numpy()[kept])
    x = ball(200, 2.0, 10, 3)  # the pruned conv + BN is the folded conv, kept channels
    folded = F.conv2d(upto(net, x, 1), torch.as_tensor(w[kept]), torch.as_tensor(b[kept]),
                      padding=1)
    np.testing.assert_allclose(upto(p.model, x, 3).numpy(), folded.numpy(), rtol=1e-10,
                               atol=1e-12)


def test_flat_and_image_inputs_give_the_same_pruning():
    flat, image = conv_net(8, flat=True), conv_net(8, flat=False)
    a = prune_network(flat, keep=0.5, beta=2.0, rng=3)
    b = prune_network(image, keep=0.5, beta=2.0, rng=3, input_shape=(2, 10, 10))
    x = ball(200, 2.0, 5, 4)
    assert [la.kept.tolist() for la in a.layers] == [la.kept.tolist() for la in b.layers]
    np.testing.assert_allclose(run(a.model, x).numpy(),
                               run(b.model, x.reshape(-1, 2, 10, 10)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("order", ["bottom-up", "top-down"])
@pytest.mark.parametrize("pool", [nn.MaxPool2d, nn.AvgPool2d], ids=["max", "avg"])
@pytest.mark.parametrize("seed", [0, 1])
def test_radii_and_composed_bound_hold_on_the_ball(order, pool, seed):
    """Lemma CR: every sampled input of unit l has norm <= radius_l; Theorem N:
    every output stays within the composed bound (a bound that holds with
    probability >= 0.9 over the draws; for these fixed seeds it holds)."""
    net = conv_net(10 + seed, bn=True, pool=pool)
    beta = 2.0
    p = prune_network(net, keep=0.5, beta=beta, rng=seed, order=order)
    x = ball(200, beta, 200, seed)
    starts = [1, 5, 8]  # the first module of each hidden unit
    for layer, start in zip(p.layers, starts, strict=True):
        reference = p.model if order == "bottom-up" else net
        norms = upto(reference, x, start).reshape(x.shape[0], -1).norm(dim=1)
        assert float(norms.max()) <= layer.radius
    error = (run(net, x) - run(p.model, x)).abs().max(dim=0).values.numpy()
    assert np.all(error <= composed_bound(p))


@pytest.mark.parametrize("pool", [nn.MaxPool2d, nn.AvgPool2d], ids=["max", "avg"])
def test_box_and_chain_radii_are_each_sound(pool):
    """Each of the two bounds whose minimum is the radius (Lemma CR) holds alone:
    on these nets each is the smaller one for some unit."""
    net = conv_net(12, bn=True, pool=pool)
    units = read_conv_model(net, "test").units
    x = ball(200, 2.0, 300, 5)
    for layer, start in ((1, 5), (2, 8)):
        norm = float(upto(net, x, start).reshape(x.shape[0], -1).norm(dim=1).max())
        assert norm <= box_radius(units, 2.0, layer)
        assert norm <= chain_radius(units, 2.0, layer)


@pytest.mark.parametrize("pool", [nn.MaxPool2d, nn.AvgPool2d], ids=["max", "avg"])
def test_propagation_is_reached_when_every_unit_is_active(pool):
    """Lemma CPr's tight instance: positive weights, biases large enough that every
    ReLU is active; an error E_i added to channel i at every position moves the
    outputs by exactly P E (a max moves by E too), so a missing or doubled factor
    (Lipschitz, pooling, |W|) is caught."""
    net = _randomise(nn.Sequential(
        nn.Unflatten(1, (2, 8, 8)), nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), pool(2),
        nn.Conv2d(4, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 5), nn.ReLU(),
        nn.Linear(5, 2)), 40)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.abs_()
                m.bias.fill_(20.0)
    p = prune_network(net, keep=1.0, beta=1.0, rng=0)
    x = ball(128, 1.0, 5, 6)
    E = np.array([0.3, 1.1, 0.7])
    shifted = upto(net, x, 5) + torch.as_tensor(E)[None, :, None, None]
    with torch.no_grad():
        moved = net[5:](shifted) - net(x)
    np.testing.assert_allclose(moved.numpy(), np.tile(p.layers[0].propagation @ E, (10, 1)),
                               rtol=1e-9)


@pytest.mark.parametrize("kind", ["pointwise", "uniform"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_conv_layer_meets_its_guarantee(kind, seed):
    """``|F_{i,q}(h) - F~_{i,q}(h)| <= epsilon T_i`` at inputs h of each conv (of
    norm <= radius; bottom-up, so the pruned model's prefix feeds it), F computed
    from the layer pair with conv2d: conv -> conv and conv -> Flatten -> Linear.
    Fails with probability <= delta / 3 per layer and seed; fixed seeds, no retries."""
    net = conv_net(20 + seed)
    p = prune_network(net, keep=0.5, beta=2.0, rng=seed, kind=kind)
    x = ball(200, 2.0, 100, seed)

    def first(h, w, b, V):
        return F.conv2d(F.max_pool2d(torch.relu(F.conv2d(h, w, b, padding=1)), 2), V,
                        stride=2)

    def second(h, w, b, V):
        return torch.relu(F.conv2d(h, w, b, stride=2)).flatten(1) @ V.T

    for layer, start, pair in ((p.layers[0], 1, first), (p.layers[1], 4, second)):
        c = layer.coreset
        h = upto(p.model, x, start)
        assert float(h.flatten(1).norm(dim=1).max()) <= layer.radius
        full = pair(h, *(torch.as_tensor(np.asarray(a)) for a in c.layer))
        small = pair(h, *(torch.as_tensor(np.asarray(a)) for a in c.pruned()))
        error = (full - small).abs().reshape(x.shape[0], full.shape[1], -1).amax(dim=(0, 2))
        assert np.all(error.numpy() <= layer.bound.epsilon * layer.scale)
        assert layer.bound.kind == kind
        assert layer.delta == pytest.approx(0.1 / 3)


@pytest.mark.parametrize(("stride", "dilation", "padding"),
                         [(1, 1, 0), (1, 1, 1), (2, 1, 1), (2, 2, 2), (3, 1, 0), (1, 2, 2)])
def test_operator_bound_is_above_the_true_norm(stride, dilation, padding):
    """Lemma CO against the spectral norm of the conv's dense matrix (6 x 7 input)."""
    gen = torch.Generator().manual_seed(stride * 10 + dilation)
    w = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    basis = torch.eye(3 * 6 * 7, dtype=torch.float64).reshape(-1, 3, 6, 7)
    dense = F.conv2d(basis, w, stride=stride, padding=padding, dilation=dilation)
    true = np.linalg.norm(dense.reshape(basis.shape[0], -1).numpy(), 2)
    bound = conv_operator_bound(w.numpy(), stride=stride, dilation=dilation)
    assert true <= bound
    assert bound <= 3 * true  # and not vacuous on a random filter


def test_operator_bound_is_exact_for_one_by_one_convolutions():
    w = np.random.default_rng(0).normal(size=(5, 3, 1, 1))
    basis = torch.eye(3 * 4 * 4, dtype=torch.float64).reshape(-1, 3, 4, 4)
    dense = F.conv2d(basis, torch.as_tensor(w)).reshape(basis.shape[0], -1).numpy()
    assert conv_operator_bound(w) == pytest.approx(np.linalg.norm(dense, 2), rel=1e-7)


def test_operator_bound_is_nearly_reached_by_a_box_filter():
    """A tight instance: the 3 x 3 all-ones filter (stride 1, padding 1) on a 12 x 12
    input has norm (1 + 2 cos(pi / 13))^2 = 8.66; the bound is 3 sqrt(9) = 9 (a
    bound without the overlap factor, 3, would be below the truth)."""
    w = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    basis = torch.eye(144, dtype=torch.float64).reshape(-1, 1, 12, 12)
    dense = F.conv2d(basis, w, padding=1).reshape(144, -1).numpy()
    true = np.linalg.norm(dense, 2)
    assert true == pytest.approx((1 + 2 * np.cos(np.pi / 13)) ** 2, rel=1e-12)
    assert true <= conv_operator_bound(w.numpy()) <= 1.04 * true


@pytest.mark.parametrize(("stride", "dilation", "side", "true"),
                         [(1, 2, 14, 8.109731692418245), (2, 2, 16, 8.290859369381591)])
def test_operator_bound_is_nearly_reached_by_a_dilated_box_filter(stride, dilation, side,
                                                                   true):
    """Tight instances where stride and dilation both count: the dilated 3 x 3
    all-ones filter reads an entry from 3 windows per dimension, so the bound is
    3 sqrt(9) = 9; counting the overlap with the stride and dilation swapped (or
    the dilation dropped) gives 3 sqrt(6) = 7.35, below the truth. The true norms
    (8.11 and 8.29, the dense matrix's, padding 2) are checked here first."""
    w = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    basis = torch.eye(side * side, dtype=torch.float64).reshape(-1, 1, side, side)
    dense = F.conv2d(basis, w, stride=stride, padding=2, dilation=dilation)
    assert np.linalg.norm(dense.reshape(side * side, -1).numpy(), 2) == pytest.approx(
        true, rel=1e-12)
    bound = conv_operator_bound(w.numpy(), stride=stride, dilation=dilation)
    assert true <= bound <= 1.12 * true
    # one dimension dilated: ||ones(1, 9)|| = 3 times sqrt(3 windows x 3 at stride 1,
    # 3 x 2 at stride 2, where the undilated dimension's odd offsets miss)
    by_hand = 9.0 if stride == 1 else 3 * math.sqrt(6)
    for dil in ((dilation, 1), (1, dilation)):
        assert conv_operator_bound(w.numpy(), stride=stride, dilation=dil) == pytest.approx(
            by_hand, rel=1e-9)


@pytest.mark.parametrize(("kernel", "stride", "dilation", "expected"),
                         [(3, 1, 1, 3), (3, 2, 1, 2), (2, 2, 1, 1), (3, 2, 2, 3), (5, 3, 1, 2),
                          (4, 2, 3, 2)])
def test_window_overlap_known_answers(kernel, stride, dilation, expected):
    brute = max(sum(1 for p in range(20) for u in range(kernel) if stride * p + dilation * u
                    == i) for i in range(10, 30))
    assert window_overlap(kernel, stride, dilation) == expected == brute


def _dense_norm(w, size=12):
    """``(norm, k)``: the spectral norm of the conv's dense matrix (padding 1, a
    ``size x size`` input) of ``w * 2**-k``, ``k`` the exponent of its largest entry,
    so that no square under- or overflows (the true norm is ``norm * 2**k``)."""
    k = int(np.frexp(np.max(np.abs(w)))[1])
    c_in = w.shape[1]
    basis = torch.eye(c_in * size * size, dtype=torch.float64).reshape(-1, c_in, size, size)
    dense = F.conv2d(basis, torch.as_tensor(np.ldexp(w, -k)), padding=1)
    return np.linalg.norm(dense.reshape(basis.shape[0], -1).numpy(), 2), k


@pytest.mark.parametrize("c", [1e-300, 1e-160, 1e-310, 1e300])
def test_operator_bound_of_tiny_and_huge_filters(c):
    """The all-c 3 x 3 filter: Lemma CO gives ||w|| sqrt(N_h N_w) = 3c * 3 = 9c, above
    the true norm (8.66c on 12 x 12); np.linalg.norm's squares gave 0.0 for 1e-300 and
    less than 9e-160 for 1e-160. Compared after scaling by 2**-k, which is exact here."""
    w = np.full((1, 1, 3, 3), c)
    bound = conv_operator_bound(w)
    true, k = _dense_norm(w)
    assert np.ldexp(bound, -k) >= true
    assert bound == pytest.approx(9 * c, rel=1e-9)


@pytest.mark.parametrize("shift", [-1000, -600, 600, 1000])
def test_operator_bound_follows_a_power_of_two_scaling(shift):
    w = np.random.default_rng(1).normal(size=(4, 3, 3, 3))
    want = conv_operator_bound(w, stride=2)
    got = conv_operator_bound(np.ldexp(w, shift), stride=2)
    assert np.ldexp(got, -shift) == pytest.approx(want, rel=1e-9)
    true, k = _dense_norm(np.ldexp(w, shift))
    assert np.ldexp(got, -k) >= true


def test_operator_bound_takes_numpy_integers_and_tensors_that_require_grad():
    w = np.random.default_rng(2).normal(size=(3, 2, 3, 3))
    want = conv_operator_bound(w, stride=2, dilation=(1, 2))
    assert conv_operator_bound(w, stride=np.int64(2), dilation=[np.int64(1), 2]) == want
    assert conv_operator_bound(torch.tensor(w, requires_grad=True), stride=(2, 2),
                               dilation=(1, 2)) == want


_W3 = np.ones((1, 1, 3, 3))
OPERATOR_REFUSED = [
    pytest.param({"weight": np.full((1, 1, 3, 3), np.inf)}, "finite", id="inf"),
    pytest.param({"weight": np.full((1, 1, 3, 3), np.nan)}, "finite", id="nan"),
    pytest.param({"weight": np.full((1, 1, 3, 3), 1j)}, "float32 or float64", id="complex"),
    pytest.param({"weight": "W"}, "float32 or float64", id="string"),
    pytest.param({"weight": np.ones((0, 1, 3, 3))}, "every size >= 1", id="no filters"),
    pytest.param({"weight": np.ones((1, 1, 0, 3))}, "every size >= 1", id="no kernel"),
    pytest.param({"weight": np.ones((1, 3, 3))}, "4-D", id="3-D"),
    pytest.param({"weight": torch.ones(1, 1, 3, 3, device="meta")}, "meta", id="meta"),
    pytest.param({"weight": torch.ones(1, 1, 3, 3).to_sparse()}, "dense", id="sparse"),
    pytest.param({"weight": torch.ones(1, 1, 3, 3, dtype=torch.bfloat16)}, "bfloat16",
                 id="bfloat16"),
    *(pytest.param({"weight": _W3, "stride": v}, "'stride'", id=f"stride={v!r}")
      for v in (0, -1, 1.5, 2.0, None, "2", True, (1, 2, 3), (0, 1), np.nan)),
    *(pytest.param({"weight": _W3, "dilation": v}, "'dilation'", id=f"dilation={v!r}")
      for v in (0, (1, -2), [2])),
]


@pytest.mark.parametrize(("kwargs", "match"), OPERATOR_REFUSED)
def test_operator_bound_refuses_bad_arguments(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        conv_operator_bound(**kwargs)


def test_select_channels_keeps_and_scales():
    net = conv_net(30)
    kept = [np.array([1, 4, 6]), None, np.arange(5)]
    small = select_channels(net, kept, scale=[2.0, None, None])
    assert tuple(small[1].weight.shape) == (3, 2, 3, 3)
    assert tuple(small[4].weight.shape) == (6, 3, 3, 3)
    np.testing.assert_allclose(small[4].weight.detach().numpy(),
                               2.0 * net[4].weight.detach().numpy()[:, kept[0]], rtol=1e-15)


def test_select_channels_refuses_a_scale_past_the_dtype():
    """A next weight of 4 times scale 1e308 is 4e308 > 1.8e308 (float64); times 1e38,
    4e38 > 3.4e38 in float32 only: refused, not turned into inf."""
    net = conv_net(31)
    with torch.no_grad():
        net[4].weight.fill_(4.0)
    kept = [np.array([0, 1]), None, None]
    with pytest.raises(MagnitudeError, match=r"scale\[0\].*float64"):
        select_channels(net, kept, scale=[1e308, None, None])
    small = select_channels(net, kept, scale=[1e38, None, None])
    assert float(small[4].weight.detach().max()) == 4e38
    with pytest.raises(MagnitudeError, match=r"scale\[0\].*float32"):
        select_channels(net.float(), kept, scale=[1e38, None, None])


SELECT_REFUSED = [
    pytest.param(conv_net(0), {"scale": 2.0}, "'scale'.*sequence", id="scale=2.0"),
    pytest.param(conv_net(0), {"scale": "abc"}, "'scale'", id="scale=str"),
    pytest.param(conv_net(0).to("meta"), {}, r"model\[1\].weight.*meta", id="meta"),
    pytest.param(conv_net(0, flat=False), {"input_shape": (2, 2**40, 2**40)},
                 "MAX_INPUT_ENTRIES", id="input_shape=(2, 2**40, 2**40)"),
    pytest.param(conv_net(0, flat=False), {"input_shape": (2, 10**400, 4)},
                 "MAX_INPUT_ENTRIES", id="input_shape=(2, 10**400, 4)"),
    pytest.param(conv_net(0, flat=False), {"input_shape": (2, 1, 1)}, "cannot run",
                 id="input_shape=(2, 1, 1)"),
]


@pytest.mark.parametrize(("model", "options", "match"), SELECT_REFUSED)
def test_select_channels_refuses_bad_arguments(model, options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        select_channels(model, [None, None, None], **options)


def _residual():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return x + self.conv(x)

    return Residual()


def _seq(*layers):
    return nn.Sequential(*layers).double()


REFUSED = [
    pytest.param(_seq(nn.Unflatten(1, (2, 6, 6)), nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(),
                      nn.Flatten(), nn.Linear(64, 2)), {}, r"model\[1\].*groups=1",
                 id="groups=2"),
    pytest.param(_seq(nn.Unflatten(1, (1, 6, 6)),
                      nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                      nn.Flatten(), nn.Linear(144, 2)), {}, r"model\[1\].*padding_mode",
                 id="reflect"),
    pytest.param(_seq(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 4, 3), nn.ReLU(),
                      nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 2)), {},
                 r"model\[3\].*before the activation", id="batchnorm-after-relu"),
    pytest.param(_seq(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 4, 3), nn.MaxPool2d(2),
                      nn.ReLU(), nn.Flatten(), nn.Linear(16, 2)), {}, r"model\[2\]",
                 id="pool-before-relu"),
    pytest.param(_seq(nn.Unflatten(1, (1, 6, 6)), _residual(), nn.ReLU(), nn.Flatten(),
                      nn.Linear(36, 2)), {}, r"model\[1\].*Residual", id="residual-block"),
    pytest.param(_residual().double(), {"input_shape": (1, 6, 6)}, "nn.Sequential",
                 id="residual-model"),
    pytest.param(_seq(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2)), {},
                 "input_shape", id="image-without-input_shape"),
    pytest.param(conv_net(0), {"input_shape": (1, 20, 10)}, "input_shape",
                 id="input_shape-against-unflatten"),
    pytest.param(conv_net(0).to("meta"), {}, r"model\[1\].weight.*meta", id="meta"),
    pytest.param(conv_net(0, flat=False), {"input_shape": (2, 2**40, 2**40)},
                 "MAX_INPUT_ENTRIES", id="huge-input_shape"),
    pytest.param(conv_net(0), {"kind": "paper"}, "kind", id="kind=paper"),
    pytest.param(conv_net(0), {"epsilon": 0.3, "keep": None}, "epsilon", id="epsilon"),
    pytest.param(_seq(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 4, 3), nn.ReLU(),
                      nn.Flatten(), nn.Linear(10, 2)), {}, r"model\[4\] expects 10",
                 id="linear-size"),
    pytest.param(_seq(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 4, 3), nn.ReLU(),
                      nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Unflatten(1, (2, 2, 2)),
                      nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)), {},
                 r"model\[6\].*Unflatten", id="linear-then-conv"),
]


@pytest.mark.parametrize(("model", "options", "match"), REFUSED)
def test_refusals_name_the_layer(model, options, match):
    kwargs = {"keep": 0.5, "beta": 1.0, "rng": 0, **options}
    with pytest.raises(InvalidArgumentError, match=match):
        prune_network(model, **kwargs)
