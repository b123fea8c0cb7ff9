"""The notebook grid plotter: what it draws, and the errors for bad input."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from minildm.data import show_grid
from minildm.data.plotting import to_uint8


def test_show_grid_draws_every_image_with_its_labels():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1.5, 1.5, (2, 3, 3, 4, 5)).astype(np.float32)
    fig = show_grid(images, row_labels=["a", "b"], col_labels=["x", "y", "z"], title="T")
    axes = np.array(fig.axes).reshape(2, 3)
    for r in range(2):
        for c in range(3):
            shown = axes[r, c].images[0].get_array()
            np.testing.assert_array_equal(np.asarray(shown), to_uint8(images[r, c])[0])
    assert [axes[0, c].get_title() for c in range(3)] == ["x", "y", "z"]
    assert [axes[r, 0].get_ylabel() for r in range(2)] == ["a", "b"]
    assert fig._suptitle.get_text() == "T"
    matplotlib.pyplot.close(fig)


def test_show_grid_accepts_uint8_as_is():
    images = np.arange(2 * 2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 2, 4, 4, 3)
    fig = show_grid(images)
    np.testing.assert_array_equal(np.asarray(fig.axes[3].images[0].get_array()), images[1, 1])
    matplotlib.pyplot.close(fig)


def test_show_grid_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"show_grid: expected images \(rows, cols"):
        show_grid(np.zeros((3, 3, 4, 4)))
    with pytest.raises(ValueError, match="2 rows and 3 columns but 1 row labels"):
        show_grid(np.zeros((2, 3, 3, 4, 4)), row_labels=["a"])
