"""The small CNN whose penultimate layer gives image features for zero-shot CIFAR-10.

It is trained on the training classes only (:mod:`wsl_jax.train.feature_cnn`); its features then
describe every image, of a seen or an unseen class.

>>> import jax, jax.numpy as jnp
>>> m = FeatureCNN(num_classes=8, widths=(4,), feature_dim=5)
>>> v = m.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
>>> [a.shape for a in m.apply(v, jnp.zeros((3, 32, 32, 3)))]  # (logits, features)
[(3, 8), (3, 5)]
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["FeatureCNN"]


class FeatureCNN(nn.Module):
    """Conv(3×3)–ReLU–max-pool stages, global average pooling, a ReLU dense layer (the features),
    then the class logits. ``__call__`` returns ``(logits, features)``.

    >>> import jax, jax.numpy as jnp
    >>> m = FeatureCNN(num_classes=8, widths=(4, 8), feature_dim=16)
    >>> v = m.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    >>> [a.shape for a in m.apply(v, jnp.zeros((2, 32, 32, 3)))]
    [(2, 8), (2, 16)]
    """

    num_classes: int
    widths: Sequence[int] = (16, 32, 64)
    feature_dim: int = 128

    @nn.compact
    def __call__(self, x):
        for width in self.widths:
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        features = nn.relu(nn.Dense(self.feature_dim)(jnp.mean(x, axis=(1, 2))))
        return nn.Dense(self.num_classes)(features), features
