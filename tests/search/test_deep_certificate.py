"""Certificates of deeper pairs (``coreset-verify/deep/1``, proofs_notes/bab.md,
"Certificate of a deeper pair"): written by the joint branch and bound,
re-verified by ``coreset_verify.certificate.check``, which imports nothing from
the search.

The truth is a dense grid of the 2-D domain evaluated with the torch modules
themselves (test_deep.py's oracle). The searches here stop after a fixed
number of nodes, not a time, so every run is the same.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _search_helpers import torch
from test_deep import DOMAINS, deep_nets, domain_kwargs, grid

from coreset_verify import CertificateError, InvalidArgumentError, worst_case
from coreset_verify.certificate import DEEP_FORMAT, check
from coreset_verify.search import deep
from coreset_verify.search._intervals import interval_bounds
from coreset_verify.search._problem import make_problem

#: Networks: (seed, f's hidden widths, g's, activation); the third has three
#: hidden layers in f, so its ranges use the lower layers' slopes too.
CASES = [(0, (5, 4), (3, 3), "relu"), (1, (6, 4), (3, 2), "leaky"),
         (2, (4, 4, 3), (3, 3), "relu")]


def grid_max(f, g, kind: str) -> float:
    x = torch.as_tensor(grid(kind, 301))
    with torch.no_grad():
        return float((f(x) - g(x)).abs().max())


def write(tmp_path, f, g, kind: str, *, max_nodes: int = 60, name: str = "c.npz"):
    """Run the joint branch and bound for ``max_nodes`` nodes and write its
    certificate; returns ``(path, outcome)``."""
    problem = make_problem(f, g, **domain_kwargs(kind), scale=None)
    out = deep.deep_branch_and_bound(problem, interval_bounds(problem).pre0,
                                     keep_leaves=True, max_nodes=max_nodes)
    path = tmp_path / name
    deep.write_deep_certificate(path, out, problem)
    return path, out


def doctor(path, tmp_path, name: str = "doctored.npz", **changes):
    """A copy of the certificate with ``changes`` (key -> function of the array,
    or None to drop the key)."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    for key, change in changes.items():
        if change is None:
            del arrays[key]
        else:
            arrays[key] = change(arrays[key].copy())
    out = tmp_path / name
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("kind", sorted(DOMAINS))
@pytest.mark.parametrize(("seed", "wf", "wg", "act"), CASES)
def test_certificate_round_trip_and_truth(tmp_path, seed, wf, wg, act, kind):
    f, g = deep_nets(seed, wf=wf, wg=wg, act=act)
    path, out = write(tmp_path, f, g, kind)
    result = check(path, f, g, **{k: v for k, v in domain_kwargs(kind).items()
                                   if v is not None})
    truth = grid_max(f, g, kind)
    assert result.upper_bound == out.upper_bound
    assert result.max_leaf_bound <= result.upper_bound
    assert result.upper_bound >= truth  # the claim is true
    assert result.leaves == len(out.leaves)
    assert result.specifications == 2 * 2
    with np.load(path) as data:
        assert str(data["format"]) == DEEP_FORMAT


def test_worst_case_writes_a_deep_certificate_the_checker_accepts(tmp_path):
    f, g = deep_nets(3, wf=(5, 4), wg=(3, 3))
    path = tmp_path / "wc.npz"
    res = worst_case(f, g, beta=1.5, time_limit=4, rng=0, certificate=path)
    result = check(path, f, g, beta=1.5)
    assert result.upper_bound == res.upper_bound >= grid_max(f, g, "ball")
    assert res.error <= res.upper_bound


def test_a_deeper_pair_needs_a_time_limit_for_a_certificate_from_auto(tmp_path):
    f, g = deep_nets(3)
    with pytest.raises(InvalidArgumentError, match="time_limit"):
        worst_case(f, g, beta=1.0, certificate=tmp_path / "c.npz")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A certificate with deeper splits, its networks and its arrays."""
    tmp = tmp_path_factory.mktemp("deepcert")
    f, g = deep_nets(0, wf=(4, 4, 3), wg=(3, 3))
    path, _ = write(tmp, f, g, "ball", max_nodes=120)
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    n = len(arrays["index_f"])
    assert (arrays["split_neuron"] >= n).any()
    assert (arrays["split_neuron"] < n).any()
    check(path, f, g)
    return path, f, g, arrays


def _deeper_split(c):
    """(leaf, position) of a deeper split, for doctoring."""
    n = len(c["index_f"])
    at = int(np.flatnonzero(c["split_neuron"] >= n)[0])
    return int(np.searchsorted(c["split_offsets"], at, side="right") - 1), at


def _leaf_cut(c, leaf):
    """The arrays without ``leaf`` (its splits and its row removed)."""
    off = c["split_offsets"]
    keep = np.ones(len(c["split_neuron"]), bool)
    keep[off[leaf]:off[leaf + 1]] = False
    lens = np.delete(np.diff(off), leaf)
    rows = {"leaf_output", "leaf_sign", "leaf_proof", "leaf_bound"}
    out = {key: (np.delete(v, leaf) if key in rows else v[keep]
                 if key in ("split_neuron", "split_side") else v) for key, v in c.items()}
    out["split_offsets"] = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return out


def test_a_removed_leaf_is_rejected(written, tmp_path):
    _path, f, g, c = written
    np.savez(tmp_path / "cut.npz", **_leaf_cut(c, len(c["leaf_output"]) - 1))
    with pytest.raises(CertificateError, match="do not cover"):
        check(tmp_path / "cut.npz", f, g)


def test_a_flipped_split_is_rejected(written, tmp_path):
    path, f, g, c = written
    _, at = _deeper_split(c)

    def flip(side):
        side[at] = -side[at]
        return side
    with pytest.raises(CertificateError, match=r"overlap|do not cover"):
        check(doctor(path, tmp_path, split_side=flip), f, g)


@pytest.mark.parametrize(("key", "change", "match"), [
    ("proof_mu", lambda v: v - 1.0, "mu >= 0"),
    ("proof_deep_mu", lambda v: v - 1.0, "mu >= 0"),
    ("proof_deep_alpha", lambda v: v + 2.0, "outside"),
    ("range_alpha_f1", lambda v: v * 0 - 1.0, "outside"),
    ("range_lower_f2", lambda v: v + 2.0, "outside"),
    ("range_p_f1", lambda v: np.zeros((len(v), 3)), "shape"),
    ("range_alpha_f2", None, "range_alpha_f2"),
    ("proof_depth", lambda v: v + 100, "depth"),
    ("leaf_proof", lambda v: v + 10**6, "leaf_proof"),
    ("claim", lambda v: v * 0.5, "exceeds claim"),
    ("index_f", lambda v: v[::-1].copy(), "differ|index_g"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_doctored_certificate_is_rejected(written, tmp_path, key, change, match):
    path, f, g, _ = written
    with pytest.raises(CertificateError, match=match):
        check(doctor(path, tmp_path, **{key: change}), f, g)


def test_an_unexpected_range_key_is_rejected(written, tmp_path):
    _path, f, g, c = written
    np.savez(tmp_path / "extra.npz", **c, range_alpha_g9=c["range_alpha_f1"])
    with pytest.raises(CertificateError, match="unexpected"):
        check(tmp_path / "extra.npz", f, g)


def test_another_pruned_network_is_rejected(written):
    path, f, _g, _ = written
    other = deep_nets(5, wf=(4, 4, 3), wg=(3, 3))[1]
    with pytest.raises(CertificateError):
        check(path, f, other)


def test_changed_multipliers_still_give_a_true_bound(written, tmp_path):
    """Any multipliers are a proof of *some* bound: scaled ones are accepted
    with the recomputed bound as the claim, never below the truth."""
    path, f, g, _ = written
    loose = doctor(path, tmp_path, proof_mu=lambda v: 3.0 * v,
                   claim=lambda v: np.array(1e300))
    assert check(loose, f, g).max_leaf_bound >= grid_max(f, g, "ball")


def _planted(monkeypatch, bug: str):
    """A wrong constant in the search's bound code (not in the checker's)."""
    if bug == "intercept":  # the chord's intercept forgotten
        relax = deep._relax

        def wrong(lam, lo, hi, a, alpha):
            s, t, mag = relax(lam, lo, hi, a, alpha)
            return s, 0 * t, mag
        monkeypatch.setattr(deep, "_relax", wrong)
    else:  # the dual sign of a deeper split flipped: - mu side z >= 0
        substitute = deep._substitute

        def wrong(*args):
            args = list(args)
            if len(args) > 9 and args[9] is not None:  # sides
                args[9] = [-s for s in args[9]]
            return substitute(*args)
        monkeypatch.setattr(deep, "_substitute", wrong)


@pytest.mark.parametrize("bug", ["intercept", "dual-sign"])
def test_a_planted_wrong_constant_in_the_search_is_caught(tmp_path, monkeypatch, bug):
    """The search with the bug claims less than the truth (a false claim),
    and the independent checker refuses it."""
    f, g = deep_nets(0, wf=(4, 4, 3), wg=(3, 3))
    _planted(monkeypatch, bug)
    path, out = write(tmp_path, f, g, "ball", max_nodes=200)
    assert out.upper_bound < grid_max(f, g, "ball")  # the bug makes a false claim
    with np.load(path) as data:
        assert (data["split_neuron"] >= len(data["index_f"])).any() or bug == "intercept"
    with pytest.raises(CertificateError, match="exceeds claim"):
        check(path, f, g)


def test_the_leaf_bounds_are_the_search_s_to_rounding(written):
    """The checker recomputes each leaf where its proof was made: its bounds
    are the search's (the checker's margin is half the search's)."""
    path, f, g, c = written
    from coreset_verify.certificate import _common, _deep

    data, dims = _common.load(path)
    bounds = _deep.bounds(data, _deep.networks(data, dims, f, g))
    finite = np.isfinite(c["leaf_bound"])
    assert np.all(bounds[finite] <= c["leaf_bound"][finite])
    assert np.allclose(bounds[finite], c["leaf_bound"][finite], rtol=1e-6, atol=1e-6)
    assert not math.isnan(bounds.max())
