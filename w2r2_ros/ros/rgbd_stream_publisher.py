"""A node that plays the robot's camera: RGB, depth, camera_info, pose (or /tf) and a point cloud.

Tests, the ingest benchmark and demos feed the scene memory node through it over
real DDS. Messages are built once (:func:`rgbd_messages`) and re-stamped on every
publish, so a long stream of pre-rendered frames costs the publisher little
more than the DDS write.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from tf2_msgs.msg import TFMessage

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.ros.conversions import (
    depth_to_image,
    intrinsics_to_camera_info,
    matrix_to_odometry,
    matrix_to_pose_stamped,
    matrix_to_transform_stamped,
    pose_stamped_to_matrix,
    rgb_to_image,
    seconds_to_stamp,
)
from w2r2_ros.ros.tf_listener import TF_QOS, TF_STATIC_QOS
from w2r2_ros.sim.robot_tf import RobotFrames, dynamic_transforms, static_transforms
from w2r2_ros.ros.transport_limits import large_sample_warning

DEFAULT_TOPICS = {
    "rgb": "/camera/color/image_raw",
    "depth": "/camera/depth/image_raw",
    "camera_info": "/camera/color/camera_info",
    "pose": "/camera/pose",
    "odometry": "/camera/odom",
    "cloud": "/points",
    "tf": "/tf",
    "tf_static": "/tf_static",
}


@dataclass
class RgbdMessages:
    """One camera frame as ready-to-publish messages (stamps are overwritten when published)."""

    rgb: Image
    depth: Image
    camera_info: CameraInfo
    pose: PoseStamped
    odometry: Odometry


def rgbd_messages(
    rgb: np.ndarray,
    depth: np.ndarray,
    intrinsics: Intrinsics,
    cam_to_map: np.ndarray,
    camera_frame: str = "camera_color_optical_frame",
    map_frame: str = "map",
    rgb_encoding: str = "rgb8",
    depth_encoding: str = "16UC1",
) -> RgbdMessages:
    """Build the messages of one frame; ``depth`` is float metres (16UC1 sends millimetres)."""
    return RgbdMessages(
        rgb=rgb_to_image(rgb, 0.0, camera_frame, encoding=rgb_encoding),
        depth=depth_to_image(depth, 0.0, camera_frame, encoding=depth_encoding),
        camera_info=intrinsics_to_camera_info(intrinsics, 0.0, camera_frame),
        pose=matrix_to_pose_stamped(cam_to_map, 0.0, map_frame),
        odometry=matrix_to_odometry(cam_to_map, 0.0, map_frame, camera_frame),
    )


class RgbdStreamPublisher(Node):
    """Publishers for the scene memory node's input topics (reliable, keep-last ``depth``).

    A reliable writer also matches the node's best-effort (sensor QoS) readers; the
    publishers are public (``rgb``, ``depth``, ``camera_info``, ``pose``,
    ``odometry``, ``cloud``, ``tf``, ``tf_static``) so tests can send hand-made, broken messages too.
    With ``pose_source="tf"`` the camera pose goes out as a robot's tf tree
    (``sim.robot_tf``: ``frames``; :meth:`publish_static_tf` once first).
    """

    def __init__(self, topics: dict[str, str] | None = None, depth: int = 10, frames: RobotFrames = RobotFrames(),
                 **node_kwargs) -> None:
        super().__init__("rgbd_stream_publisher", **node_kwargs)
        self.frames = frames
        names = {**DEFAULT_TOPICS, **(topics or {})}
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self.rgb = self.create_publisher(Image, names["rgb"], qos)
        self.depth = self.create_publisher(Image, names["depth"], qos)
        self.camera_info = self.create_publisher(CameraInfo, names["camera_info"], qos)
        self.pose = self.create_publisher(PoseStamped, names["pose"], qos)
        self.odometry = self.create_publisher(Odometry, names["odometry"], qos)
        self.cloud = self.create_publisher(PointCloud2, names["cloud"], qos)
        self.tf = self.create_publisher(TFMessage, names["tf"], TF_QOS)
        self.tf_static = self.create_publisher(TFMessage, names["tf_static"], TF_STATIC_QOS)

    def subscribers_matched(self, streams: tuple[str, ...] = ("rgb", "depth", "camera_info", "pose")) -> bool:
        """Whether every named stream has at least one matched subscriber (publish only then, or frames are lost)."""
        return all(getattr(self, stream).get_subscription_count() > 0 for stream in streams)

    def publish_rgbd(self, messages: RgbdMessages, stamp: float, pose_source: str = "pose", pose_lead_s: float = 0.0) -> None:
        """Re-stamp and publish one frame: the pose first, ``pose_lead_s`` before the images (so a reader
        that pairs images with the poses it already has, as SceneMemory does, has it), then camera_info,
        depth and colour."""
        time_msg = seconds_to_stamp(stamp)
        for msg in (messages.rgb, messages.depth, messages.camera_info, messages.pose, messages.odometry):
            msg.header.stamp = time_msg
        if pose_source == "odometry":
            self.odometry.publish(messages.odometry)
        elif pose_source == "tf":
            transforms = dynamic_transforms(pose_stamped_to_matrix(messages.pose), stamp, self.frames)
            self.tf.publish(TFMessage(transforms=[matrix_to_transform_stamped(t, time_msg, parent, child)
                                                  for parent, child, t in transforms]))
        else:
            self.pose.publish(messages.pose)
        if pose_lead_s > 0:
            time.sleep(pose_lead_s)
        self.camera_info.publish(messages.camera_info)
        self.depth.publish(messages.depth)
        self.rgb.publish(messages.rgb)

    def publish_static_tf(self) -> None:
        """The camera mount and optical frame on /tf_static (latched, like tf2's static broadcaster)."""
        self.tf_static.publish(TFMessage(transforms=[matrix_to_transform_stamped(t, 0.0, parent, child)
                                                     for parent, child, t in static_transforms(self.frames)]))

    def publish_cloud(self, cloud: PointCloud2, stamp: float) -> None:
        """Re-stamp and publish a cloud; one over the transport's practical size is announced (transport_limits)."""
        cloud.header.stamp = seconds_to_stamp(stamp)
        warning = large_sample_warning("PointCloud2", self.cloud.topic_name, len(cloud.data))
        if warning is not None:
            self.get_logger().warning(warning, throttle_duration_sec=5.0)
        self.cloud.publish(cloud)
