"""``coreset-verify worst-case ORIGINAL PRUNED`` and ``audit --pruner``, end to end.

In-process through ``main(argv)`` on tiny MLPs saved with ``save_model``. The
truth is measured in the test: the saved input is fed to both models with
torch in float64, sampled inputs of the domain never exceed the certified
bound, and a certificate is re-checked here against models loaded afresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils import prune as tprune  # noqa: E402

from coreset_verify.cli import main  # noqa: E402
from coreset_verify.models import mlp  # noqa: E402
from coreset_verify.network import load_model, prune_network, save_model  # noqa: E402

HERE = Path(__file__).parent
CENTER = np.array([0.5, -0.25, 0.125, 0.75])


@pytest.fixture(scope="module", name="files")
def _files(tmp_path_factory) -> dict[str, str]:
    """Model pairs and bad inputs, by name."""
    tmp = tmp_path_factory.mktemp("worst_case")
    net, deep = mlp([4, 6, 3], seed=0), mlp([4, 8, 6, 3], seed=0)
    masked = mlp([4, 6, 3], seed=0)
    tprune.l1_unstructured(masked[0], "weight", amount=0.5)
    tprune.ln_structured(masked[2], "weight", amount=0.34, n=2, dim=1)
    models = {"A": net, "B": prune_network(net, keep=0.5, beta=1.0, rng=0).model,
              "DEEP": deep, "DEEP_B": prune_network(deep, keep=0.5, beta=1.0, rng=0).model,
              "IN5": mlp([5, 6, 3], seed=1), "OUT2": mlp([4, 6, 2], seed=1)}
    for name, model in models.items():
        save_model(model, tmp / f"{name}.pt")
    torch.save(masked, tmp / "MASKED.pt")  # torch.nn.utils.prune hooks and all
    torch.save(masked.state_dict(), tmp / "MASKED_SD.pt")  # 0.weight_orig, 0.weight_mask
    torch.save(torch.nn.Sequential(*mlp([4, 6, 3], seed=1), torch.nn.Softmax(dim=1)),
               tmp / "SOFTMAX.pt")
    np.save(tmp / "C.npy", CENTER)
    np.save(tmp / "C5.npy", np.zeros(5))
    np.save(tmp / "C22.npy", CENTER.reshape(2, 2))
    np.save(tmp / "CINT.npy", np.zeros(4, dtype=np.int64))
    np.save(tmp / "CNAN.npy", np.array([0.0, np.nan, 0.0, 0.0]))
    (tmp / "DIR").mkdir()
    names = [*models, "MASKED", "MASKED_SD", "SOFTMAX"]
    return {**{n: str(tmp / f"{n}.pt") for n in names},
            **{n: str(tmp / f"{n}.npy") for n in ("C", "C5", "C22", "CINT", "CNAN")},
            "DIR": str(tmp / "DIR"), "MISSING": str(tmp / "missing.pt")}


def run(capsys, argv: list[str], files: dict[str, str]) -> tuple[int, str, str]:
    """``main(argv)`` with the names of ``files`` replaced by their paths."""
    try:
        code = main([files.get(a, a) for a in argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line(err: str, command: str, match: str) -> None:
    """``err`` is one line ``coreset-verify COMMAND: error: ...`` holding ``match``."""
    assert err.startswith(f"coreset-verify {command}: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert match in err


def largest_error(original: str, pruned: str, x: np.ndarray) -> float:
    """``max_i |f_i(x) - g_i(x)|`` of the saved models, in float64, by torch."""
    with torch.no_grad():
        f, g = (load_model(p).double() for p in (original, pruned))
        xt = torch.as_tensor(x, dtype=torch.float64).reshape(-1, 4)
        return float((f(xt) - g(xt)).abs().amax())


def in_domain(x: np.ndarray, beta, box, center) -> bool:
    shift = x - (0 if center is None else center)
    ok = beta is None or np.linalg.norm(shift, axis=-1).max() <= beta * (1 + 1e-9)
    return bool(ok and (box is None or (x.min() >= box[0] - 1e-12
                                        and x.max() <= box[1] + 1e-12)))


def samples(beta, box, center, n=4000, seed=0) -> np.ndarray:
    """Inputs of the domain (inside, on the sphere, the box's corners, clipped)."""
    gen = np.random.default_rng(seed)
    u = gen.normal(size=(n, 4))
    u *= (beta or 2.0) / np.linalg.norm(u, axis=1, keepdims=True)
    u[: n // 2] *= gen.uniform(size=(n // 2, 1)) ** 0.25
    x = u + (0 if center is None else center)
    if box is not None:
        x = np.clip(x, *box)
    return x[[in_domain(row, beta, box, center) for row in x]]


DOMAINS = [
    pytest.param(["--beta", "1"], 1.0, None, None, id="ball"),
    pytest.param(["--box", "-1", "1"], None, (-1.0, 1.0), None, id="box"),
    pytest.param(["--beta", "1", "--box", "-0.5", "0.5"], 1.0, (-0.5, 0.5), None, id="both"),
    pytest.param(["--beta", "0.5", "--center", "C"], 0.5, None, CENTER, id="center-ball"),
    pytest.param(["--beta", "1", "--box", "0", "1", "--center", "C"], 1.0, (0.0, 1.0), CENTER,
                 id="center-both"),
]


@pytest.mark.parametrize(("domain", "beta", "box", "center"), DOMAINS)
def test_bracket_holds_and_the_saved_input_reproduces_the_error(capsys, files, tmp_path,
                                                                domain, beta, box, center):
    x_path = tmp_path / "x.npy"
    code, out, err = run(capsys, ["worst-case", "A", "B", *domain, "--time-limit", "30",
                                  "--input-out", str(x_path), "--json", "--quiet"], files)
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert {"found", "certified", "ratio", "closed", "status", "method", "stages", "input",
            "output", "domain", "certificate"} <= set(summary)
    assert summary["input"] == str(x_path)
    assert [st["name"] for st in summary["stages"]][:2] == ["gradient", "region"]
    x = np.load(x_path)
    assert x.shape == (4,)
    assert in_domain(x, beta, box, center)  # x = c + u: the original coordinates
    found, certified = summary["found"], summary["certified"]
    np.testing.assert_allclose(largest_error(files["A"], files["B"], x), found,
                               rtol=1e-9, atol=1e-12)
    assert found <= certified
    np.testing.assert_allclose(summary["ratio"], certified / found, rtol=1e-12)
    sampled = largest_error(files["A"], files["B"], samples(beta, box, center))
    assert sampled <= certified * (1 + 1e-9)  # the upper bound holds where we look
    assert summary["closed"]  # a tiny pair: bab closes it in about a second (limit 30 s)


def test_text_output_progress_and_default_input_path(capsys, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, ["worst-case", "A", "B", "--beta", "1", "--time-limit", "2"],
                         files)
    assert code == 0
    for word in ("found", "certified", "ratio", "method     auto", "bab",
                 "saved to worst_input.npy"):
        assert word in out
    assert "stage gradient" in err  # progress on stderr
    assert (tmp_path / "worst_input.npy").is_file()
    code, _, err = run(capsys, ["worst-case", "A", "B", "--beta", "1", "--time-limit", "1",
                                "--quiet"], files)
    assert (code, err) == (0, "")


def test_certificate_is_checked_and_rechecks_here(capsys, files, tmp_path):
    from coreset_verify.certificate import check

    cert = tmp_path / "proof.npz"
    code, out, _ = run(capsys, ["worst-case", "A", "B", "--beta", "1", "--time-limit", "3",
                                "--certificate", str(cert)], files)
    assert code == 0
    assert "certificate checked" in out
    assert (tmp_path / "proof_worst_input.npy").is_file()  # beside the certificate
    proved = check(cert, load_model(files["A"]), load_model(files["B"]), beta=1.0)
    assert f"proves <= {proved.upper_bound:.6g}" in out


def test_certificate_with_a_center_is_about_the_centered_models(capsys, files, tmp_path):
    from coreset_verify.certificate import check
    from coreset_verify.nets.center import centered

    cert = tmp_path / "proof.npz"
    code, out, _ = run(capsys, ["worst-case", "A", "B", "--beta", "1", "--center", "C",
                                "--time-limit", "3", "--certificate", str(cert), "--json"],
                       files)
    assert code == 0
    summary = json.loads(out)
    assert summary["certificate"]["checked"]
    assert "centered" in summary["certificate"]["about"]
    f, g = (centered(load_model(files[n]), CENTER) for n in ("A", "B"))
    proved = check(cert, f, g, beta=1.0)
    assert proved.upper_bound == summary["certificate"]["upper_bound"]
    assert proved.upper_bound >= summary["found"]


def test_deeper_pair_gets_a_checked_certificate(capsys, files, tmp_path):
    from coreset_verify.certificate import DEEP_FORMAT, check

    cert = tmp_path / "deep.npz"
    code, out, _ = run(capsys, ["worst-case", "DEEP", "DEEP_B", "--beta", "1",
                                "--time-limit", "3", "--certificate", str(cert),
                                "--quiet"], files)
    assert code == 0
    assert "certificate checked" in out
    with np.load(cert) as data:
        assert str(data["format"]) == DEEP_FORMAT
    check(cert, load_model(files["DEEP"]), load_model(files["DEEP_B"]), beta=1.0)


@pytest.mark.parametrize("pruned", [["MASKED"], ["MASKED_SD", "--pruned-architecture",
                                                 "4,6,3"]], ids=["whole", "state_dict"])
def test_a_model_pruned_with_torch_masks_is_read_as_it_computes(capsys, files, tmp_path,
                                                                pruned):
    x_path = tmp_path / "x.npy"
    code, out, _ = run(capsys, ["worst-case", "A", *pruned, "--beta", "1", "--time-limit",
                                "2", "--input-out", str(x_path), "--json", "--quiet"], files)
    assert code == 0
    x = torch.as_tensor(np.load(x_path))[None]
    masked = torch.load(files["MASKED"], weights_only=False)  # our own file: hooks run
    with torch.no_grad():
        want = (load_model(files["A"]).double()(x) - masked.double()(x)).abs().max()
    np.testing.assert_allclose(json.loads(out)["found"], float(want), rtol=1e-9)


BAD = [
    pytest.param(["MISSING", "B", "--beta", "1"], "does not exist", id="missing file"),
    pytest.param(["A", "DIR", "--beta", "1"], "a directory", id="directory"),
    pytest.param(["A", "IN5", "--beta", "1"], "same number of inputs", id="inputs differ"),
    pytest.param(["A", "OUT2", "--beta", "1"], "same number of outputs", id="outputs differ"),
    pytest.param(["A", "SOFTMAX", "--beta", "1"], "refused", id="softmax layer"),
    pytest.param(["A", "B", "--beta", "1", "--center", "C5"], "shape (4,)", id="center (5,)"),
    pytest.param(["A", "B", "--beta", "1", "--center", "CINT"], "float32 or float64",
                 id="center int"),
    pytest.param(["A", "B", "--beta", "1", "--center", "CNAN"], "finite", id="center nan"),
    pytest.param(["A", "B", "--beta", "1", "--center", "A"], "not one .npy array",
                 id="center is a torch file"),
    pytest.param(["A", "B", "--box", "1", "-1"], "LO <= HI", id="box LO > HI"),
    pytest.param(["A", "B", "--box", "nan", "1"], "finite number", id="box nan"),
    pytest.param(["A", "B"], "--beta B (a ball), --box LO HI", id="no domain"),
    pytest.param(["A", "B", "--beta", "0"], "> 0", id="beta 0"),
    pytest.param(["A", "B", "--beta", "1", "--certificate", "DIR"], "is a directory",
                 id="certificate is a directory"),
    pytest.param(["A", "MASKED_SD", "--beta", "1"], "'architecture'",
                 id="state_dict without --pruned-architecture"),
    pytest.param(["A", "MASKED_SD", "--beta", "1", "--pruned-architecture", "4,5,3"],
                 "does not fit", id="state_dict of other sizes"),
]


@pytest.mark.parametrize(("argv", "match"), BAD)
def test_bad_input_is_one_line_and_exit_code_2(capsys, files, argv, match):
    code, out, err = run(capsys, ["worst-case", *argv, "--time-limit", "1", "--quiet"],
                         files)
    assert (code, out) == (2, "")
    assert_one_line(err, "worst-case", match)


def test_a_2d_center_is_flattened_like_an_image(capsys, files, tmp_path):
    x_path = tmp_path / "x.npy"
    code, _, _ = run(capsys, ["worst-case", "A", "B", "--beta", "0.5", "--center", "C22",
                              "--time-limit", "1", "--input-out", str(x_path), "--quiet"],
                     files)
    assert code == 0
    assert np.linalg.norm(np.load(x_path) - CENTER) <= 0.5 * (1 + 1e-9)


@pytest.fixture(name="user_pruners")
def _user_pruners(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # cli_user_pruners.py is importable by name


def test_audit_of_a_users_pruner_passes_or_fails_its_checks(capsys, user_pruners):
    code, out, _ = run(capsys, ["audit", "--pruner", "cli_user_pruners:uniform_reweighted",
                                "--pruner", "cli_user_pruners:forgets_one_over_m",
                                "--time-limit", "0.5", "--json"], {})
    assert code == 0
    reports = json.loads(out)
    good, bad = (reports[f"cli_user_pruners:{n}"]
                 for n in ("uniform_reweighted", "forgets_one_over_m"))
    assert good["passed"]  # its own `claims` attribute: unbiased
    assert not bad["passed"]
    assert "check_unbiased" in bad["failed"]


@pytest.mark.parametrize(("spec", "match"), [
    ("no_such_module_here:prune", "cannot import 'no_such_module_here'"),
    ("cli_user_pruners:missing", "has no attribute 'missing'"),
    ("cli_user_pruners:NOT_A_PRUNER", "is not callable"),
    ("cli_user_pruners", "package.module:function"),
])
def test_audit_pruner_errors_are_one_line(capsys, user_pruners, spec, match):
    code, out, err = run(capsys, ["audit", "--pruner", spec], {})
    assert (code, out) == (2, "")
    assert_one_line(err, "audit", match)


def test_audit_pruner_from_pythonpath_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get(
        "PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "coreset_verify.cli", "audit", "--pruner",
                          "cli_user_pruners:forgets_one_over_m", "--claims",
                          '{"unbiased": false}', "--time-limit", "0.5"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "| cli_user_pruners:forgets_one_over_m |" in out.stdout
