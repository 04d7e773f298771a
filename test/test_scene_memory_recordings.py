"""scene_memory_node on streams as robots record them: compressed colour and depth, corrupt images, silent topics."""
import array

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.ros.conversions import intrinsics_to_camera_info, matrix_to_pose_stamped, seconds_to_stamp
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import parameter_overrides
from w2r2_ros.ros.scene_memory_node import SceneMemoryNode
from w2r2_ros.sensors.compressed_codec import depth_to_compressed_depth, rgb_to_compressed
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene

FRAME = "camera_color_optical_frame"


class CompressedCamera(Node):
    """A robot whose driver publishes through image_transport's compressed and compressedDepth, and the raw
    colour topic too (which the node is not told to read)."""

    def __init__(self, **kwargs) -> None:
        super().__init__("compressed_camera", **kwargs)
        self.info = self.create_publisher(CameraInfo, "/camera/color/camera_info", 10)
        self.pose = self.create_publisher(PoseStamped, "/camera/pose", 10)
        self.rgb = self.create_publisher(CompressedImage, "/camera/color/image_raw/compressed", 10)
        self.depth = self.create_publisher(CompressedImage, "/camera/depth/image_raw/compressedDepth", 10)
        self.raw = self.create_publisher(Image, "/camera/color/image_raw", 10)

    def send(self, recording, index: int, rgb_data: bytes | None = None) -> None:
        stamp = float(recording.stamps[index])
        frame = recording.frames[index]
        self.pose.publish(matrix_to_pose_stamped(recording.poses[index], stamp, "map"))
        self.info.publish(intrinsics_to_camera_info(recording.intrinsics, stamp, FRAME))
        for publisher, (fmt, data) in ((self.depth, depth_to_compressed_depth(frame.depth)),
                                       (self.rgb, rgb_to_compressed(frame.rgb, "jpeg"))):
            msg = CompressedImage(format=fmt, data=array.array("B", rgb_data if rgb_data is not None and publisher is self.rgb else data))
            msg.header.stamp, msg.header.frame_id = seconds_to_stamp(stamp), FRAME
            publisher.publish(msg)


@pytest.fixture(scope="module")
def recording():
    return record_scene(generate_scene("compressed", 2), n_frames=4, intrinsics=Intrinsics.from_fov(160, 120, 70.0))


def test_compressed_streams_are_fused_corrupt_ones_dropped_and_silence_named(recording):
    params = {"pose_source": "pose", "rgb_transport": "compressed", "depth_transport": "compressedDepth",
              "input_timeout_s": 0.5, "warning_period_s": 60.0, "keyframe_min_translation_m": 0.0}
    with NodeRuntime() as robot_runtime, NodeRuntime() as runtime:
        camera = robot_runtime.add(CompressedCamera(context=robot_runtime.context))
        node = runtime.add(SceneMemoryNode(context=runtime.context, parameter_overrides=parameter_overrides(params)))
        publishers = (camera.info, camera.pose, camera.rgb, camera.depth)
        assert runtime.wait_until(lambda: all(p.get_subscription_count() > 0 for p in publishers)
                                  and all(s.get_publisher_count() > 0 for s in node.subscriptions
                                          if s.topic_name.startswith("/camera/")), timeout_s=20.0)
        # Nothing sent yet: each input is named as silent, with its type; the raw colour stream is pointed out.
        assert runtime.wait_until(lambda: "silent_rgb" in node.warnings.last_message, timeout_s=10.0)
        silent = node.warnings.last_message["silent_rgb"]
        assert "nothing received on /camera/color/image_raw/compressed (sensor_msgs/msg/CompressedImage)" in silent
        assert "similar topics: /camera/color/image_raw (sensor_msgs/msg/Image)" in silent and "rgb_transport" in silent

        for index in range(3):
            camera.send(recording, index)
            assert runtime.wait_until(lambda: node.frame_outcomes.get("keyframe", 0) == index + 1, timeout_s=10.0), (
                node.frame_outcomes, node.drop_counts)
        camera.send(recording, 3, rgb_data=bytes(range(200)))  # a corrupt JPEG
        assert runtime.wait_until(lambda: node.drop_counts.get("invalid_image") == 1, timeout_s=10.0), node.drop_counts
        assert "cannot decode 200 bytes" in node.warnings.last_message["invalid_image"]
        keyframes = node.memory.snapshot(include_cloud=False).keyframes
    assert len(keyframes) == 3
    np.testing.assert_allclose(keyframes[0].depth, recording.frames[0].depth, atol=5e-4 + 1e-6)  # 16UC1 PNG: lossless mm
    assert np.abs(keyframes[0].rgb.astype(int) - recording.frames[0].rgb).mean() < 8  # JPEG
