"""certified_coreset: the kept draw is the one proved best, and its proof checks."""

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError, certified_coreset, layer_coreset

torch = pytest.importorskip("torch")


def _layer(seed: int, n: int = 7, d: int = 3, k: int = 2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), 0.3 * rng.normal(size=n), rng.normal(size=(k, n))


def _sampled_error(layer, coreset, beta, seed=0, count=20000):
    """Largest |F_i - F~_i| / T_i over random inputs of the ball (an oracle
    computed here, from the weights alone)."""
    w_in, b_in, w_out = layer
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, w_in.shape[1]))
    x *= beta * rng.random((count, 1)) ** (1 / w_in.shape[1]) / np.linalg.norm(x, axis=1,
                                                                                keepdims=True)
    full = np.maximum(x @ w_in.T + b_in, 0) @ w_out.T
    kw, kb, ku = (np.asarray(a) for a in coreset.pruned())
    kept = np.maximum(x @ kw.T + kb, 0) @ ku.T
    scale = np.where(coreset.scale > 0, coreset.scale, 1.0)
    return float(np.max(np.abs(full - kept) / scale))


def test_keeps_the_draw_with_the_smallest_proved_error(tmp_path):
    layer = _layer(0)
    best = certified_coreset(*layer, draws=4, time_limit=10, beta=1.5, distinct=4, rng=3,
                             certificate=tmp_path / "best.npz")
    uppers = [u for _, u in best.brackets]
    assert best.chosen == int(np.argmin(uppers))
    assert best.worst_case.upper_bound == min(uppers)
    assert best.worst_case.certified
    # the kept coreset is the chosen child's draw, redrawn independently here
    child = np.random.default_rng(3).spawn(4)[best.chosen]
    again = layer_coreset(*layer, distinct=4, beta=1.5, rng=child)
    np.testing.assert_array_equal(again.indices, best.coreset.indices)
    # its proved bound holds on sampled inputs, and is nearly attained
    sampled = _sampled_error(layer, best.coreset, 1.5)
    assert sampled <= best.worst_case.upper_bound * (1 + 1e-9)
    assert sampled >= 0.9 * best.worst_case.error
    from coreset_verify import certificate

    f = __import__("coreset_verify").nets.layer_pair_modules(*layer)
    g = __import__("coreset_verify").nets.layer_pair_modules(*best.coreset.pruned())
    checked = certificate.check(best.certificate, f, g, beta=1.5)
    assert checked.upper_bound >= best.worst_case.error


@pytest.mark.parametrize(("kwargs", "name"), [
    pytest.param({"draws": 0}, "draws", id="draws=0"),
    pytest.param({"draws": 10**6}, "draws", id="draws=1e6"),
    pytest.param({"time_limit": 0}, "time_limit", id="time_limit=0"),
    pytest.param({"certificate": 3}, "certificate", id="certificate=3"),
    pytest.param({"certificate": "/no/such/folder/c.npz"}, "certificate",
                 id="certificate-missing-folder"),
    pytest.param({"certificate": "/tmp"}, "certificate", id="certificate-is-a-folder"),
    pytest.param({"progress": 3}, "progress", id="progress=3"),
    pytest.param({"bogus": 1}, "bogus", id="unknown-option"),
])
def test_bad_arguments_name_themselves(kwargs, name):
    args = {"draws": 2, "time_limit": 5, "beta": 1.0, "distinct": 3, "rng": 0} | kwargs
    with pytest.raises(InvalidArgumentError,
                       match=rf"{name}.*certified_coreset|certified_coreset.*{name}"):
        certified_coreset(*_layer(1), **args)


def _network(seed: int):
    from coreset_verify.models import mlp

    return mlp([3, 10, 8, 2], seed=seed).double()


def _sampled_network_error(model, pruned, beta, seed=0, count=20000):
    """Largest |model_i - pruned_i| over random inputs of the ball and its sphere
    (an oracle: forward passes only)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[count // 2:] *= rng.random((count - count // 2, 1)) ** (1 / 3)
    with torch.no_grad():
        xt = torch.as_tensor(beta * x)
        return float((model(xt) - pruned(xt)).abs().max())


def test_certified_network_keeps_the_draw_proved_best(tmp_path):
    """The kept pruning has the smallest upper bound of the draws, is the
    chosen child's pruning (redrawn here), its bound is above every sampled
    error, and its certificate proves that bound."""
    from coreset_verify import certified_network
    from coreset_verify.certificate import DEEP_FORMAT, check
    from coreset_verify.network import prune_network

    model = _network(1)
    best = certified_network(model, draws=3, time_limit=6, beta=1.5, keep=0.5, rng=7,
                             certificate=tmp_path / "net.npz")
    assert best.certificate == tmp_path / "net.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no scratch left
    proved = check(best.certificate, model, best.pruned.model, beta=1.5)
    assert proved.upper_bound == best.worst_case.upper_bound
    with np.load(best.certificate) as data:
        assert str(data["format"]) == DEEP_FORMAT
    uppers = [u for _, u in best.brackets]
    assert best.chosen == int(np.argmin(uppers))
    assert best.worst_case.upper_bound == min(uppers)
    assert all(found <= upper for found, upper in best.brackets)
    child = np.random.default_rng(7).spawn(3)[best.chosen]
    again = prune_network(model, beta=1.5, keep=0.5, rng=child).model
    x = torch.randn(50, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(again(x), best.pruned.model(x))
    seen = _sampled_network_error(model, best.pruned.model, 1.5)
    assert best.worst_case.upper_bound >= seen
    assert best.worst_case.error <= best.worst_case.upper_bound
    assert any(s.name == "bab" and s.status != "not_applicable"
               for s in best.worst_case.trace)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"draws": 0}, "draws"), ({"time_limit": 0}, "time_limit"),
    ({"progress": 3}, "progress"), ({"sample_size": 5}, "sample_size"),
    ({"certificate": 5}, "certificate"), ({"certificate": "/no/such/folder/c.npz"},
                                          "certificate"),
])
def test_certified_network_bad_arguments_name_themselves(kwargs, name):
    """Each bad argument is refused with its own name in the message."""
    from coreset_verify import certified_network

    args = {"draws": 1, "time_limit": 1.0, "beta": 1.0, "keep": 0.5} | kwargs
    with pytest.raises(InvalidArgumentError, match=name):
        certified_network(_network(0), **args)
