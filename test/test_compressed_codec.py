"""CompressedImage colour (jpeg/png) and compressedDepth depth, as image_transport's plugins write them."""
import array

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

from w2r2_ros.sensors.compressed_codec import (
    COMPRESSED_DEPTH_HEADER,
    compressed_depth_to_depth,
    compressed_to_rgb,
    depth_to_compressed_depth,
    rgb_to_compressed,
)
from w2r2_ros.sensors.errors import InvalidMessage, UnsupportedEncoding


def message(fmt: str, data: bytes) -> CompressedImage:
    return CompressedImage(format=fmt, data=array.array("B", data))


def smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)


def test_jpeg_and_png_colour_decode_in_rgb_order() -> None:
    rgb = smooth_rgb()
    fmt, data = rgb_to_compressed(rgb, "png")
    assert fmt == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(message(fmt, data)), rgb)
    np.testing.assert_array_equal(compressed_to_rgb(message("png", data)), rgb)  # older drivers: format only
    fmt, data = rgb_to_compressed(rgb, "jpeg", jpeg_quality=95)
    decoded = compressed_to_rgb(message(fmt, data))
    assert decoded.shape == rgb.shape and np.abs(decoded.astype(int) - rgb).mean() < 3.0
    # "compressed rgb8": the file holds RGB-ordered channels, decoded as they are.
    _, swapped = rgb_to_compressed(np.ascontiguousarray(rgb[..., ::-1]), "png")
    np.testing.assert_array_equal(compressed_to_rgb(message("rgb8; png compressed rgb8", swapped)), rgb)


def test_compressed_depth_16uc1_is_lossless_millimetres() -> None:
    depth = np.array([[0.0, 1.234, np.nan], [9.999, 10.5, 0.5]], dtype=np.float32)  # 10.5 m: beyond depth_max
    fmt, data = depth_to_compressed_depth(depth, "16UC1")
    assert fmt == "16UC1; compressedDepth png"
    got = compressed_depth_to_depth(message(fmt, data))
    np.testing.assert_allclose(got, [[0.0, 1.234, 0.0], [9.999, 0.0, 0.5]], atol=1e-6)
    assert compressed_depth_to_depth(message("16UC1; compressedDepth", data)).shape == (2, 3)  # older format string


def test_compressed_depth_32fc1_uses_upstream_inverse_depth_quantisation() -> None:
    depth = np.array([[1.0, 2.5, 4.0, 0.0]], dtype=np.float32)
    fmt, data = depth_to_compressed_depth(depth, "32FC1")
    _, quant_a, quant_b = COMPRESSED_DEPTH_HEADER.unpack(data[:12])
    # Upstream defaults depth_max 10, depth_quantization 100: A = 100 * 101, B = 1 - A / 10.
    assert (quant_a, quant_b) == (10100.0, -1009.0)
    got = compressed_depth_to_depth(message(fmt, data))
    assert got[0, 0] == pytest.approx(1.0)  # v = 10100 / 1 - 1009 = 9091 exactly
    np.testing.assert_allclose(got[0, :3], depth[0, :3], rtol=2e-3)  # quantisation step ~ d^2 / A
    assert np.isnan(got[0, 3])


def test_corrupt_or_mismatched_compressed_images_raise_one_line() -> None:
    with pytest.raises(InvalidMessage, match="cannot decode 64 bytes"):
        compressed_to_rgb(message("rgb8; jpeg compressed bgr8", bytes(range(64))))
    with pytest.raises(InvalidMessage, match="empty data"):
        compressed_to_rgb(message("jpeg", b""))
    _, depth_data = depth_to_compressed_depth(np.ones((4, 4), np.float32))
    with pytest.raises(UnsupportedEncoding, match="compressedDepth"):
        compressed_to_rgb(message("16UC1; compressedDepth png", depth_data))
    with pytest.raises(InvalidMessage, match="no image after its 12-byte header"):
        compressed_depth_to_depth(message("16UC1; compressedDepth png", depth_data[:12]))
    with pytest.raises(InvalidMessage, match="16-bit single-channel PNG"):
        compressed_depth_to_depth(message("16UC1; compressedDepth png", depth_data[:12] + bytes(50)))
    with pytest.raises(UnsupportedEncoding, match="only png"):
        compressed_depth_to_depth(message("16UC1; compressedDepth rvl", depth_data))
    _, colour_png = rgb_to_compressed(smooth_rgb(), "png")
    with pytest.raises(InvalidMessage, match="16-bit"):  # a colour PNG behind a depth header
        compressed_depth_to_depth(message("16UC1; compressedDepth png", depth_data[:12] + colour_png))
