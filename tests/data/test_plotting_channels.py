"""show_channels: every channel drawn with one symmetric colour scale shared by all rows; errors for bad input."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from minildm.data.plotting import show_channels, to_uint8


def test_show_channels_draws_each_channel_on_a_shared_symmetric_scale():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    maps[1, 2, 0, 0] = -7.5                                   # channel 2's largest magnitude, in row 1
    images = rng.uniform(-1, 1, (3, 3, 8, 8)).astype(np.float32)
    fig = show_channels(maps, images, row_labels=["a", "b", "c"], title="T")
    axes = np.array(fig.axes).reshape(3, 5)
    for r in range(3):
        np.testing.assert_array_equal(np.asarray(axes[r, 0].images[0].get_array()), to_uint8(images[r])[0])
        for c in range(4):
            shown = axes[r, c + 1].images[0]
            np.testing.assert_array_equal(np.asarray(shown.get_array()), maps[r, c])
            limit = np.abs(maps[:, c]).max()
            assert shown.get_clim() == (-limit, limit)
    assert axes[0, 3].images[0].get_clim() == (-7.5, 7.5)
    assert [axes[0, c].get_title() for c in range(1, 5)] == [f"channel {c}" for c in range(4)]
    assert [axes[r, 0].get_ylabel() for r in range(3)] == ["a", "b", "c"]
    assert fig._suptitle.get_text() == "T"
    matplotlib.pyplot.close(fig)


def test_show_channels_without_images_starts_with_channel_0():
    maps = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3)
    fig = show_channels(maps)
    assert len(fig.axes) == 4
    np.testing.assert_array_equal(np.asarray(fig.axes[3].images[0].get_array()), maps[1, 1])
    matplotlib.pyplot.close(fig)


def test_show_channels_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"show_channels: expected arrays \(rows, C, h, w\)"):
        show_channels(np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="2 rows of channels but 3 images"):
        show_channels(np.zeros((2, 4, 3, 3)), images=np.zeros((3, 3, 8, 8)))
    with pytest.raises(ValueError, match="2 rows but 1 row labels"):
        show_channels(np.zeros((2, 4, 3, 3)), row_labels=["a"])
