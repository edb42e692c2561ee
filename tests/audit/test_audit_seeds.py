"""Every (check, layer, trial) of the battery draws its own seed, at any number of layers."""

from __future__ import annotations

import numpy as np
from faulty_pruners import RANDOM_UNBIASED, sensitivity_sample

from coreset_verify.audit._context import AuditContext, Stream, seed_stream
from coreset_verify.audit._layers import make_layer
from coreset_verify.audit.checks import check_unbiased


def _layers(count: int) -> dict:
    gen = np.random.default_rng(0)
    return {f"l{i}": make_layer(f"l{i}", gen.normal(size=(8, 3)), gen.normal(size=8),
                                gen.normal(size=(2, 8)), "test") for i in range(count)}


def test_seeds_of_every_stream_and_layer_differ_at_12_layers():
    # The former tags (seed * 1000 + tag) * 100000 collided from 10 layers on:
    # check_unbiased of layer 10 used tag 20, the tag of check_permutation.
    ctx = AuditContext(claims=RANDOM_UNBIASED, layers=tuple(_layers(12).values()), seed=3)
    seeds = [s for stream in Stream for layer in range(12)
             for s in seed_stream(ctx, stream, layer, 30)]
    assert len(seeds) == len(Stream) * 12 * 30
    assert len(set(seeds)) == len(seeds)
    assert seed_stream(ctx, Stream.SIZE, 4, 3) == seed_stream(ctx, Stream.SIZE, 4, 3)


def test_a_12_layer_audit_gives_each_layer_its_own_streams():
    ctx = AuditContext(claims=RANDOM_UNBIASED, layers=tuple(_layers(12).values()),
                       pilot_seeds=10, test_seeds=20)
    evidence = check_unbiased(sensitivity_sample, ctx).evidence
    keys = {tuple(ev[part]["spawn_key"]) for ev in evidence.values()
            for part in ("pilot_seeds", "test_seeds")}
    assert len(keys) == 24
    assert (int(Stream.UNBIASED_TEST), 11) in keys
