"""The VOC 2007 adapter: tfds.testing.mock_data (works without TensorFlow) and examples round-tripped
through the real voc/2007 feature spec (serialize → deserialize, as the array_record data source does)."""
import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from wsl_jax.data import make_eval_dataset
from wsl_jax.data.voc import NUM_VOC_CLASSES, VOC_CLASSES, voc_example, voc_source


@pytest.fixture(scope="module")
def voc_features(tmp_path_factory):
    builder = tfds.builder("voc/2007", data_dir=str(tmp_path_factory.mktemp("no_voc")))
    return builder.info.features


def _png(h, w, seed):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _voc_record(features, objects, size=(30, 40), seed=0):
    """An example in the voc/2007 layout, encoded and decoded by its real FeaturesDict."""
    labels = sorted({o[0] for o in objects})
    example = {
        "image": _png(*size, seed), "image/filename": f"{seed:06d}.jpg", "labels": labels,
        "labels_no_difficult": sorted({o[0] for o in objects if not o[2]}),
        "objects": [{"label": c, "bbox": tfds.features.BBox(*map(float, box)), "is_difficult": d,
                     "is_truncated": False, "pose": 0} for c, box, d in objects],
    }
    return features.deserialize_example_np(features.serialize_example(features.encode_example(example)))


def test_class_names_match_tfds(voc_features):
    assert tuple(voc_features["objects"]["label"].names) == VOC_CLASSES


def test_mock_data_source_without_tensorflow():
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        source = tfds.data_source("voc/2007", split="test")
        examples = [source[i] for i in range(len(source))]
    assert len(examples) == 3
    # mock_data draws every objects/* field independently, so lengths disagree: a clear error ...
    with pytest.raises(ValueError, match="disagree in length"):
        voc_example(examples[0])
    # ... and once made consistent the adapter maps the mock example's real dtypes and shapes
    for ex in examples:
        n = min(len(ex["objects"][k]) for k in ("label", "bbox", "is_difficult"))
        ex = dict(ex, objects={k: np.asarray(v)[:n] for k, v in ex["objects"].items()})
        out = voc_example(ex, image_size=(16, 16))
        assert out["image"].shape == (16, 16, 3) and out["boxes"].shape == (n, 4)
        assert set(np.flatnonzero(out["labels"])) == set(np.asarray(ex["objects"]["label"]).tolist())
        assert not np.any(out["difficult"] & (1 - out["labels"]))


def test_difficult_conventions(voc_features):
    objects = [(8, (0, 0, .5, .5), False),      # chair, easy
               (8, (0, .5, .5, 1), True),       # chair, difficult: chair stays an easy positive
               (14, (.5, .5, 1, 1), True),      # person, only difficult
               (14, (.5, 0, 1, .4), True)]
    record = _voc_record(voc_features, objects)
    out = voc_example(record, index=7)
    assert np.flatnonzero(out["labels"]).tolist() == [8, 14]  # difficult objects count as positives
    assert np.flatnonzero(out["difficult"]).tolist() == [14]  # ... but only-difficult classes are flagged
    # consistent with tfds' own per-image label lists
    assert np.flatnonzero(out["labels"]).tolist() == sorted(int(c) for c in record["labels"])
    easy = np.flatnonzero(out["labels"] & (1 - out["difficult"])).tolist()
    assert easy == sorted(int(c) for c in record["labels_no_difficult"])
    assert out["label_per_box"].tolist() == [8, 8, 14, 14]
    assert out["box_difficult"].tolist() == [False, True, True, True]
    np.testing.assert_allclose(out["boxes"], [o[1] for o in objects])
    assert out["image"].shape == (30, 40, 3) and out["file_name"] == "000000.jpg" and out["index"] == 7


def test_voc_source_feeds_eval_pipeline(voc_features):
    records = [_voc_record(voc_features, [(c, (.1, .1, .6, .7), c == 3), (19, (.5, .5, .9, .9), False)],
                           size=(20 + 3 * c, 30), seed=c) for c in range(5)]
    source = voc_source(records, image_size=(24, 24))
    assert len(source) == 5 and source[-1]["index"] == 4
    batches = list(make_eval_dataset(source, batch_size=4, max_boxes=64, mean=(0.5,) * 3, std=(0.5,) * 3))
    assert batches[0]["image"].shape == (4, 24, 24, 3) and batches[0]["labels"].shape == (4, NUM_VOC_CLASSES)
    assert batches[0]["boxes"].shape == (4, 64, 4) and batches[0]["box_mask"][:, :2].all()
    assert [int(b["valid"].sum()) for b in batches] == [4, 1]


def test_errors_name_the_field():
    base = {"image": np.zeros((4, 4, 3), np.uint8)}
    with pytest.raises(ValueError, match="'objects' is missing"):
        voc_example(base)
    with pytest.raises(ValueError, match="objects/bbox"):
        voc_example(dict(base, objects={"label": [1], "is_difficult": [False]}))
    with pytest.raises(ValueError, match="objects/label"):
        voc_example(dict(base, objects={"label": [20], "bbox": np.zeros((1, 4)), "is_difficult": [False]}))
    with pytest.raises(ValueError, match="'image'"):
        voc_example({"image": np.zeros((4, 4)), "objects": {}})
