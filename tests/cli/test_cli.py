"""The command line end to end, on small models (subprocesses, as a user runs it)."""

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from coreset_verify.models import mlp  # noqa: E402
from coreset_verify.network import load_model, save_model  # noqa: E402


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "coreset_verify.cli", *args],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def test_help_lists_every_command():
    out = cli("--help")
    assert out.returncode == 0
    for command in ("demo", "prune", "audit"):
        assert command in out.stdout


def test_prune_saves_a_smaller_model(tmp_path):
    source, target = tmp_path / "model.pt", tmp_path / "small.pt"
    save_model(mlp([12, 16, 8, 3], seed=1), source)
    out = cli("prune", str(source), "--keep", "0.5", "--beta", "2", "-o", str(target), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["params_after"] < summary["params_before"]
    assert [row["neurons_after"] for row in summary["layers"]] == [8, 4]
    small = load_model(target)
    assert small[0].out_features == 8
    assert sum(p.numel() for p in small.parameters()) == summary["params_after"]


def test_prune_reports_bad_arguments_without_a_traceback(tmp_path):
    source = tmp_path / "model.pt"
    save_model(mlp([12, 16, 3], seed=1), source)
    out = cli("prune", str(source), "--keep", "1.5", "--beta", "2", "-o", str(tmp_path / "x"))
    assert out.returncode == 2
    assert "keep" in out.stderr
    assert "Traceback" not in out.stderr


def test_audit_json_and_report(tmp_path):
    out = cli("audit", "--pruners", "coreset", "top-norm", "--time-limit", "1", "--json",
              "--report", str(tmp_path / "report"))
    assert out.returncode == 0, out.stderr
    reports = json.loads(out.stdout)
    assert set(reports) == {"coreset", "top-norm"}
    assert (tmp_path / "report" / "audit.md").exists()
    assert (tmp_path / "report" / "audit.png").exists()


def test_audit_of_a_saved_model(tmp_path):
    source = tmp_path / "model.pt"
    save_model(mlp([6, 20, 3], seed=2), source)
    out = cli("audit", "--model", str(source), "--layer", "0", "--pruners", "coreset",
              "--time-limit", "1")
    assert out.returncode == 0, out.stderr
    assert "| coreset |" in out.stdout


def test_audit_unknown_pruner():
    out = cli("audit", "--pruners", "nope")
    assert out.returncode == 2
    assert "unknown pruners" in out.stderr


def test_demo_json(tmp_path):
    import os

    env = {**os.environ, "CORESET_VERIFY_CACHE": str(tmp_path / "cache")}
    quick = ("--epochs", "2", "--finetune-epochs", "1")  # the figures are not judged here
    out = cli("demo", "--json", "--time-limit", "2", *quick, "--report", str(tmp_path / "demo"),
              env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("dense_accuracy", "pruned_accuracy", "dense_params", "pruned_params"):
        assert key in result
    assert result["pruned_params"] <= 0.1 * result["dense_params"]
    for name in ("dense", "pruned", "finetuned"):
        low, high = result[f"{name}_interval"]
        assert 0 <= low <= result[f"{name}_accuracy"] <= high <= 1
    dense_only, tuned_only, p = result["finetuned_vs_dense"]
    assert (dense_only - tuned_only) / 1000 == pytest.approx(
        result["dense_accuracy"] - result["finetuned_accuracy"], abs=1e-9)
    assert 0 <= p <= 1
    certified = result["worst_certified"]
    assert certified is None or result["worst_found"] <= certified
    assert result["epsilon_pointwise"] <= result["epsilon_uniform"]
    brackets = result["certified_brackets"]
    assert len(brackets) == 3
    assert all(up is None or found <= up for found, up in brackets)
    kept = brackets[result["certified_chosen"]][1]
    assert all(up is None or kept <= up for _, up in brackets)  # the smallest proved bound
    assert "Certified pruning" in (tmp_path / "demo" / "demo.md").read_text()
    network = result["network_brackets"]
    assert len(network) == 3
    assert all(up is None or found <= up for found, up in network)
    kept = network[result["network_chosen"]][1]
    assert all(up is None or kept <= up for _, up in network)
    assert result["network_theorem"] is None or result["network_theorem"] > 0
    # second run loads the cached model
    again = cli("demo", "--json", "--time-limit", "1", *quick, "--report", "", env=env)
    assert json.loads(again.stdout)["model_cached"] is True


def test_bench_json():
    out = cli("bench", "--size", "256", "--sample-size", "64", "--repeats", "2", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows[0]["backend"] == "numpy"
    assert rows[0]["ours_over_floor"] > 0
    assert rows[0]["loop_over_ours"] > 0
