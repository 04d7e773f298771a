"""/tf and /tf_static into a transform buffer: tf2_ros's when it is importable (a robot), ours otherwise.

``tf2_ros`` has no wheel (docs ENVIRONMENT.md); ``tf2_msgs`` is generated here
(interfaces/README.md). The node subscribes to both topics itself with tf2's
QoS (``/tf``: reliable, keep last 100; ``/tf_static``: reliable, transient
local, so transforms latched before the node started arrive) and feeds each
transform to the buffer; a transform the buffer refuses (non-unit quaternion,
cycle, ...) is reported through ``on_invalid`` and the others of the message
are kept. A ``/tf`` stamp more than ``BACKWARDS_JUMP_S`` behind the newest one
seen (a bag played with ``--loop``, a simulated clock restarted) clears the
dynamic transforms, as tf2_ros does on a time jump; otherwise the cache, pruned
behind the newest sample, would refuse every lookup of the new, older time.
With ``tf2_ros`` the C++ ``BufferCore`` does the lookups behind the
same small interface as :class:`TransformBuffer`, and its exceptions become
ours, so the node handles both alike.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import yaml
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from w2r2_ros.geometry.transform_buffer import (
    ConnectivityError,
    ExtrapolationError,
    InvalidTransformError,
    TransformBuffer,
    TransformBufferConfig,
    TransformError,
    UnknownFrameError,
    checked_transform,
)
from w2r2_ros.geometry.transforms import make_transform, rotation_from_quaternion

TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
TF_BACKENDS = ("auto", "builtin", "tf2_ros")
BACKWARDS_JUMP_S = 1.0


def _seconds(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class Tf2RosBuffer:
    """``tf2_ros.Buffer`` behind :class:`TransformBuffer`'s interface (a robot's C++ tf2 core)."""

    def __init__(self, config: TransformBufferConfig) -> None:
        import tf2_ros  # only on a robot; make_transform_buffer checks that it imports
        from rclpy.duration import Duration

        self._tf2 = tf2_ros
        self._buffer = tf2_ros.Buffer(cache_time=Duration(seconds=config.cache_time_s))
        self._quaternion_tolerance = config.quaternion_tolerance

    def set_transform(self, parent: str, child: str, stamp: float, translation: np.ndarray,
                      rotation_xyzw: np.ndarray, static: bool = False) -> None:
        from geometry_msgs.msg import TransformStamped

        # The same refusals as the built-in buffer (tf2 itself only logs a bad quaternion).
        parent, child, translation, q = checked_transform(parent, child, stamp, translation, rotation_xyzw,
                                                          self._quaternion_tolerance)
        msg = TransformStamped()
        msg.header.frame_id, msg.child_frame_id = parent, child
        total_ns = int(round(stamp * 1e9))
        msg.header.stamp.sec, msg.header.stamp.nanosec = total_ns // 1_000_000_000, total_ns % 1_000_000_000
        t = msg.transform.translation
        t.x, t.y, t.z = (float(v) for v in translation)
        r = msg.transform.rotation
        r.x, r.y, r.z, r.w = (float(v) for v in q)
        if static:
            self._buffer.set_transform_static(msg, "w2r2_ros")
        else:
            self._buffer.set_transform(msg, "w2r2_ros")

    def lookup(self, target_frame: str, source_frame: str, stamp: float | None = None) -> np.ndarray:
        from rclpy.time import Time

        when = Time() if stamp is None else Time(nanoseconds=int(round(stamp * 1e9)))
        tf2 = self._tf2
        try:
            msg = self._buffer.lookup_transform(target_frame, source_frame, when)
        except tf2.ExtrapolationException as error:
            raise ExtrapolationError(str(error), future="future" in str(error)) from None
        except tf2.LookupException as error:
            raise UnknownFrameError(str(error)) from None
        except tf2.ConnectivityException as error:
            raise ConnectivityError(str(error)) from None
        except tf2.TransformException as error:
            raise TransformError(str(error)) from None
        t, r = msg.transform.translation, msg.transform.rotation
        return make_transform(rotation_from_quaternion(np.array([r.x, r.y, r.z, r.w])), np.array([t.x, t.y, t.z]))

    def frames(self) -> set[str]:
        tree = yaml.safe_load(self._buffer.all_frames_as_yaml()) or {}
        return set(tree) | {str(entry.get("parent", "")) for entry in tree.values()} - {""}

    def clear(self) -> None:
        """Dynamic transforms only: tf2 keeps static ones (its StaticCache ignores clearing)."""
        self._buffer.clear()


def make_transform_buffer(backend: str = "auto", config: TransformBufferConfig = TransformBufferConfig()):
    """``auto``: tf2_ros where it imports (a robot), else the built-in :class:`TransformBuffer`."""
    if backend not in TF_BACKENDS:
        raise ValueError(f"tf_backend must be one of {TF_BACKENDS}, got {backend!r}")
    if backend == "builtin":
        return TransformBuffer(config)
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        if backend == "tf2_ros":
            raise ValueError("tf_backend 'tf2_ros': tf2_ros does not import here (use 'auto' or 'builtin')") from None
        return TransformBuffer(config)
    return Tf2RosBuffer(config)


class TfListener:
    """Subscribes ``/tf`` and ``/tf_static`` on ``node`` and feeds ``buffer``.

    ``on_update()`` runs after each message (e.g. to retry lookups that waited
    for it); ``on_invalid(message)`` for each refused transform;
    ``on_jump(newest, stamp)`` after a jump back in time cleared the buffer.
    """

    def __init__(self, node: Node, buffer, on_update: Callable[[], None], on_invalid: Callable[[str], None],
                 callback_group: CallbackGroup | None = None, tf_topic: str = "/tf", tf_static_topic: str = "/tf_static",
                 on_jump: Callable[[float, float], None] | None = None) -> None:
        self.buffer = buffer
        self._on_update = on_update
        self._on_invalid = on_invalid
        self._on_jump = on_jump
        self._newest: float | None = None
        self.received = 0
        self.subscriptions = [
            node.create_subscription(TFMessage, tf_topic, lambda msg: self._on_message(msg, False), TF_QOS,
                                     callback_group=callback_group),
            node.create_subscription(TFMessage, tf_static_topic, lambda msg: self._on_message(msg, True),
                                     TF_STATIC_QOS, callback_group=callback_group),
        ]

    def _on_message(self, msg: TFMessage, static: bool) -> None:
        self.received += 1
        stamps = [_seconds(t.header.stamp) for t in msg.transforms]
        if not static and stamps:
            newest, latest = self._newest, max(stamps)
            if newest is not None and latest < newest - BACKWARDS_JUMP_S:
                self.buffer.clear()
                newest = None
                if self._on_jump is not None:
                    self._on_jump(self._newest, latest)
            self._newest = latest if newest is None else max(newest, latest)
        for transform in msg.transforms:
            t, r = transform.transform.translation, transform.transform.rotation
            try:
                self.buffer.set_transform(transform.header.frame_id, transform.child_frame_id,
                                          _seconds(transform.header.stamp), np.array([t.x, t.y, t.z]),
                                          np.array([r.x, r.y, r.z, r.w]), static=static)
            except InvalidTransformError as error:
                self._on_invalid(f"{'/tf_static' if static else '/tf'}: {error}")
        self._on_update()

