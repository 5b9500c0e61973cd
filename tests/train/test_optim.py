"""make_optimizer: defaults, schedules, the backbone learning-rate multiplier, clear errors."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from wsl_jax.train.optim import make_optimizer


def _sgd_update(config, steps=100):
    params = {"backbone": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}
    tx = make_optimizer(ml_collections.ConfigDict(config), total_steps=steps)
    updates, _ = tx.update(
        {"backbone": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}, tx.init(params), params
    )
    return updates


def test_schedule_defaults_to_cosine_with_warmup():
    # Without "schedule": warm-up cosine from 0, so the very first update is zero.
    updates = _sgd_update({"name": "sgd", "learning_rate": 0.1, "momentum": 0.0})
    np.testing.assert_allclose(updates["head"]["w"], 0.0)


def test_constant_schedule_and_backbone_multiplier():
    updates = _sgd_update(
        {
            "name": "sgd",
            "learning_rate": 0.1,
            "momentum": 0.0,
            "schedule": "constant",
            "backbone_lr_multiplier": 0.1,
        }
    )
    np.testing.assert_allclose(updates["head"]["w"], -0.1, rtol=1e-6)
    np.testing.assert_allclose(updates["backbone"]["w"], -0.01, rtol=1e-6)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"name": "sgd", "learning_rate": 0.1, "schedule": "step"}, "optimizer.schedule 'step'"),
        ({"name": "rmsprop", "learning_rate": 0.1}, "optimizer.name 'rmsprop'"),
    ],
)
def test_unknown_names_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer(ml_collections.ConfigDict(config), total_steps=10)
