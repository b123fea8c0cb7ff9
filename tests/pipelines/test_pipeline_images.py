"""Host-side image conversion (minildm.pipelines.images): user images and masks in, images and PNG grids out."""
import numpy as np
import pytest

from minildm import backend
from minildm.pipelines.images import image_grid, images_to_model, masks_to_model, postprocess, save_image_grid


def host(array):
    return backend.to_host(array)


def test_uint8_images_map_to_minus_one_one_channels_first():
    image = np.zeros((2, 4, 3), np.uint8)
    image[0, 0] = [0, 128, 255]
    out = host(images_to_model(image))
    assert out.shape == (1, 3, 2, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0, 0], [-1.0, 128 / 255 * 2 - 1, 1.0], atol=1e-7)


def test_uint8_float_pil_and_lists_agree():
    from PIL import Image

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
    expected = host(images_to_model(images))
    np.testing.assert_allclose(host(images_to_model(images.astype(np.float64) / 255)), expected, atol=1e-6)
    np.testing.assert_array_equal(host(images_to_model([Image.fromarray(i) for i in images])), expected)
    np.testing.assert_array_equal(host(images_to_model(list(images))), expected)
    np.testing.assert_array_equal(host(images_to_model(Image.fromarray(images[1]))), expected[1:])


def test_pil_images_are_converted_to_rgb():
    from PIL import Image

    gray = Image.fromarray(np.full((4, 4), 255, np.uint8))  # mode "L"
    np.testing.assert_array_equal(host(images_to_model(gray)), np.ones((1, 3, 4, 4), np.float32))


def test_images_of_a_list_must_share_a_shape():
    with pytest.raises(ValueError, match="same shape"):
        images_to_model([np.zeros((4, 4, 3), np.uint8), np.zeros((8, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="empty list"):
        images_to_model([])
    with pytest.raises(ValueError, match="NaN"):
        images_to_model(np.full((4, 4, 3), np.nan, np.float32))


def test_masks_are_binarised_at_one_half_white_is_one():
    mask = np.array([[0, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(host(masks_to_model(mask)), [[[[0, 0, 1, 1]]]])
    np.testing.assert_array_equal(host(masks_to_model(np.array([[0.2, 0.5]]))), [[[[0, 1]]]])
    np.testing.assert_array_equal(host(masks_to_model(np.array([[True, False]]))), [[[[1, 0]]]])


def test_mask_layouts_and_pil():
    from PIL import Image

    masks = (np.arange(2 * 4 * 4).reshape(2, 4, 4) % 2 * 255).astype(np.uint8)
    expected = host(masks_to_model(masks))
    assert expected.shape == (2, 1, 4, 4)
    np.testing.assert_array_equal(host(masks_to_model(masks[..., None])), expected)          # (B, H, W, 1)
    np.testing.assert_array_equal(host(masks_to_model(masks[0][..., None])), expected[:1])   # (H, W, 1)
    np.testing.assert_array_equal(host(masks_to_model([Image.fromarray(m) for m in masks])), expected)
    rgb = Image.fromarray(np.stack([masks[0]] * 3, axis=-1))  # an RGB mask: converted to grayscale
    np.testing.assert_array_equal(host(masks_to_model(rgb)), expected[:1])


def test_postprocess_clips_rescales_and_rounds():
    xp = backend.xp()
    decoded = xp.asarray(np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], np.float32).reshape(1, 3, 1, 2))
    floats = postprocess(decoded, "np")
    assert isinstance(floats, np.ndarray) and floats.shape == (1, 1, 2, 3) and floats.dtype == np.float32
    np.testing.assert_allclose(floats[0, 0], [[0.0, 0.5, 1.0], [0.0, 0.75, 1.0]])
    np.testing.assert_array_equal(postprocess(decoded, "uint8")[0, 0], [[0, 128, 255], [0, 191, 255]])
    with pytest.raises(ValueError, match="output_type"):
        postprocess(decoded, "pil")


def test_image_grid_tiles_row_by_row_with_padding():
    images = np.stack([np.full((2, 3, 3), 40 * k, np.uint8) for k in range(5)])
    grid = image_grid(images, ncols=3, padding=1)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 3) and grid.dtype == np.uint8
    assert (grid[0:2, 4:7] == 40).all() and (grid[3:5, 0:3] == 120).all()  # image 1 at (0, 1), image 3 at (1, 0)
    assert (grid[2] == 255).all() and (grid[3:5, 8:11] == 255).all()      # padding and the empty last tile: white
    assert image_grid(images).shape == (2 * 2, 3 * 3, 3)                   # ncols = ceil(sqrt(5)) = 3
    np.testing.assert_array_equal(image_grid(images.astype(np.float32) / 255), image_grid(images))


def test_save_image_grid_writes_a_png(tmp_path):
    from PIL import Image

    images = np.random.default_rng(0).integers(0, 256, (4, 5, 5, 3), dtype=np.uint8)
    save_image_grid(images, tmp_path / "grid.png", ncols=2)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png")), image_grid(images, 2))
