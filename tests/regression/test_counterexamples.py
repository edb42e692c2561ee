"""Replay every counterexample stored under adversarial/counterexamples/.

Each one records an input x at which a pruned layer's error exceeded a claimed
epsilon. The replay re-evaluates the error from the stored arrays (no solver)
and re-draws the coreset from the stored seed: if either changes, the toolkit's
numerics or its sampling changed, and the stored finding no longer stands.
"""

import json
from pathlib import Path

import pytest

from coreset_verify.counterexamples import load_counterexample, replay

ROOT = Path(__file__).resolve().parents[2] / "adversarial" / "counterexamples"
STORED = sorted(ROOT.glob("*/*.json"))


def test_counterexamples_are_stored():
    # Guards the parametrised test below against passing vacuously.
    assert len(STORED) >= 1, f"no counterexamples under {ROOT}"


@pytest.mark.parametrize("path", STORED, ids=[f"{p.parent.name}/{p.stem}" for p in STORED])
def test_counterexample_reproduces(path):
    result = replay(path)
    assert result.reproduced_error == pytest.approx(result.recorded_error, rel=1e-9, abs=0)
    assert result.reproduced_error > result.claimed_epsilon
    assert result.same_coreset is True


@pytest.mark.parametrize("path", STORED[:1], ids=["metadata"])
def test_counterexample_metadata(path):
    meta = load_counterexample(path).metadata
    for key in ("error", "epsilon", "kind", "delta", "activation", "beta", "seed",
                "sample_size", "versions"):
        assert key in meta, key
    assert meta["error"] > meta["epsilon"]


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: d / "absent.json", id="missing"),
        pytest.param(lambda d: _written(d / "bad.json", "{not json"), id="not-json"),
        pytest.param(lambda d: 5, id="not-a-path"),
    ],
)
def test_unreadable_counterexample_is_a_documented_error(tmp_path, make):
    from coreset_verify.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="'path' parameter of load_counterexample"):
        load_counterexample(make(tmp_path))


def test_counterexample_without_a_field_is_refused(tmp_path):
    import shutil

    from coreset_verify.errors import InvalidArgumentError

    shutil.copy(STORED[0], tmp_path / "c.json")
    shutil.copy(STORED[0].with_suffix(".npz"), tmp_path / "c.npz")
    meta = json.loads((tmp_path / "c.json").read_text())
    del meta["epsilon"]
    (tmp_path / "c.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidArgumentError, match="epsilon"):
        load_counterexample(tmp_path / "c.json")
