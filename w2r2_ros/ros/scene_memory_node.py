"""scene_memory_node: RGB-D + pose (+ point clouds) in, fused cloud and object proposals out.

A thin node over :class:`w2r2_ros.scene.memory.SceneMemory`: it decodes
messages (``conversions``), hands them to the memory (which pairs RGB, depth and
pose by stamp, keeps keyframes and fuses voxels), and on a timer recomputes the
proposals and publishes the fused cloud, proposal markers and an
ObjectProposalArray. Proposals are recomputed in the timer, never in an image
callback, so ingest keeps up with a 30 Hz camera.

Poses come from ``geometry_msgs/PoseStamped`` (``pose_source: pose``) or
``nav_msgs/Odometry`` (``pose_source: odometry``), the pose of the camera
*optical* frame in ``map_frame``. ``/tf`` is not read: its type
``tf2_msgs/TFMessage`` has no wheel in this environment (docs ENVIRONMENT.md);
on a robot, publish the camera pose on a topic (e.g. from a small tf listener).
A frame whose pose has not arrived yet (poses are often processed after the
images of the same instant) waits up to ``max_pose_wait_s`` for it in the
memory; when a later pose settles it, the outcome is counted and logged like
any other.

Lifecycle (``rclpy.lifecycle``, as yolo_ros): the constructor declares the
parameters and builds the memory; configure reads the live parameters and
offers the ``~/reset`` service (std_srvs/Trigger: forget the scene); activate
creates the subscriptions, publishers and the publishing timer; deactivate
removes them again (nothing is received or published while inactive, the memory
is kept); cleanup forgets the memory. With ``autostart`` (default) the node
configures and activates itself when created. Topic names are relative, so a
namespace or a remap moves them. Every new keyframe is published once as a
lossless ``SceneKeyframe`` (reliable, transient-local), so a grounding node in
another process can read the scene (``publish_keyframes``).

Bad input (unsupported encodings, size mismatches, all-invalid depth, missing
camera_info, no pose within the sync tolerance, unusable clouds, stamps going
backwards) is dropped with a rate-limited warning and counted per reason in
:attr:`SceneMemoryNode.drop_counts`; the node keeps running.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from typing import Any, Callable

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.ros.conversions import (
    InvalidMessage,
    UnsupportedEncoding,
    camera_info_to_intrinsics,
    cloud_to_xyz_rgb,
    image_to_depth,
    image_to_rgb,
    make_header,
    odometry_to_matrix,
    pose_stamped_to_matrix,
    stamp_to_seconds,
    xyz_rgb_to_cloud,
)
from w2r2_ros.ros.interfaces import ObjectProposalArray, SceneKeyframe
from w2r2_ros.ros.keyframe_messages import keyframe_to_msg
from w2r2_ros.ros.lifecycle_support import LifecycleError, bring_up, lifecycle_step
from w2r2_ros.ros.parameter_specs import ParamSpec, declare_parameters, on_live_change
from w2r2_ros.ros.proposal_markers import proposals_to_array, proposals_to_marker_array
from w2r2_ros.ros.rate_limited_log import RateLimitedWarner
from w2r2_ros.scene.keyframes import KeyframePolicy
from w2r2_ros.scene.memory import FrameOutcome, IngestStatus, SceneMemory, SceneMemoryConfig
from w2r2_ros.scene.proposals import ProposalConfig

POSE_SOURCES = ("pose", "odometry")
# Callback durations kept for diagnostics and the ingest benchmark (bounded: a long run must not grow).
_TIMING_WINDOW = 20_000


def parameter_specs() -> dict[str, ParamSpec]:
    """Every parameter: default, meaning, range; numeric defaults come from SceneMemoryConfig, the one source."""
    memory, policy, proposals = SceneMemoryConfig(), KeyframePolicy(), ProposalConfig()
    topic = "(relative: resolved in the node's namespace, remappable)"
    return {
        "autostart": ParamSpec(True, "configure and activate when created (false: stay unconfigured for a lifecycle manager)"),
        "rgb_topic": ParamSpec("camera/color/image_raw", f"sensor_msgs/Image colour input, rgb8 or bgr8 {topic}"),
        "depth_topic": ParamSpec("camera/depth/image_raw", f"sensor_msgs/Image depth registered to colour, 16UC1 mm or 32FC1 m {topic}"),
        "camera_info_topic": ParamSpec("camera/color/camera_info", f"sensor_msgs/CameraInfo of the colour camera {topic}"),
        "pose_source": ParamSpec("pose", "where the camera pose comes from", choices=POSE_SOURCES),
        "pose_topic": ParamSpec("camera/pose", f"geometry_msgs/PoseStamped of the camera optical frame in map_frame {topic}"),
        "odom_topic": ParamSpec("camera/odom", f"nav_msgs/Odometry of the camera optical frame (pose_source odometry) {topic}"),
        "cloud_topic": ParamSpec("points", f"sensor_msgs/PointCloud2 in map_frame (optional input) {topic}"),
        "fused_cloud_topic": ParamSpec("w2r2/scene/cloud", f"fused voxel cloud (output) {topic}"),
        "proposal_markers_topic": ParamSpec("w2r2/scene/proposals", f"proposal boxes as a MarkerArray (output) {topic}"),
        "proposal_array_topic": ParamSpec("w2r2/scene/proposal_array", f"w2r2_ros/ObjectProposalArray (output) {topic}"),
        "keyframes_topic": ParamSpec("w2r2/scene/keyframes", f"w2r2_ros/SceneKeyframe, each new keyframe once (output) {topic}"),
        "publish_keyframes": ParamSpec(True, "publish keyframes for a grounding node in another process (PNG + zlib, lossless)"),
        "map_frame": ParamSpec("map", "frame of poses, clouds and outputs"),
        "publish_rate_hz": ParamSpec(1.0, "outputs and proposals are recomputed this often", minimum=0.01, maximum=100.0, live=True),
        "image_qos_depth": ParamSpec(5, "best-effort keep-last queue of images and clouds", minimum=1, maximum=1000),
        "pose_qos_depth": ParamSpec(200, "keep-last queue of poses (~2 s of a 100 Hz odometry)", minimum=1, maximum=100000),
        "warning_period_s": ParamSpec(5.0, "at most one warning per kind of bad input per period", minimum=0.0, maximum=3600.0, live=True),
        "sync_tolerance_s": ParamSpec(memory.sync_tolerance_s, "RGB, depth and pose stamps must agree within this", minimum=0.0, maximum=10.0),
        "max_pose_wait_s": ParamSpec(memory.max_pose_wait_s, "a frame newer than the newest pose waits this long (image time) for it", minimum=0.0, maximum=60.0),
        "max_pose_wait_frames": ParamSpec(memory.max_pose_wait_frames, "frames waiting for their pose; the oldest is dropped beyond", minimum=0, maximum=10000),
        "max_keyframes": ParamSpec(memory.max_keyframes, "K: keyframes kept (the grounding model reads them)", minimum=1, maximum=10000),
        "keyframe_min_translation_m": ParamSpec(policy.min_translation_m, "a frame is a keyframe after this much motion", minimum=0.0),
        "keyframe_min_rotation_deg": ParamSpec(policy.min_rotation_deg, "... or this much rotation", minimum=0.0, maximum=360.0),
        "keyframe_max_interval_s": ParamSpec(policy.max_interval_s, "... or after this long", minimum=0.0),
        "voxel_size": ParamSpec(memory.voxel_size, "fusion and proposal clustering grid, metres", minimum=0.001, maximum=10.0),
        "max_voxels": ParamSpec(memory.max_voxels, "least recently updated voxels are evicted beyond this", minimum=1),
        "depth_stride": ParamSpec(memory.depth_stride, "fuse every n-th depth row and column", minimum=1, maximum=64),
        "min_depth_m": ParamSpec(memory.min_depth_m, "closer depth is ignored", minimum=0.0),
        "max_depth_m": ParamSpec(memory.max_depth_m, "farther depth is ignored", minimum=0.0),
        "min_fuse_interval_s": ParamSpec(memory.min_fuse_interval_s, "non-keyframes are fused at most this often", minimum=0.0),
        "proposal_min_hits": ParamSpec(memory.proposal_min_hits, "voxels hit fewer times are left out of proposals (3 for a noisy sensor)", minimum=1),
        "proposal_min_cluster_voxels": ParamSpec(proposals.min_cluster_voxels, "smaller clusters are not proposals", minimum=1),
    }


def parameter_defaults() -> dict[str, object]:
    """Every parameter and its default."""
    return {name: spec.default for name, spec in parameter_specs().items()}


class SceneMemoryNode(LifecycleNode):
    """The scene memory as a ROS 2 lifecycle node.

    ``memory``: a SceneMemory to write into, shared with an in-process reader
    such as the grounding node; without one the node builds its own from its
    parameters (with one, the memory's own config wins and the memory
    parameters are ignored, which the configure log says).
    """

    def __init__(self, memory: SceneMemory | None = None, **node_kwargs) -> None:
        super().__init__("scene_memory_node", **node_kwargs)
        p = declare_parameters(self, parameter_specs())
        if p["max_depth_m"] <= p["min_depth_m"]:
            raise ValueError(f"scene_memory_node: max_depth_m ({p['max_depth_m']}) must exceed min_depth_m ({p['min_depth_m']})")
        self.params = p
        self.map_frame: str = p["map_frame"]
        self._shared = memory is not None
        self._memory = memory if memory is not None else SceneMemory(_memory_config(p))

        self._lock = threading.Lock()
        self._intrinsics: Intrinsics | None = None
        self._drops: Counter[str] = Counter()
        self._received: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._callback_ms: dict[str, deque[float]] = {k: deque(maxlen=_TIMING_WINDOW) for k in ("rgb", "depth", "cloud", "publish")}
        self.warnings = RateLimitedWarner(self.get_logger().warning, period_s=p["warning_period_s"])
        self._active_entities: list[Any] = []  # subscriptions, publishers and the timer of the active state
        self._timer = None
        self._reset_service = None
        self._sent_keyframes: dict[int, Any] = {}  # id -> keyframe object already published (kept alive: ids stay unique)
        on_live_change(self, parameter_specs(), self._apply_live_parameters)
        if p["autostart"]:
            bring_up(self)

    # --- lifecycle ---------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Parameters are read (the memory's were fixed at construction) and the reset service is offered."""
        return lifecycle_step(self, "configure", self._configure)

    def _configure(self) -> None:
        p = self.params
        self._reset_service = self.create_service(Trigger, "~/reset", self._on_reset)
        pose_topic = p["pose_topic"] if p["pose_source"] == "pose" else p["odom_topic"]
        config = self._memory.config
        self.get_logger().info(
            f"scene memory ({'shared instance, its own config' if self._shared else 'from parameters'}): "
            f"rgb {p['rgb_topic']}, depth {p['depth_topic']}, camera_info {p['camera_info_topic']}, "
            f"{p['pose_source']} {pose_topic}, cloud {p['cloud_topic']} -> {p['fused_cloud_topic']}, "
            f"{p['proposal_markers_topic']}, {p['proposal_array_topic']}"
            f"{', ' + p['keyframes_topic'] if p['publish_keyframes'] else ''} at {p['publish_rate_hz']} Hz "
            f"in '{self.map_frame}' (namespace '{self.get_namespace()}'); "
            f"sync {config.sync_tolerance_s} s (frames wait up to {config.max_pose_wait_s} s for their pose), "
            f"K={config.max_keyframes}, voxel {config.voxel_size} m "
            f"(max {config.max_voxels}), depth stride {config.depth_stride}"
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscriptions, publishers and the publishing timer."""
        return lifecycle_step(self, "activate", self._activate)

    def _activate(self) -> None:
        p = self.params
        # Sensor callbacks are serialised in one group (they share the camera_info state and the
        # sync order); the publishing timer has its own group so proposal clustering never blocks ingest.
        sensors = MutuallyExclusiveCallbackGroup()
        images_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=p["image_qos_depth"], reliability=ReliabilityPolicy.BEST_EFFORT
        )
        poses_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=p["pose_qos_depth"], reliability=ReliabilityPolicy.BEST_EFFORT
        )
        # Best-effort readers match both best-effort and reliable writers (camera drivers use either).
        # camera_info and poses subscribe first: the executor scans ready subscriptions in creation
        # order, which favours (with several threads it cannot guarantee) a frame's pose and intrinsics
        # being stored before its images; the memory pairs an image only with poses it already has.
        entities = [self.create_subscription(CameraInfo, p["camera_info_topic"], self._on_camera_info, qos_profile_sensor_data, callback_group=sensors)]
        if p["pose_source"] == "pose":
            entities.append(self.create_subscription(PoseStamped, p["pose_topic"], self._on_pose, poses_qos, callback_group=sensors))
        else:
            entities.append(self.create_subscription(Odometry, p["odom_topic"], self._on_odometry, poses_qos, callback_group=sensors))
        entities.append(self.create_subscription(Image, p["depth_topic"], self._on_depth, images_qos, callback_group=sensors))
        entities.append(self.create_subscription(Image, p["rgb_topic"], self._on_rgb, images_qos, callback_group=sensors))
        entities.append(self.create_subscription(PointCloud2, p["cloud_topic"], self._on_cloud, images_qos, callback_group=sensors))

        self._cloud_pub = self.create_publisher(PointCloud2, p["fused_cloud_topic"], 1)
        self._markers_pub = self.create_publisher(MarkerArray, p["proposal_markers_topic"], 1)
        self._array_pub = self.create_publisher(ObjectProposalArray, p["proposal_array_topic"], 1)
        entities += [self._cloud_pub, self._markers_pub, self._array_pub]
        self._keyframe_pub = None
        if p["publish_keyframes"]:
            # Transient-local: a grounding node that starts later still receives the keyframes held now.
            keyframes_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self._memory.config.max_keyframes,
                                       reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._keyframe_pub = self.create_publisher(SceneKeyframe, p["keyframes_topic"], keyframes_qos)
            entities.append(self._keyframe_pub)
            self._sent_keyframes = {}
        self._active_entities = entities
        self._publish_group = MutuallyExclusiveCallbackGroup()
        self._timer = self.create_timer(1.0 / p["publish_rate_hz"], self._publish, callback_group=self._publish_group)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop receiving and publishing; the memory is kept."""
        return lifecycle_step(self, "deactivate", self._deactivate)

    def _deactivate(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for entity in self._active_entities:
            if hasattr(entity, "publish"):
                self.destroy_publisher(entity)
            else:
                self.destroy_subscription(entity)
        self._active_entities = []

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Forget the scene and withdraw the reset service."""
        return lifecycle_step(self, "cleanup", self._cleanup)

    def _cleanup(self) -> None:
        if self._reset_service is not None:
            self.destroy_service(self._reset_service)
            self._reset_service = None
        self._memory.reset()
        self._sent_keyframes = {}

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        def shut_down() -> None:
            self._deactivate()
            self._cleanup()

        return lifecycle_step(self, "shutdown", shut_down)

    def _apply_live_parameters(self, changes: dict[str, Any]) -> str:
        """``ros2 param set`` of publish_rate_hz (the timer is remade) and warning_period_s."""
        self.params = {**self.params, **changes}
        if "warning_period_s" in changes:
            self.warnings.period_s = float(changes["warning_period_s"])
        if "publish_rate_hz" in changes and self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / float(changes["publish_rate_hz"]), self._publish,
                                            callback_group=self._publish_group)
        return ""

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """``~/reset``: forget keyframes, voxels and proposals (e.g. the robot moved to another map)."""
        stats = self._memory.stats()
        self._memory.reset()
        response.success = True
        response.message = (f"scene memory cleared: {stats.keyframes} keyframes, {stats.voxels} voxels, "
                            f"{stats.proposals} proposals forgotten")
        self.get_logger().info(f"reset service: {response.message}")
        return response

    @property
    def lifecycle_state(self) -> str:
        """``unconfigured``, ``inactive``, ``active`` or ``finalized``."""
        return self._state_machine.current_state[1]

    # --- what tests, the bench and the grounding node read ---------------------------------------

    @property
    def memory(self) -> SceneMemory:
        return self._memory

    @property
    def drop_counts(self) -> dict[str, int]:
        """Messages dropped so far, per reason (e.g. ``unsupported_encoding``, ``no_pose``)."""
        with self._lock:
            return dict(self._drops)

    @property
    def received_counts(self) -> dict[str, int]:
        """Messages received so far, per stream (``rgb``, ``depth``, ``camera_info``, ``pose``, ``cloud``)."""
        with self._lock:
            return dict(self._received)

    @property
    def frame_outcomes(self) -> dict[str, int]:
        """Synced frames per outcome: ``keyframe``, ``fused``, ``skipped`` (drops are in drop_counts); a frame
        that waited for its pose is counted when the pose arrives."""
        with self._lock:
            return dict(self._outcomes)

    def callback_ms(self) -> dict[str, list[float]]:
        """Recent time spent inside the rgb, depth, cloud and publishing (timer) callbacks, in milliseconds."""
        with self._lock:
            return {k: list(v) for k, v in self._callback_ms.items()}

    # --- input callbacks ---------------------------------------------------------------------------

    def _drop(self, reason: str, message: str) -> None:
        with self._lock:
            self._drops[reason] += 1
        self.warnings.warn(reason, f"dropped: {message}")

    def _count(self, stream: str) -> None:
        with self._lock:
            self._received[stream] += 1
            first = self._received[stream] == 1
        if first:
            self.get_logger().info(f"first {stream} message received")

    def _record(self, statuses: list[IngestStatus]) -> None:
        for status in statuses:
            if status.dropped:
                assert status.reason is not None
                self._drop(status.reason.name.lower(), str(status))
            elif status.outcome is not FrameOutcome.WAITING:  # counted once, when its pose settles it
                with self._lock:
                    self._outcomes[status.outcome.value] += 1

    def _timed(self, stream: str, started: float) -> None:
        with self._lock:
            self._callback_ms[stream].append((time.perf_counter() - started) * 1e3)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._count("camera_info")
        try:
            intrinsics = camera_info_to_intrinsics(msg)
        except InvalidMessage as error:
            self._drop("invalid_camera_info", str(error))
            return
        with self._lock:
            self._intrinsics = intrinsics

    def _on_pose(self, msg: PoseStamped) -> None:
        self._add_pose("pose", msg.header, pose_stamped_to_matrix, msg)

    def _on_odometry(self, msg: Odometry) -> None:
        self._add_pose("odometry", msg.header, odometry_to_matrix, msg)

    def _add_pose(self, stream: str, header: Header, to_matrix: Callable[[Any], np.ndarray], msg: Any) -> None:
        self._count(stream)
        if header.frame_id and header.frame_id != self.map_frame:
            self._drop("wrong_frame", f"{stream} in frame '{header.frame_id}', expected '{self.map_frame}' (no tf here)")
            return
        try:
            cam_to_map = to_matrix(msg)
        except InvalidMessage as error:
            self._drop("invalid_pose", str(error))
            return
        reason = self._memory.add_pose(stamp_to_seconds(header.stamp), cam_to_map)
        if reason is not None:
            self._drop(reason.name.lower(), f"{stream} at {stamp_to_seconds(header.stamp):.3f}: {reason.value}")
        self._record(self._memory.take_released())  # the frames that were waiting for this pose

    def _camera(self, stream: str, msg: Image) -> Intrinsics | None:
        """The current intrinsics if the image matches them; otherwise drop it and say why."""
        with self._lock:
            intrinsics = self._intrinsics
        if intrinsics is None:
            self._drop("missing_camera_info", f"{stream} image: no valid camera_info received yet")
            return None
        if (msg.height, msg.width) != (intrinsics.height, intrinsics.width):
            self._drop(
                "size_mismatch",
                f"{stream} image is {msg.width}x{msg.height} but camera_info says {intrinsics.width}x{intrinsics.height}"
                " (depth must be registered to the colour camera)",
            )
            return None
        return intrinsics

    def _decode(self, stream: str, msg: Image, decoder: Callable[[Image], np.ndarray]) -> np.ndarray | None:
        try:
            return decoder(msg)
        except UnsupportedEncoding as error:
            self._drop("unsupported_encoding", f"{stream} image: {error}")
        except InvalidMessage as error:
            self._drop("invalid_image", f"{stream} image: {error}")
        return None

    def _on_rgb(self, msg: Image) -> None:
        started = time.perf_counter()
        self._count("rgb")
        intrinsics = self._camera("rgb", msg)
        rgb = self._decode("rgb", msg, image_to_rgb) if intrinsics is not None else None
        if rgb is not None:
            self._ingest(lambda: self._memory.add_rgb(stamp_to_seconds(msg.header.stamp), rgb, intrinsics))
        self._timed("rgb", started)

    def _on_depth(self, msg: Image) -> None:
        started = time.perf_counter()
        self._count("depth")
        depth = self._decode("depth", msg, image_to_depth) if self._camera("depth", msg) is not None else None
        if depth is not None:
            with np.errstate(invalid="ignore"):
                valid = np.isfinite(depth) & (depth > 0)
            if not valid.any():
                self._drop("invalid_depth", f"depth image at {stamp_to_seconds(msg.header.stamp):.3f}: no valid pixel (all NaN, inf or 0)")
            else:
                self._ingest(lambda: self._memory.add_depth(stamp_to_seconds(msg.header.stamp), depth))
        self._timed("depth", started)

    def _ingest(self, add: Callable[[], list[IngestStatus]]) -> None:
        try:
            self._record(add())
        except ValueError as error:  # SceneMemory's one-line check of a frame it cannot fuse
            self._drop("invalid_frame", str(error))
        self._record(self._memory.take_released())  # frames that gave up waiting for their pose

    def _on_cloud(self, msg: PointCloud2) -> None:
        started = time.perf_counter()
        self._count("cloud")
        if msg.header.frame_id != self.map_frame:
            self._drop("wrong_frame", f"cloud in frame '{msg.header.frame_id}', expected '{self.map_frame}' (no tf here)")
        else:
            try:
                points, colors = cloud_to_xyz_rgb(msg)
            except InvalidMessage as error:
                self._drop("invalid_cloud", str(error))
            else:
                self._memory.add_cloud(stamp_to_seconds(msg.header.stamp), points, colors)
        self._timed("cloud", started)

    # --- output ------------------------------------------------------------------------------------

    def _publish(self) -> None:
        started = time.perf_counter()
        proposals = self._memory.update_proposals()
        cloud_wanted = self._cloud_pub.get_subscription_count() > 0
        snapshot = self._memory.snapshot(include_cloud=cloud_wanted)
        header = make_header(snapshot.stamp if snapshot.stamp is not None else self.get_clock().now().to_msg(), self.map_frame)
        if cloud_wanted:
            self._cloud_pub.publish(xyz_rgb_to_cloud(snapshot.cloud_points, snapshot.cloud_colors, header.stamp, self.map_frame))
        self._markers_pub.publish(proposals_to_marker_array(proposals, header))
        if self._keyframe_pub is not None:
            self._publish_new_keyframes(snapshot.keyframes)
        self._array_pub.publish(proposals_to_array(proposals, header, len(snapshot.keyframes), snapshot.n_voxels))
        self.get_logger().debug(
            f"memory: {len(snapshot.keyframes)} keyframes, {snapshot.n_voxels} voxels, "
            f"{len(proposals)} proposals; drops {self.drop_counts}"
        )
        self._timed("publish", started)


    def _publish_new_keyframes(self, keyframes: tuple) -> None:
        """Each keyframe once, before the proposal array that counts it (the reader trims to that count)."""
        sent = self._sent_keyframes
        for keyframe in keyframes:
            if id(keyframe) not in sent:
                self._keyframe_pub.publish(keyframe_to_msg(keyframe, self.map_frame))
        self._sent_keyframes = {id(k): k for k in keyframes}


def _memory_config(p: dict[str, object]) -> SceneMemoryConfig:
    defaults = SceneMemoryConfig()
    return dataclasses.replace(
        defaults,
        sync_tolerance_s=float(p["sync_tolerance_s"]),
        max_pose_wait_s=float(p["max_pose_wait_s"]),
        max_pose_wait_frames=int(p["max_pose_wait_frames"]),
        max_keyframes=int(p["max_keyframes"]),
        keyframe_policy=KeyframePolicy(
            min_translation_m=float(p["keyframe_min_translation_m"]),
            min_rotation_deg=float(p["keyframe_min_rotation_deg"]),
            max_interval_s=float(p["keyframe_max_interval_s"]),
        ),
        voxel_size=float(p["voxel_size"]),
        max_voxels=int(p["max_voxels"]),
        depth_stride=int(p["depth_stride"]),
        min_depth_m=float(p["min_depth_m"]),
        max_depth_m=float(p["max_depth_m"]),
        min_fuse_interval_s=float(p["min_fuse_interval_s"]),
        proposal_min_hits=int(p["proposal_min_hits"]),
        # Clustering runs on the fusion grid: components are only connected at the voxel size they were fused at.
        proposals=dataclasses.replace(
            defaults.proposals, voxel_size=float(p["voxel_size"]), min_cluster_voxels=int(p["proposal_min_cluster_voxels"])
        ),
    )


def main(args: list[str] | None = None) -> None:
    """Entry point (``scene_memory_node``): spin until Ctrl-C; parameters via ``--ros-args --params-file/-p``."""
    rclpy.init(args=args)
    try:
        node = SceneMemoryNode()
    except (ValueError, ParameterException, LifecycleError) as error:
        rclpy.try_shutdown()
        raise SystemExit(f"scene_memory_node: {error}") from None
    try:
        rclpy.spin(node, executor=SingleThreadedExecutor())  # see NodeRuntime: the multi-threaded one costs a core
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
