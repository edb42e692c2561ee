"""The campaign files under adversarial/campaigns/ are well formed, and a misspelt
key is refused before any search runs (instead of being silently ignored)."""

import importlib.util
import json
from pathlib import Path

import pytest

from coreset_verify.errors import InvalidArgumentError

ROOT = Path(__file__).resolve().parents[2] / "adversarial"
CAMPAIGNS = sorted((ROOT / "campaigns").glob("*.json"))


def _runner():
    spec = importlib.util.spec_from_file_location("adversarial_run", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_campaigns_are_stored():
    assert len(CAMPAIGNS) >= 1


@pytest.mark.parametrize("path", CAMPAIGNS, ids=[p.stem for p in CAMPAIGNS])
def test_campaign_config_is_valid(path):
    config = json.loads(path.read_text())
    assert _runner().check_config(config) is config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda c: c.update(serch=c.pop("search")), "'serch'", id="top-level"),
        pytest.param(lambda c: c["search"].update(time_limt=5), "'time_limt'", id="search"),
        pytest.param(lambda c: c["claims"][0].update(dleta=0.1), "'dleta'", id="claim"),
        pytest.param(lambda c: c["layer"].update(source="imagenet"), "layer.source",
                     id="source"),
    ],
)
def test_misspelt_campaign_key_is_refused(change, message):
    config = json.loads(CAMPAIGNS[0].read_text())
    change(config)
    with pytest.raises(InvalidArgumentError, match=message):
        _runner().check_config(config)
