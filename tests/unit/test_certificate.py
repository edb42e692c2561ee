"""coreset_verify.certificate.check against hand-built certificates.

Every certificate here is written in the test from the format table of
proofs_notes/bab.md, with multipliers chosen by hand, and its claim computed by
a reference implementation of Lemma B1 written again below (loops, the
intercept as ``(a - q) L``, unwidened ranges). The true maximum comes from an
independent oracle: every activation pattern solved as a convex program by
cvxpy. A sound checker accepts a claim above the true maximum and must
reject any claim below it, whatever the multipliers.
"""

from __future__ import annotations

import itertools
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coreset_verify import CertificateError, InvalidArgumentError
from coreset_verify.certificate import FORMAT, CertificateCheck, check

torch = pytest.importorskip("torch")
cp = pytest.importorskip("cvxpy")
nn = torch.nn

BALL, BOX, BOTH = "ball", "box", "both"
LOWER, UPPER = -0.7, 0.9  # the box of BOX and BOTH, in every coordinate; the ball: beta = 1


# ----------------------------------------------------------------- the networks


class Pair:
    """Two one-hidden-layer networks sharing ``shared`` first-layer rows.

    The union layer lists the shared neurons, then those only in f, then those
    only in g; g holds its rows in another order, so index_g is a permutation.
    """

    def __init__(self, seed, *, d, shared, f_only, g_only, k, slope, domain):
        rng = np.random.default_rng(seed)
        n = shared + f_only + g_only
        W, b = rng.normal(size=(n, d)), 0.3 * rng.normal(size=n)
        order = rng.permutation(shared + g_only)  # g's row r holds union neuron g_rows[r]
        g_rows = np.r_[np.arange(shared), np.arange(shared + f_only, n)][order]
        self.index_f = np.r_[np.arange(shared + f_only), -np.ones(g_only, int)]
        self.index_g = -np.ones(n, int)
        self.index_g[g_rows] = np.arange(len(g_rows))
        self.Vf, self.Vg = rng.normal(size=(k, shared + f_only)), rng.normal(size=(k, len(g_rows)))
        self.of, self.og = 0.1 * rng.normal(size=k), 0.1 * rng.normal(size=k)
        self.f = _module(W[: shared + f_only], b[: shared + f_only], self.Vf, self.of, slope)
        self.g = _module(W[g_rows], b[g_rows], self.Vg, self.og, slope)
        self.W, self.b, self.a, self.slope, self.domain = W, b, np.full(n, slope), slope, domain
        self.scale = np.linspace(1.0, 2.0, k)
        F, G = self.index_f, self.index_g
        C = (np.where(F >= 0, self.Vf[:, F], 0) - np.where(G >= 0, self.Vg[:, G], 0))
        self.C, self.e = C / self.scale[:, None], (self.of - self.og) / self.scale
        self.beta = np.nan if domain == BOX else 1.0
        self.lower = np.full(d if domain != BALL else 0, LOWER)
        self.upper = np.full(d if domain != BALL else 0, UPPER)

    @property
    def n(self):
        return len(self.b)

    @property
    def d(self):
        return self.W.shape[1]

    def ranges(self):
        """Exact pre-activation ranges on the domain (no widening)."""
        lo, hi = np.full(self.n, -np.inf), np.full(self.n, np.inf)
        if self.domain != BOX:
            r = self.beta * np.sqrt((self.W ** 2).sum(1))
            lo, hi = self.b - r, self.b + r
        if self.domain != BALL:
            ends = np.stack([self.W * self.lower, self.W * self.upper])
            lo, hi = np.maximum(lo, self.b + ends.min(0).sum(1)), np.minimum(hi, self.b +
                                                                             ends.max(0).sum(1))
        return lo, hi

    def objective(self, x):
        """``max_i |f_i(x) - g_i(x)| / scale_i`` by the torch modules, float64."""
        with torch.no_grad():
            t = torch.as_tensor(np.atleast_2d(x))
            return ((self.f(t) - self.g(t)).abs().numpy() / self.scale).max(axis=1)


def _module(W, b, V, o, slope):
    act = nn.ReLU() if slope == 0 else nn.LeakyReLU(slope)
    model = nn.Sequential(nn.Linear(W.shape[1], len(b)), act, nn.Linear(len(b), len(o))).double()
    with torch.no_grad():
        for layer, (w, c) in zip((model[0], model[2]), ((W, b), (V, o)), strict=True):
            layer.weight.copy_(torch.as_tensor(w))
            layer.bias.copy_(torch.as_tensor(c))
    return model


def samples(pair, count=2000):
    """Random points of the domain (seeded)."""
    lo, hi = (pair.lower, pair.upper) if pair.domain != BALL else (-pair.beta, pair.beta)
    x = np.random.default_rng(0).uniform(lo, hi, (count, pair.d))
    keep = np.ones(count, bool)
    if pair.domain != BOX:
        keep &= np.linalg.norm(x, axis=1) <= pair.beta
    return x[keep]


def true_max(pair):
    """The exact maximum, every activation pattern solved by cvxpy (small n only)."""
    x, sgn, grad = cp.Variable(pair.d), cp.Parameter(pair.n), cp.Parameter(pair.d)
    cons = [cp.multiply(sgn, pair.W @ x + pair.b) >= 0]
    if pair.domain != BOX:
        cons.append(cp.norm(x) <= pair.beta)
    if pair.domain != BALL:
        cons += [x >= pair.lower, x <= pair.upper]
    problem = cp.Problem(cp.Maximize(grad @ x), cons)
    best = -np.inf
    for pattern in itertools.product((1.0, -1.0), repeat=pair.n):
        slope = np.where(np.array(pattern) > 0, 1.0, pair.a)
        for i, sigma in itertools.product(range(len(pair.e)), (1, -1)):
            lam = sigma * pair.C[i] * slope
            sgn.value, grad.value = np.array(pattern), pair.W.T @ lam
            value = problem.solve(solver=cp.CLARABEL)
            if problem.status == cp.OPTIMAL:
                best = max(best, value + lam @ pair.b + sigma * pair.e[i])
    return best


# ------------------------------------------------- the reference bound (Lemma B1)


def reference_bound(pair, leaf, *, flip=False, double=False):
    """Lemma B1 for one leaf, written apart from the checker. Planted errors:
    ``flip`` uses the wrong sign ``-mu s`` for the split multipliers, ``double``
    adds ``mu s b_j`` to ``t_j`` as well (counting it twice)."""
    i, sigma, splits, alpha, p = leaf
    c, e = sigma * pair.C[i], sigma * pair.e[i]
    L, U = pair.ranges()
    for j, s, _ in splits:
        L[j], U[j] = (max(L[j], 0), U[j]) if s > 0 else (L[j], min(U[j], 0))
    if np.any(L > U):
        return -np.inf
    lam, t = np.zeros(pair.n), np.zeros(pair.n)
    for j in range(pair.n):
        a = pair.a[j]
        if L[j] >= 0:
            lam[j] = c[j]
        elif U[j] <= 0:
            lam[j] = a * c[j]
        elif c[j] >= 0:
            q = (U[j] - a * L[j]) / (U[j] - L[j])
            lam[j], t[j] = c[j] * q, c[j] * (a - q) * L[j]
        else:
            lam[j] = c[j] * alpha[j]
    for j, s, mu in splits:  # + mu s z_j(x) >= 0: its constant mu s b_j enters via lam . b
        lam[j] += (-1 if flip else 1) * mu * s
        t[j] += mu * s * pair.b[j] if double else 0.0
    A, K = pair.W.T @ lam, lam @ pair.b + t.sum() + e
    if pair.domain == BALL:
        return pair.beta * np.linalg.norm(A) + K
    if pair.domain == BOX:
        return np.maximum(A * pair.lower, A * pair.upper).sum() + K
    return (pair.beta * np.linalg.norm(A - p) + np.maximum(p * pair.lower, p * pair.upper).sum()
            + K)


def arrays(pair, leaves, claim):
    """The certificate's arrays, exactly as the format table of bab.md lists them."""
    sizes = [len(leaf[2]) for leaf in leaves]
    splits = [split for leaf in leaves for split in leaf[2]]
    dp = pair.d if pair.domain == BOTH else 0
    return {
        "format": np.array(FORMAT),
        "claim": np.array(float(claim)),
        "beta": np.array(pair.beta),
        "lower": pair.lower.copy(),
        "upper": pair.upper.copy(),
        "scale": pair.scale.copy(),
        "index_f": pair.index_f.astype(np.int64),
        "index_g": pair.index_g.astype(np.int64),
        "leaf_output": np.array([leaf[0] for leaf in leaves], np.int64),
        "leaf_sign": np.array([leaf[1] for leaf in leaves], np.int64),
        "split_offsets": np.r_[0, np.cumsum(sizes)].astype(np.int64),
        "split_neuron": np.array([s[0] for s in splits], np.int64).reshape(-1),
        "split_side": np.array([s[1] for s in splits], np.int64).reshape(-1),
        "split_mu": np.array([s[2] for s in splits], np.float64).reshape(-1),
        "alpha": np.array([leaf[3] for leaf in leaves], np.float64),
        "box_p": np.array([leaf[4][:dp] for leaf in leaves], np.float64).reshape(len(leaves), dp),
        "leaf_bound": np.array([reference_bound(pair, leaf) for leaf in leaves]),
    }


def root_leaves(pair, alpha, p=None):
    """One leaf without splits per specification."""
    p = np.zeros(pair.d) if p is None else p
    return [(i, s, [], alpha, p) for i in range(len(pair.e)) for s in (1, -1)]


def tree_leaves(pair, alpha, p=None):
    """Output 0, sign +1: a depth-2 tree (split 0, then 1 on its +1 side), mu by hand;
    every other specification: a root leaf."""
    p = np.zeros(pair.d) if p is None else p
    tree = [(0, 1, [(0, 1, 0.25), (1, 1, 0.0)], alpha, p),
            (0, 1, [(0, 1, 0.1), (1, -1, 0.5)], alpha, p),
            (0, 1, [(0, -1, 0.05)], alpha, p)]
    return tree + root_leaves(pair, alpha, p)[1:]


def claim_of(pair, leaves):
    """Largest reference bound, raised by far more than Lemma B2's margin."""
    top = max(reference_bound(pair, leaf) for leaf in leaves)
    return top + 1e-6 * (1 + abs(top))


def save(tmp_path, a, name="cert.npz"):
    path = tmp_path / name
    np.savez(path, **a)
    return path


# ------------------------------------------------------------------ acceptance


CASES = [
    pytest.param(dict(d=2, shared=1, f_only=1, g_only=0, k=1, slope=0.0, domain=BALL),
                 id="d2-n2-k1-relu-ball"),
    pytest.param(dict(d=3, shared=2, f_only=1, g_only=1, k=2, slope=0.1, domain=BALL),
                 id="d3-n4-k2-leaky-ball"),
    pytest.param(dict(d=2, shared=2, f_only=0, g_only=1, k=1, slope=0.0, domain=BOX),
                 id="d2-n3-k1-relu-box"),
    pytest.param(dict(d=4, shared=2, f_only=2, g_only=1, k=1, slope=0.1, domain=BOTH),
                 id="d4-n5-k1-leaky-both"),
    pytest.param(dict(d=3, shared=1, f_only=1, g_only=1, k=2, slope=0.0, domain=BOTH),
                 id="d3-n3-k2-relu-both"),
]


@pytest.mark.parametrize("shape", CASES)
@pytest.mark.parametrize("build", [root_leaves, tree_leaves], ids=["root", "tree"])
def test_valid_certificate_is_accepted_and_above_the_true_max(tmp_path, shape, build):
    pair = Pair(7, **shape)
    alpha = (pair.a + 1) / 2
    p = 0.5 * pair.W.T @ pair.C[0] if pair.domain == BOTH else None
    leaves = build(pair, alpha, p)
    claim = claim_of(pair, leaves)
    truth = true_max(pair)
    assert pair.objective(samples(pair)).max() <= truth + 1e-7  # the oracle bounds samples
    assert claim >= truth - 1e-9  # a sound bound formula
    result = check(save(tmp_path, arrays(pair, leaves, claim)), pair.f, pair.g,
                   beta=None if pair.domain == BOX else 1.0,
                   lower=None if pair.domain == BALL else LOWER,
                   upper=None if pair.domain == BALL else UPPER, scale=pair.scale)
    assert isinstance(result, CertificateCheck)
    assert result.upper_bound == claim
    assert (result.leaves, result.specifications) == (len(leaves), 2 * len(pair.e))
    top = max(reference_bound(pair, leaf) for leaf in leaves)
    assert top <= result.max_leaf_bound <= claim
    assert result.max_leaf_bound == pytest.approx(top, rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("shape", CASES[1:4])
def test_claim_below_the_true_max_is_rejected(tmp_path, shape):
    pair = Pair(7, **shape)
    leaves = tree_leaves(pair, (pair.a + 1) / 2)
    truth = true_max(pair)
    claim = truth - 1e-3 * (1 + abs(truth))
    with pytest.raises(CertificateError, match=r"leaf \d+ \(output \d, sign [+-]1\): recomputed"):
        check(save(tmp_path, arrays(pair, leaves, claim)), pair.f, pair.g)


# --------------------------------------------------------- the planted sign error


def _sign_pair():
    """f(x) = relu(x_0) on the unit disc, g = 0 (its one neuron has weight 0): max 1 at
    x = (1, 0)."""
    pair = Pair(0, d=2, shared=0, f_only=1, g_only=1, k=1, slope=0.0, domain=BALL)
    pair.W[:], pair.b[:], pair.Vf[:], pair.Vg[:], pair.of[:], pair.og[:] = (
        np.eye(2), 0, 1, 0, 0, 0)
    pair.f, pair.g = (_module(pair.W[:1], pair.b[:1], pair.Vf, pair.of, 0.0),
                      _module(pair.W[1:], pair.b[1:], pair.Vg, pair.og, 0.0))
    pair.scale[:] = 1.0
    pair.C, pair.e = np.array([[1.0, 0.0]]), np.zeros(1)
    return pair


def _sign_leaves(mu):
    zero = np.zeros(2)
    return [(0, 1, [(0, 1, mu)], zero, zero), (0, 1, [(0, -1, 0.0)], zero, zero),
            (0, -1, [], zero, zero)]


def test_known_answer_tight_certificate(tmp_path):
    pair = _sign_pair()
    assert true_max(pair) == pytest.approx(1.0, abs=1e-7)
    leaves = _sign_leaves(0.0)
    assert [reference_bound(pair, leaf) for leaf in leaves] == [1.0, 0.0, 0.0]
    result = check(save(tmp_path, arrays(pair, leaves, 1.0 + 1e-8)), pair.f, pair.g, beta=1)
    assert result.max_leaf_bound == pytest.approx(1.0, abs=1e-8)
    with pytest.raises(CertificateError, match=r"leaf 0 \(output 0, sign \+1\)"):
        check(save(tmp_path, arrays(pair, leaves, 1.0 - 1e-6), "low.npz"), pair.f, pair.g)


def test_wrong_dual_sign_would_accept_a_false_claim_and_is_caught(tmp_path):
    """With ``-mu s`` the leaf x_0 >= 0 would be bounded by |1 - mu| = 0.5 < 1, the
    true maximum; the correct ``+mu s`` gives 1 + mu = 1.5. The checker must reject."""
    pair = _sign_pair()
    leaves = _sign_leaves(0.5)
    wrong = max(reference_bound(pair, leaf, flip=True) for leaf in leaves)
    assert wrong == pytest.approx(0.5, abs=1e-12)
    claim = wrong + 1e-6
    assert claim < true_max(pair) - 0.4  # a false claim ...
    assert reference_bound(pair, leaves[0]) == pytest.approx(1.5, abs=1e-12)
    with pytest.raises(CertificateError, match=r"leaf 0 .*recomputed bound 1\.5"):
        check(save(tmp_path, arrays(pair, leaves, claim)), pair.f, pair.g)  # ... rejected
    check(save(tmp_path, arrays(pair, leaves, 1.5 + 1e-6), "ok.npz"), pair.f, pair.g)


def test_split_constant_counted_twice_would_accept_a_false_claim_and_is_caught(tmp_path):
    """bab.md's "t_j += mu s b_j" next to "lambda_j += mu s" counts mu s b_j twice
    (lambda . b holds it already). On the box [1.6, 2] x [-1, 1], f = relu(x_0) = x_0
    (max 2) and a split of z_B = x_0 - 1.5 > 0 with mu = 1: counted twice, the leaf
    would be bounded by 2 + 0.5 - 1.5 = 1 < 2; once, by 2.5."""
    pair = Pair(0, d=2, shared=0, f_only=2, g_only=1, k=1, slope=0.0, domain=BOX)
    pair.lower, pair.upper = np.array([1.6, -1.0]), np.array([2.0, 1.0])
    pair.W[:], pair.b[:] = [[1, 0], [1, 0], [0, 1]], [0, -1.5, 0]
    pair.Vf[:], pair.Vg[:], pair.of[:], pair.og[:], pair.scale[:] = [[1, 0]], 0, 0, 0, 1
    pair.f = _module(pair.W[:2], pair.b[:2], pair.Vf, pair.of, 0.0)
    pair.g = _module(pair.W[2:], pair.b[2:], pair.Vg, pair.og, 0.0)
    pair.C, pair.e = np.array([[1.0, 0.0, 0.0]]), np.zeros(1)
    zero = np.zeros(3)
    leaves = [(0, 1, [(1, 1, 1.0)], zero, zero), (0, 1, [(1, -1, 0.0)], zero, zero),
              (0, -1, [], zero, zero)]
    assert true_max(pair) == pytest.approx(2.0, abs=1e-7)
    twice = [reference_bound(pair, leaf, double=True) for leaf in leaves]
    assert twice == pytest.approx([1.0, -np.inf, -1.6], abs=1e-12)  # would "prove" 1 < 2
    assert reference_bound(pair, leaves[0]) == pytest.approx(2.5, abs=1e-12)
    with pytest.raises(CertificateError, match=r"leaf 0 .*recomputed bound 2\.5"):
        check(save(tmp_path, arrays(pair, leaves, 1.0 + 1e-6)), pair.f, pair.g)
    check(save(tmp_path, arrays(pair, leaves, 2.5 + 1e-6), "ok.npz"), pair.f, pair.g)


# ------------------------------------------------------------ doctored certificates


def _base():
    pair = Pair(7, d=3, shared=2, f_only=1, g_only=1, k=2, slope=0.1, domain=BOTH)
    leaves = tree_leaves(pair, (pair.a + 1) / 2, 0.5 * pair.W.T @ pair.C[0])
    return pair, leaves, claim_of(pair, leaves)


def _leaves(change):
    """A mutation that edits the leaves (copies) and writes the certificate again."""
    def mutate(a, pair, leaves):
        copies = [(i, s, list(sp), al.copy(), p.copy()) for i, s, sp, al, p in leaves]
        return arrays(pair, change(copies), float(a["claim"]))
    return mutate


def _set(key, value, at=...):
    def mutate(a, pair, leaves):
        a[key] = a[key].copy()
        a[key][at] = value
        return a
    return mutate


def _replace(**new):
    def mutate(a, pair, leaves):
        return {**a, **{k: v(a) if callable(v) else v for k, v in new.items()}}
    return mutate


def _split(leaf, k, split):
    def change(leaves):
        leaves[leaf][2][k] = split
        return leaves
    return change


def _raise_bound_by_alpha(a, pair, leaves):
    """Move one alpha inside [a_j, 1] so that its leaf's bound exceeds the claim."""
    claim = float(a["claim"])
    for leaf, j, value in itertools.product(range(len(leaves)), range(pair.n), (0.1, 1.0)):
        i, s, sp, al, p = leaves[leaf]
        al = al.copy()
        al[j] = value
        if reference_bound(pair, (i, s, sp, al, p)) > claim + 1e-3:
            a["alpha"] = a["alpha"].copy()
            a["alpha"][leaf, j] = value
            return a
    raise AssertionError("no alpha in [a, 1] raises a bound above the claim")


def _drop(key):
    def mutate(a, pair, leaves):
        return {k: v for k, v in a.items() if k != key}
    return mutate


_NOT_FINITE = [pytest.param(_set(key, np.nan, at), "is not (finite|a number)", id=f"nan-{key}")
               for key, at in (("claim", ()), ("lower", 1), ("upper", 0), ("scale", 1),
                               ("split_mu", 2), ("alpha", (3, 1)), ("box_p", (0, 2)),
                               ("leaf_bound", 4))]
DOCTORED = [
    pytest.param(_leaves(lambda ls: ls[:1] + ls[2:]),
                 r"leaves do not cover the domain: no leaf for output 0 sign \+1, split path "
                 r"\[\(0, 1\), \(1, -1\)\]", id="leaf-removed"),
    pytest.param(_leaves(lambda ls: ls[:-1]), "no leaf for output 1 sign -1",
                 id="specification-missing"),
    pytest.param(_leaves(_split(1, 1, (1, 1, 0.5))), "do not cover|overlap",
                 id="split-side-flipped"),
    pytest.param(_leaves(_split(2, 0, (0, 1, 0.05))), "do not cover|overlap",
                 id="root-split-flipped"),
    pytest.param(_leaves(lambda ls: [*ls, ls[3]]), "overlap", id="leaf-duplicated"),
    pytest.param(_leaves(lambda ls: _split(1, 1, (0, -1, 0.5))(_split(0, 1, (0, 1, 0.0))(ls))),
                 r"neuron 0 is split twice", id="neuron-split-twice"),
    pytest.param(_leaves(_split(1, 1, (2, -1, 0.5))), "split different neurons",
                 id="different-next-splits"),
    pytest.param(_set("split_mu", -0.1, 0), r"split_mu\[0\] = -0.1; expected mu >= 0",
                 id="mu-negative"),
    pytest.param(_set("split_mu", 50.0, 1), "exceeds claim", id="mu-changed"),
    pytest.param(_set("box_p", 10.0), "exceeds claim", id="box_p-changed"),
    pytest.param(_set("alpha", 1.5), r"alpha\[\d, \d\] = 1.5 outside \[0.1, 1\]",
                 id="alpha-above-one"),
    pytest.param(_set("alpha", 0.05), r"alpha\[\d, \d\] = 0.05 outside \[0.1, 1\]",
                 id="alpha-below-slope"),
    pytest.param(_raise_bound_by_alpha, "exceeds claim", id="alpha-changed"),
    pytest.param(_replace(claim=lambda a: np.array(a["leaf_bound"].max() * (1 - 1e-7) - 1e-7)),
                 r"recomputed bound .* exceeds claim", id="claim-lowered"),
    pytest.param(_replace(index_f=lambda a: a["index_f"][[1, 0, 2, 3]]),
                 "pairs neuron 1 of original with neuron", id="index_f-pairs-different-rows"),
    pytest.param(_set("index_f", 0, 2),
                 r"count\[0\] = 2; expected 1: index_f lists each neuron of original once",
                 id="neuron-listed-twice"),
    pytest.param(_set("index_g", 7, 3), r"index_g\[3\] = 7; expected -1 or a neuron of pruned",
                 id="index-out-of-range"),
    pytest.param(_replace(index_f=lambda a: np.r_[a["index_f"], -1],
                          index_g=lambda a: np.r_[a["index_g"], -1],
                          alpha=lambda a: np.c_[a["alpha"], np.ones(len(a["alpha"]))]),
                 r"index_g\[4\] = -1; expected a neuron where index_f is -1",
                 id="neuron-of-neither-network"),
    pytest.param(_replace(lower=np.full(4, LOWER), upper=np.full(4, UPPER),
                          box_p=lambda a: np.c_[a["box_p"], np.zeros(len(a["box_p"]))]),
                 r"a box in R\^4", id="wrong-d"),
    pytest.param(_replace(scale=np.ones(3)), "certificate is for k = 3", id="wrong-k"),
    pytest.param(_set("leaf_output", 2, 5), r"leaf_output\[5\] = 2", id="output-out-of-range"),
    pytest.param(_set("leaf_sign", 0, 3), r"leaf_sign\[3\] = 0; expected \+1 or -1",
                 id="sign-zero"),
    pytest.param(_set("split_neuron", 4, 0), r"split_neuron\[0\] = 4", id="neuron-out-of-range"),
    pytest.param(_replace(split_offsets=lambda a: a["split_offsets"][[0, 2, 1, *range(3, 7)]]),
                 "split_offsets must rise", id="offsets-not-rising"),
    *_NOT_FINITE,
    pytest.param(_replace(claim=np.array(np.inf)), "is not finite", id="inf-claim"),
    pytest.param(_replace(beta=np.array(np.nan)), r"box_p has shape", id="nan-beta"),
    pytest.param(_replace(beta=np.array(-1.0)), r"beta = -1.0 must be a finite number > 0",
                 id="negative-beta"),
    pytest.param(_replace(beta=np.array(np.nan), lower=np.zeros(0), upper=np.zeros(0),
                          box_p=lambda a: np.zeros((len(a["box_p"]), 0))),
                 "beta = nan must be .* or nan .no ball. when lower and upper give a box",
                 id="no-domain"),
    pytest.param(_set("lower", 1.0, 0), r"lower\[0\] = 1.0; expected lower <= upper",
                 id="lower-above-upper"),
    pytest.param(_set("scale", 0.0, 0), r"scale\[0\] = 0.0; expected scale > 0", id="scale-0"),
    pytest.param(_replace(alpha=lambda a: a["alpha"].astype(np.float16)),
                 "alpha has dtype float16, expected float64", id="alpha-float16"),
    pytest.param(_replace(alpha=lambda a: a["alpha"].astype(np.float32)),
                 "alpha has dtype float32", id="alpha-float32"),
    pytest.param(_replace(index_f=lambda a: a["index_f"].astype(np.int32)),
                 "index_f has dtype int32, expected int64", id="index-int32"),
    pytest.param(_replace(split_side=lambda a: a["split_side"].astype(np.float64)),
                 "split_side has dtype float64", id="side-float64"),
    pytest.param(_replace(claim=np.array(1, np.int64)), "claim has dtype int64", id="claim-int"),
    pytest.param(_replace(alpha=lambda a: a["alpha"].astype(object)), "not a readable",
                 id="object-array"),
    pytest.param(_replace(format=np.array("coreset-verify/one-hidden-layer/2")), "format is",
                 id="format-version"),
    pytest.param(_replace(format=np.array(FORMAT.encode())), "format is", id="format-bytes"),
    pytest.param(_replace(format=np.array([FORMAT])), "format is", id="format-1d"),
    pytest.param(_drop("leaf_bound"), r"missing \['leaf_bound'\]", id="missing-key"),
    pytest.param(_replace(extra=np.zeros(1)), r"unexpected \['extra'\]", id="extra-key"),
    pytest.param(_replace(alpha=lambda a: a["alpha"][:, :3]), r"alpha has shape \(6, 3\), "
                 r"expected \(6, 4\)$", id="alpha-shape"),
    pytest.param(_replace(claim=np.array([1.0])), r"claim has shape \(1,\)", id="claim-shape"),
    pytest.param(_replace(lower=np.zeros((3, 1))), r"lower has shape \(3, 1\), expected \(d,\)",
                 id="lower-2d"),
]


@pytest.mark.parametrize(("mutate", "match"), DOCTORED)
def test_doctored_certificate_is_rejected(tmp_path, mutate, match):
    pair, leaves, claim = _base()
    base = arrays(pair, leaves, claim)
    check(save(tmp_path, base, "base.npz"), pair.f, pair.g)  # the base is valid
    with pytest.raises(CertificateError, match=match):
        check(save(tmp_path, mutate(dict(base), pair, leaves)), pair.f, pair.g)


def _valid_bytes(tmp_path):
    pair, leaves, claim = _base()
    return save(tmp_path, arrays(pair, leaves, claim), "valid.npz").read_bytes()


def _corrupt(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


BAD_FILES = [
    pytest.param(lambda v: b"claim = 0.5\nbeta = 1\n", id="text-file"),
    pytest.param(lambda v: b"", id="empty-file"),
    pytest.param(lambda v: pickle.dumps({"claim": 0.5}), id="pickle"),
    pytest.param(lambda v: v[: len(v) // 2], id="truncated"),
    pytest.param(lambda v: v[:-30], id="truncated-directory"),
    pytest.param(_corrupt, id="corrupted-byte"),
]


@pytest.mark.parametrize("content", BAD_FILES)
def test_unreadable_file_is_a_certificate_error(tmp_path, content):
    pair, _, _ = _base()
    path = tmp_path / "bad.npz"
    path.write_bytes(content(_valid_bytes(tmp_path)))
    with pytest.raises(CertificateError):
        check(path, pair.f, pair.g)


def test_npy_file_is_not_a_certificate(tmp_path):
    pair, _, _ = _base()
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(CertificateError, match=r"single ndarray, not an \.npz"):
        check(tmp_path / "one.npy", pair.f, pair.g)


# ---------------------------------------------- the models and the question asked


def _sequential(*layers):
    return nn.Sequential(*layers).double()


MODELS = [
    pytest.param(lambda p: _sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3),
                                       nn.ReLU(), nn.Linear(3, 2)), id="two-hidden-layers"),
    pytest.param(lambda p: _sequential(nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2)),
                 id="sigmoid"),
    pytest.param(lambda p: _sequential(*p.f, nn.ReLU()), id="output-activation"),
    pytest.param(lambda p: _sequential(nn.Linear(3, 2)), id="no-hidden-layer"),
    pytest.param(lambda p: _sequential(nn.Linear(3, 3), nn.LeakyReLU(1.5), nn.Linear(3, 2)),
                 id="slope-above-1"),
]


@pytest.mark.parametrize("model", MODELS)
def test_model_of_another_shape_is_a_certificate_error(tmp_path, model):
    pair, leaves, claim = _base()
    path = save(tmp_path, arrays(pair, leaves, claim))
    with pytest.raises(CertificateError, match="original must read as Linear -> ReLU or LeakyReLU"):
        check(path, model(pair), pair.g)


def test_models_that_do_not_match_the_certificate(tmp_path):
    pair, leaves, claim = _base()
    path = save(tmp_path, arrays(pair, leaves, claim))
    wide = _sequential(nn.Linear(4, 3), nn.LeakyReLU(0.1), nn.Linear(3, 2))
    with pytest.raises(CertificateError, match=r"the models map R\^3 and R\^4"):
        check(path, pair.f, wide)
    relu = _module(pair.W[:3], pair.b[:3], pair.Vf, pair.of, 0.0)
    with pytest.raises(CertificateError, match=r"pair neurons of slopes 0\.0 and 0\.1"):
        check(path, relu, pair.g)
    other = Pair(8, d=3, shared=2, f_only=1, g_only=1, k=2, slope=0.1, domain=BOTH)
    with pytest.raises(CertificateError, match="whose rows or biases differ"):
        check(path, other.f, pair.g)


ASKED = [
    pytest.param({"beta": 2.0}, r"domain \(beta 1.0, box True\) is not the one asked about "
                 r"\(beta 2.0, box False\)", id="other-beta"),
    pytest.param({"beta": 1.0}, r"asked about \(beta 1.0, box False\)",
                 id="ball-asked-box-certified"),
    pytest.param({"lower": LOWER, "upper": UPPER}, r"asked about \(beta nan, box True\)",
                 id="box-asked-ball-certified"),
    pytest.param({"beta": 1.0, "lower": -0.5, "upper": UPPER}, r"lower\[0\] = -0.7; expected "
                 "the lower asked about", id="other-lower"),
    pytest.param({"scale": 1.0}, r"scale\[1\] = 2.0; expected the scale asked", id="other-scale"),
]


@pytest.mark.parametrize(("asked", "match"), ASKED)
def test_other_question_is_a_certificate_error(tmp_path, asked, match):
    pair, leaves, claim = _base()
    path = save(tmp_path, arrays(pair, leaves, claim))
    with pytest.raises(CertificateError, match=match):
        check(path, pair.f, pair.g, **asked)


def test_same_question_in_other_spellings_is_accepted(tmp_path):
    pair, leaves, claim = _base()
    path = save(tmp_path, arrays(pair, leaves, claim))
    result = check(str(path), pair.f, pair.g, beta=1, lower=np.full(3, LOWER),
                   upper=torch.full((3,), UPPER, dtype=torch.float64), scale=list(pair.scale))
    assert result.upper_bound == claim


BAD_ARGUMENTS = [
    pytest.param(lambda p, m: check(3, m.f, m.g), "'path'", id="path-int"),
    pytest.param(lambda p, m: check(None, m.f, m.g), "'path'", id="path-None"),
    pytest.param(lambda p, m: check(p.parent / "missing.npz", m.f, m.g), "existing",
                 id="path-missing"),
    pytest.param(lambda p, m: check(p.parent, m.f, m.g), "existing", id="path-directory"),
    pytest.param(lambda p, m: check(p, "model", m.g), "'original'", id="original-str"),
    pytest.param(lambda p, m: check(p, m.f, None), "'pruned'", id="pruned-None"),
    pytest.param(lambda p, m: check(p, m.f, m.g, beta=-1.0), "'beta'", id="beta-negative"),
    pytest.param(lambda p, m: check(p, m.f, m.g, beta=1.0, lower=0.0), "'upper'",
                 id="lower-without-upper"),
    pytest.param(lambda p, m: check(p, m.f, m.g, scale=np.ones(5)), "'scale'",
                 id="scale-shape"),
    pytest.param(lambda p, m: check(p, m.f, m.g, scale=np.nan), "'scale'", id="scale-nan"),
    pytest.param(lambda p, m: check(p, m.f, m.g, beta=1.0, lower="a", upper=UPPER), "'lower'",
                 id="lower-str"),
]


@pytest.mark.parametrize(("call", "match"), BAD_ARGUMENTS)
def test_bad_argument_is_an_invalid_argument_error(tmp_path, call, match):
    pair, leaves, claim = _base()
    path = save(tmp_path, arrays(pair, leaves, claim))
    with pytest.raises(InvalidArgumentError, match=match) as info:
        call(path, pair)
    assert not isinstance(info.value, CertificateError)


# ------------------------------------------------- optional ranges, empty leaves


def _with_ranges(a, pair, lo, hi):
    return {**a, "lo": lo, "hi": hi}


def test_search_ranges_containing_the_checker_s_are_used(tmp_path):
    pair, leaves, claim = _base()
    lo, hi = pair.ranges()
    pad = 1e-9 * (np.abs(lo) + np.abs(hi))  # as the search pads its ranges
    a = _with_ranges(arrays(pair, leaves, claim), pair, lo - pad, hi + pad)
    result = check(save(tmp_path, a), pair.f, pair.g)
    top = max(reference_bound(pair, leaf) for leaf in leaves)
    assert result.max_leaf_bound == pytest.approx(top, rel=1e-7, abs=1e-7)


RANGES = [
    pytest.param(lambda lo, hi: (lo + 1e-6, hi), "does not contain the checker's",
                 id="lo-too-high"),
    pytest.param(lambda lo, hi: (lo, hi - 1e-6), "does not contain the checker's",
                 id="hi-too-low"),
    pytest.param(lambda lo, hi: (np.where(np.arange(len(lo)) == 1, np.nan, lo), hi),
                 r"lo\[1\] = nan is not a number", id="lo-nan"),
    pytest.param(lambda lo, hi: (lo - 1.0, hi[:2]), r"hi has shape \(2,\), expected \(4,\)",
                 id="hi-shape"),
    pytest.param(lambda lo, hi: (lo - 1.0, hi.astype(np.float32)), "hi has dtype float32",
                 id="hi-float32"),
    pytest.param(lambda lo, hi: (np.full(len(lo), -np.inf), hi + 1.0), "recomputed bound (nan|inf)",
                 id="lo-infinite"),
]


@pytest.mark.parametrize(("change", "match"), RANGES)
def test_bad_search_ranges_are_rejected(tmp_path, change, match):
    pair, leaves, claim = _base()
    lo, hi = pair.ranges()
    a = _with_ranges(arrays(pair, leaves, claim), pair, *change(lo - 1e-9, hi + 1e-9))
    with pytest.raises(CertificateError, match=match):
        check(save(tmp_path, a), pair.f, pair.g)


def test_lo_without_hi_is_rejected(tmp_path):
    pair, leaves, claim = _base()
    a = {**arrays(pair, leaves, claim), "lo": pair.ranges()[0] - 1.0}
    with pytest.raises(CertificateError, match=r"missing \['hi'\]"):
        check(save(tmp_path, a), pair.f, pair.g)


def test_empty_leaf_is_bounded_by_anything_and_its_alpha_is_not_read(tmp_path):
    """g's neuron z = x_1 + 2 >= 1 on the unit disc: the leaf that splits it off is empty."""
    pair = _sign_pair()
    pair.b[1] = 2.0
    pair.g = _module(pair.W[1:], pair.b[1:], pair.Vg, pair.og, 0.0)
    zero, wild = np.zeros(2), np.full(2, 7.0)
    leaves = [(0, 1, [], zero, zero), (0, -1, [(1, 1, 0.0)], zero, zero),
              (0, -1, [(1, -1, 0.3)], wild, zero)]
    a = arrays(pair, leaves, 1.0 + 1e-8)
    assert a["leaf_bound"][2] == -np.inf  # the search writes -inf there
    result = check(save(tmp_path, a), pair.f, pair.g, beta=1.0)
    assert result.max_leaf_bound == pytest.approx(1.0, abs=1e-8)
    a["alpha"][1] = 7.0  # ... but a non-empty leaf's alpha is read
    with pytest.raises(CertificateError, match=r"alpha\[1, 0\] = 7.0 outside \[0.0, 1\]"):
        check(save(tmp_path, a, "read.npz"), pair.f, pair.g)


# ---------------------------------------------------------------- property


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), domain=st.sampled_from([BALL, BOX, BOTH]),
       slope=st.sampled_from([0.0, 0.1]), k=st.integers(1, 2))
def test_accepted_claims_are_never_beaten_by_sampled_inputs(tmp_path_factory, seed, domain,
                                                            slope, k):
    """Random multipliers (alpha in [a, 1], mu >= 0, p) and a depth-1 tree per
    specification: the claim the checker accepts is above every sampled input."""
    rng = np.random.default_rng(seed)
    pair = Pair(seed, d=3, shared=2, f_only=1, g_only=1, k=k, slope=slope, domain=domain)
    leaves = []
    for i, sigma in itertools.product(range(k), (1, -1)):
        j = int(rng.integers(pair.n))
        for side in (1, -1):
            alpha = rng.uniform(pair.a, 1.0)
            leaves.append((i, sigma, [(j, side, float(rng.exponential(0.3)))], alpha,
                           rng.normal(size=pair.d)))
    claim = claim_of(pair, leaves)
    path = save(tmp_path_factory.mktemp("cert"), arrays(pair, leaves, claim))
    assert check(path, pair.f, pair.g).upper_bound == claim
    assert pair.objective(samples(pair, 500)).max() <= claim


def test_the_checker_imports_nothing_from_the_search():
    """The point of the checker is an independent re-check (issue 9)."""
    code = ("import sys, coreset_verify.certificate; "
            "print([m for m in sys.modules if m.startswith('coreset_verify.search')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
