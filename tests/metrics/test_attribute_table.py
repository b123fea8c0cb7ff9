"""The checker's verdicts, grouped: seen / held-out pairs and one / two objects."""
import numpy as np
import pytest

from minildm.data import ShapesDataset
from minildm.metrics import attribute_table, caption_group


def test_groups_of_captions():
    assert caption_group("a red circle at the top") == ("seen", "one")
    assert caption_group("a blue circle at the top") == ("heldout", "one")
    assert caption_group("a red circle on the left and a green triangle on the right") == ("heldout", "two")


def test_real_images_score_perfectly_in_every_group():
    seen, heldout = ShapesDataset(60, seed=4, split="eval"), ShapesDataset(30, seed=4, split="heldout")
    images = np.concatenate([seen.images, heldout.images])
    table = attribute_table(images, seen.captions + heldout.captions)
    assert table["all"]["n"] == 90 and table["seen"]["n"] == 60 and table["heldout"]["n"] == 30
    assert table["one"]["n"] + table["two"]["n"] == 90
    assert table["seen/one"]["n"] + table["seen/two"]["n"] == 60
    for group in table.values():
        assert group["all"] == 1.0 and group["colour"] == 1.0


def test_wrong_images_fail_and_counts_must_match():
    ds = ShapesDataset(20, seed=5, split="eval", max_objects=1)
    table = attribute_table(np.full_like(ds.images, -1.0), ds.captions)  # black images: no object anywhere
    assert table["all"]["all"] == 0.0 and "heldout" not in table and "two" not in table
    with pytest.raises(ValueError, match="20 images but 19 captions"):
        attribute_table(ds.images, ds.captions[:19])
