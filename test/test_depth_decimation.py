"""decimate_depth: a frame fused at a stride keeps what its skipped pixels measured."""
import numpy as np

from w2r2_ros.geometry.camera import Intrinsics, backproject_depth
from w2r2_ros.scene.depth_decimation import decimate_depth
from w2r2_ros.scene.depth_noise import DepthNoise

INTRINSICS = Intrinsics.from_fov(120, 90, 70.0)
IDENTITY = np.eye(4)
GREY = np.full((90, 120, 3), 100, dtype=np.uint8)


def test_stride_one_is_the_frame_itself():
    rng = np.random.default_rng(0)
    depth = (2.0 + rng.random((90, 120))).astype(np.float32)
    depth[rng.random(depth.shape) < 0.2] = np.nan
    rgb = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    points, colours = decimate_depth(depth, rgb, INTRINSICS, IDENTITY, 1)
    expected, pixels = backproject_depth(depth, INTRINSICS, IDENTITY, 1)
    assert np.allclose(points, expected, atol=1e-5)
    assert np.array_equal(colours, rgb.reshape(-1, 3)[pixels])


def test_block_medians_beat_the_range_noise_down():
    """A wall 3 m away seen with Kinect noise: the median pixels of 3x3 blocks scatter about 0.4 times
    as much as one pixel per block did."""
    noise = DepthNoise()
    sigma = float(noise.sigma(np.float32(3.0)))
    depth = (3.0 + sigma * np.random.default_rng(1).standard_normal((90, 120))).astype(np.float32)
    points, _ = decimate_depth(depth, GREY, INTRINSICS, IDENTITY, 3)
    one_pixel, _ = backproject_depth(depth, INTRINSICS, IDENTITY, 3)
    assert len(points) == len(one_pixel) == 30 * 40
    assert np.std(one_pixel[:, 2]) > 0.8 * sigma
    assert np.std(points[:, 2]) < 0.55 * sigma


def test_no_point_between_two_surfaces_and_holes_are_bridged():
    """Blocks that straddle a box edge 1 m in front of a wall 3 m away, with a stray reading between
    them, give points on either surface, never between; on a dark surface that lost 60 % of its pixels
    nearly every block still gives one, with the colour of the pixel it came from."""
    depth = np.full((90, 120), 3.0, dtype=np.float32)
    depth[:, :61] = 1.0  # the edge runs through a block
    depth[31, 61] = 2.0
    rgb = np.zeros((90, 120, 3), dtype=np.uint8)
    rgb[:, :61] = 255
    points, colours = decimate_depth(depth, rgb, INTRINSICS, IDENTITY, 3)
    z = points[:, 2]
    near = np.abs(z - 1.0) < 1e-4
    assert np.all(near | (np.abs(z - 3.0) < 1e-4))
    assert np.all(colours[near] == 255) and np.all(colours[~near] == 0)
    dark = np.full((90, 120), 2.0, dtype=np.float32)
    dark[np.random.default_rng(2).random(dark.shape) < 0.6] = 0.0
    points, _ = decimate_depth(dark, GREY, INTRINSICS, IDENTITY, 3)
    one_pixel, _ = backproject_depth(np.where(dark > 0, dark, np.nan), INTRINSICS, IDENTITY, 3)
    assert len(points) >= 0.97 * 30 * 40 and len(one_pixel) < 0.5 * 30 * 40
    assert np.allclose(points[:, 2], 2.0)
