"""The evaluation networks' recipe runs end to end (tiny settings), saves float16 folders and loads them back."""
import json

import numpy as np
import pytest

from minildm.data import ShapesDataset
from minildm.metrics.eval_networks import EvalFeatureNet, EvalNetworks, load_eval_networks
from minildm.metrics.eval_training import attribute_targets, eval_training_set, tiny_config, train_eval_networks


def test_soft_targets_split_between_objects():
    ds = ShapesDataset(40, seed=0, split="eval", two_object_fraction=0.5)
    targets = attribute_targets(ds.scenes)
    for name, t in targets.items():
        np.testing.assert_allclose(t.sum(axis=1), 1.0, err_msg=name)   # each row a distribution
    two = [i for i, s in enumerate(ds.scenes) if len(s) == 2]
    assert two and np.all(targets["count"][two, 1] == 1) and np.all(targets["position"][two].max(axis=1) == 0.5)


def test_training_set_mixes_splits():
    data = eval_training_set(tiny_config(num_images=200))
    assert data.images.shape == (200, 3, 32, 32) and len(data.captions) == 200
    assert all(t.shape[0] == 200 for t in data.targets.values())


def test_tiny_recipe_trains_saves_and_loads(tmp_path):
    records = train_eval_networks(config=tiny_config(num_images=300, feature_steps=6, clip_steps=6,
                                                     check_images=100),
                                  run_dir=tmp_path / "run", weights_dir=tmp_path / "weights", progress=False)
    assert set(records) == {"features", "clip"}
    assert (tmp_path / "run" / "features" / "checkpoint.safetensors").is_file()   # the shared loop's checkpoint
    saved = json.loads((tmp_path / "weights" / "features" / "training.json").read_text())
    assert saved["config"]["feature_steps"] == 6 and saved["train_seconds"] > 0
    nets = load_eval_networks(tmp_path / "weights")
    images = ShapesDataset(70, seed=9, split="heldout").images
    features = nets.features(images)
    assert features.shape == (70, 64) and features.dtype == np.float64
    # feature_scale puts real images at mean xᵀx / d ≈ 1 (fixed on the training images; float16 on disk)
    assert 0.5 < np.mean(np.sum(features ** 2, axis=1)) / 64 < 2.0
    unit = nets.image_embeddings(images)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    assert nets.text_embeddings(["a red circle at the top"]).shape == (1, 16)


def test_missing_networks_say_how_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/train_eval_networks.sh"):
        load_eval_networks(tmp_path)
    with pytest.raises(ValueError, match="no clip"):
        EvalNetworks(feature_net=EvalFeatureNet(channels=(8, 8, 8, 8))).image_embeddings(np.zeros((1, 3, 32, 32)))
