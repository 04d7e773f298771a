"""sensor_msgs/CompressedImage <-> numpy: image_transport's ``compressed`` and ``compressedDepth`` formats.

What robots record: a colour camera through image_transport publishes
``<image topic>/compressed`` (JPEG or PNG bytes) and a depth camera
``<depth topic>/compressedDepth``. The formats, as the upstream plugins
(ros-perception/image_transport_plugins) write them:

- ``compressed``: ``format`` is ``"jpeg"``/``"png"`` (older drivers) or
  ``"<encoding>; <jpeg|png> compressed <bgr8|rgb8|...>"``; ``data`` is the
  file. OpenCV decodes it in the channel order it was encoded in: the usual
  ``compressed bgr8`` is true colour in OpenCV's BGR order, ``compressed rgb8``
  holds RGB-ordered bytes.
- ``compressedDepth``: ``format`` is ``"<16UC1|32FC1>; compressedDepth png"``
  (``"...; compressedDepth"`` from older versions); ``data`` is a 12-byte
  header (int32 format, float32 quantisation parameters A and B,
  little-endian) followed by a 16-bit PNG. 16UC1: the PNG holds the
  millimetres. 32FC1: it holds the quantised inverse depth ``v = A / d + B``
  (0 for invalid), decoded as ``d = A / (v - B)``. ``compressedDepth rvl``
  (a newer option) is refused with a message.

Like ``image_codec``, only the fields every message kind shares are read
(``format``, ``data``), and every problem raises :class:`InvalidMessage` or
:class:`UnsupportedEncoding` with one line.
"""
from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from w2r2_ros.sensors.errors import InvalidMessage, UnsupportedEncoding

COMPRESSED_DEPTH_HEADER = struct.Struct("<iff")  # compressionFormat (INV_DEPTH = 0), depthParam[2]
_INV_DEPTH = 0
# Upstream's default parameters for 32FC1: depth_max 10 m, depth_quantization 100.
DEFAULT_DEPTH_MAX_M = 10.0
DEFAULT_DEPTH_QUANTIZATION = 100.0


def _bytes(msg: Any) -> np.ndarray:
    return np.frombuffer(msg.data, dtype=np.uint8)  # array.array (rclpy), bytes or ndarray (rosbags)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """A ``compressed`` colour image (JPEG/PNG) as uint8 (H, W, 3) RGB."""
    fmt = str(msg.format)
    if "compressedDepth" in fmt:
        raise UnsupportedEncoding(f"CompressedImage: format '{fmt}' is a compressedDepth (depth) stream, not colour")
    data = _bytes(msg)
    if data.size == 0:
        raise InvalidMessage(f"CompressedImage: empty data (format '{fmt}')")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise InvalidMessage(f"CompressedImage: cannot decode {data.size} bytes as an image (format '{fmt}')")
    if "compressed rgb" in fmt:  # the file holds RGB-ordered channels, which OpenCV returns as they are
        return decoded
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def compressed_depth_to_depth(msg: Any) -> np.ndarray:
    """A ``compressedDepth`` image as float32 metres (H, W), 0 or NaN invalid."""
    fmt = str(msg.format)
    encoding, _, transport = fmt.partition(";")
    encoding, transport = encoding.strip(), transport.strip()
    if transport and not transport.startswith("compressedDepth"):
        raise UnsupportedEncoding(f"CompressedImage: format '{fmt}' is not a compressedDepth stream")
    if transport not in ("", "compressedDepth", "compressedDepth png"):
        raise UnsupportedEncoding(f"CompressedImage: compressedDepth format '{fmt}' not supported (only png)")
    if encoding not in ("16UC1", "32FC1"):
        raise UnsupportedEncoding(f"CompressedImage: compressedDepth of '{encoding}' not supported (16UC1 or 32FC1)")
    data = _bytes(msg)
    if data.size <= COMPRESSED_DEPTH_HEADER.size:
        raise InvalidMessage(f"CompressedImage: compressedDepth data of {data.size} bytes has no image after its 12-byte header")
    _, quant_a, quant_b = COMPRESSED_DEPTH_HEADER.unpack(data[: COMPRESSED_DEPTH_HEADER.size].tobytes())
    pixels = cv2.imdecode(data[COMPRESSED_DEPTH_HEADER.size:], cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise InvalidMessage(f"CompressedImage: cannot decode {data.size - COMPRESSED_DEPTH_HEADER.size} bytes "
                             f"as a 16-bit single-channel PNG (format '{fmt}')")
    if encoding == "16UC1":
        return pixels.astype(np.float32) * np.float32(0.001)
    if not (np.isfinite(quant_a) and np.isfinite(quant_b)) or quant_a <= 0:
        raise InvalidMessage(f"CompressedImage: compressedDepth 32FC1 header has invalid quantisation A={quant_a} B={quant_b}")
    valid = pixels > 0
    depth = np.full(pixels.shape, np.nan, dtype=np.float32)
    with np.errstate(divide="ignore"):
        depth[valid] = np.float32(quant_a) / (pixels[valid].astype(np.float32) - np.float32(quant_b))
    return depth


def rgb_to_compressed(rgb: np.ndarray, image_format: str = "jpeg", jpeg_quality: int = 90) -> tuple[str, bytes]:
    """``(format, data)`` of a ``compressed`` message for uint8 (H, W, 3) RGB, as image_transport writes it."""
    if image_format not in ("jpeg", "png"):
        raise ValueError(f"rgb_to_compressed: image_format must be 'jpeg' or 'png', got {image_format!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if image_format == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, data = cv2.imencode(f".{'jpg' if image_format == 'jpeg' else 'png'}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"rgb_to_compressed: OpenCV could not encode a {rgb.shape} image as {image_format}")
    return f"rgb8; {image_format} compressed bgr8", data.tobytes()


def depth_to_compressed_depth(
    depth: np.ndarray,
    encoding: str = "16UC1",
    depth_max_m: float = DEFAULT_DEPTH_MAX_M,
    depth_quantization: float = DEFAULT_DEPTH_QUANTIZATION,
) -> tuple[str, bytes]:
    """``(format, data)`` of a ``compressedDepth`` message for float metres, as the upstream plugin writes it.

    Depth at or beyond ``depth_max_m`` and invalid depth become 0 (invalid)."""
    depth = np.asarray(depth, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0) & (depth < depth_max_m)
    if encoding == "16UC1":
        pixels = np.where(valid, np.rint(np.nan_to_num(depth) * 1000.0), 0).astype(np.uint16)
        header = COMPRESSED_DEPTH_HEADER.pack(_INV_DEPTH, 0.0, 0.0)
    elif encoding == "32FC1":
        quant_a = np.float32(depth_quantization * (depth_quantization + 1.0))
        quant_b = np.float32(1.0 - quant_a / depth_max_m)
        pixels = np.zeros(depth.shape, dtype=np.uint16)
        pixels[valid] = (quant_a / depth[valid] + quant_b).astype(np.uint16)  # truncation, as the C++ cast does
        header = COMPRESSED_DEPTH_HEADER.pack(_INV_DEPTH, float(quant_a), float(quant_b))
    else:
        raise UnsupportedEncoding(f"depth_to_compressed_depth: encoding '{encoding}' not supported (16UC1 or 32FC1)")
    ok, png = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"depth_to_compressed_depth: OpenCV could not encode a {depth.shape} depth image")
    return f"{encoding}; compressedDepth png", header + png.tobytes()
