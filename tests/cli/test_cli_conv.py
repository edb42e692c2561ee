"""``coreset-verify worst-case`` on two saved convolutional models, end to end.

The models start with ``nn.Unflatten`` (flat inputs) and hold Conv2d,
BatchNorm2d (eval), max-pooling and a Linear head; the truth is measured in
the test with torch on the models loaded afresh.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from coreset_verify.cli import main  # noqa: E402
from coreset_verify.network import load_model, save_model  # noqa: E402


def conv_net(channels: int, seed: int, side: int = 4):
    torch.manual_seed(seed)
    norm = nn.BatchNorm2d(channels)
    with torch.no_grad():
        norm.running_var.uniform_(0.5, 2.0)
        norm.running_mean.normal_()
    return nn.Sequential(nn.Unflatten(1, (1, side, side)), nn.Conv2d(1, channels, 2), norm,
                         nn.ReLU(), nn.MaxPool2d(side - 1), nn.Flatten(),
                         nn.Linear(channels, 3)).double().eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("conv_cli")
    f, g = conv_net(3, 0), conv_net(2, 0)
    with torch.no_grad():  # g keeps channels 0 and 1 of f, re-weighted
        for name in ("weight", "bias"):
            getattr(g[1], name).copy_(getattr(f[1], name)[:2])
        for name in ("running_mean", "running_var", "weight", "bias"):
            getattr(g[2], name).copy_(getattr(f[2], name)[:2])
        g[6].weight.copy_(1.5 * f[6].weight[:, :2])
        g[6].bias.copy_(f[6].bias)
    out = {"F": tmp / "f.pt", "G": tmp / "g.pt", "WIDE": tmp / "wide.pt",
           "C": tmp / "c.npy"}
    save_model(f, out["F"])
    save_model(g, out["G"])
    save_model(conv_net(2, 1, side=5), out["WIDE"])
    np.save(out["C"], np.linspace(-0.5, 0.5, 16).reshape(4, 4))
    return {k: str(v) for k, v in out.items()}


def run(capsys, argv: list[str], files: dict[str, str]) -> tuple[int, str, str]:
    code = main([files.get(a, a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_conv_pair_is_bracketed_and_certified(capsys, files, tmp_path):
    from coreset_verify.certificate import check

    cert, x_path = tmp_path / "proof.npz", tmp_path / "x.npy"
    code, out, _ = run(capsys, ["worst-case", "F", "G", "--beta", "1", "--time-limit", "5",
                                "--certificate", str(cert), "--input-out", str(x_path),
                                "--json", "--quiet"], files)
    assert code == 0
    summary = json.loads(out)
    f, g = load_model(files["F"]), load_model(files["G"])
    x = torch.as_tensor(np.load(x_path))[None]
    with torch.no_grad():
        assert float((f(x) - g(x)).abs().max()) == pytest.approx(summary["found"], abs=1e-9)
    proved = check(cert, f, g, beta=1.0)
    assert proved.upper_bound == summary["certificate"]["upper_bound"] >= summary["found"]
    xs = torch.randn(4000, 16, dtype=torch.float64)
    xs = xs / xs.norm(dim=1, keepdim=True)
    with torch.no_grad():
        assert float((f(xs) - g(xs)).abs().max()) <= proved.upper_bound


def test_conv_pair_around_a_center(capsys, files, tmp_path):
    code, out, _ = run(capsys, ["worst-case", "F", "G", "--beta", "0.5", "--center", "C",
                                "--time-limit", "3", "--input-out", str(tmp_path / "x.npy"),
                                "--json", "--quiet"], files)
    assert code == 0
    summary = json.loads(out)
    assert summary["certified"] >= summary["found"] > 0


def test_conv_models_of_different_input_sizes_are_one_error_line(capsys, files):
    code, _, err = run(capsys, ["worst-case", "F", "WIDE", "--beta", "1", "--quiet"], files)
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("coreset-verify worst-case: error:")


def test_prune_then_worst_case_on_a_conv_model(capsys, tmp_path):
    """The README's conv example: ``prune`` removes channels (the report says so),
    and ``worst-case`` on the saved pair closes its bracket with a checked
    certificate that holds on sampled inputs."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Unflatten(1, (1, 5, 5)), nn.Conv2d(1, 3, 3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(27, 2)).double()
    big, small, cert = tmp_path / "conv.pt", tmp_path / "small.pt", tmp_path / "proof.npz"
    save_model(net, big)
    assert main(["prune", str(big), "--keep", "0.67", "--beta", "1", "-o", str(small)]) == 0
    out = capsys.readouterr().out
    assert "Conv2d 1: 3 -> 2 channels" in out
    assert main(["prune", str(big), "--keep", "0.67", "--beta", "1", "-o", str(small),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][0]["layer"] == "Conv2d"
    assert load_model(small)[1].out_channels == 2
    code, out, _ = run(capsys, ["worst-case", str(big), str(small), "--beta", "1",
                                "--time-limit", "30", "--certificate", str(cert),
                                "--json", "--quiet"], {})
    assert code == 0
    summary = json.loads(out)
    assert summary["status"] == "optimal"
    assert summary["certified"] == pytest.approx(summary["found"], rel=1e-6)
    xs = torch.randn(4000, 25, dtype=torch.float64)
    xs = xs / xs.norm(dim=1, keepdim=True)
    f, g = load_model(big), load_model(small)
    with torch.no_grad():
        assert float((f(xs) - g(xs)).abs().max()) <= summary["certified"] * (1 + 1e-9)
