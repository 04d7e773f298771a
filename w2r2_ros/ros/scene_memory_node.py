"""scene_memory_node: RGB-D + pose (+ point clouds) in, fused cloud and object proposals out.

A thin node over :class:`w2r2_ros.scene.memory.SceneMemory`: it decodes
messages (``conversions``), hands them to the memory (which pairs RGB, depth and
pose by stamp and keeps keyframes), and on a timer publishes the fused cloud,
proposal markers and an ObjectProposalArray. Fusion and the segmentation into
proposals run on the memory's own worker threads (``scene.workers``), never in a
callback, so callbacks take milliseconds whatever the map size and ingest keeps
up with a 30 Hz camera; the timer publishes the latest proposals.

Camera poses come from ``/tf`` and ``/tf_static`` (``pose_source: tf``, the
default): the pose of the images' ``frame_id`` (or ``camera_frame``) in
``map_frame`` at each colour image's stamp, looked up through the whole tree
(map -> odom -> base_link -> camera_link -> optical frame), interpolated
between samples. Or from ``geometry_msgs/PoseStamped`` (``pose_source: pose``)
or ``nav_msgs/Odometry`` (``pose_source: odometry``): the pose of the camera
optical frame, or of the Odometry's ``child_frame_id`` (the camera is then
placed through ``/tf_static``), in ``map_frame`` or in any frame ``/tf``
connects to it. Point clouds in any frame are transformed into ``map_frame``.
A frame whose pose has not arrived yet (poses are often processed after the
images of the same instant) waits up to ``max_pose_wait_s`` for it in the
memory; when a later pose settles it, the outcome is counted and logged like
any other.

Images come raw (``sensor_msgs/Image``) or through image_transport's
``compressed`` / ``compressedDepth`` (``rgb_transport``, ``depth_transport``:
``<topic>/compressed``, ``sensor_msgs/CompressedImage``), as robots record
them. camera_info is read both with sensor QoS and transient-local (a driver
that latches it once before the node starts is heard). An input topic silent
for ``input_timeout_s`` gets a warning naming it, its type and similar topics
the graph has.

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
backwards or too far in the future, positions beyond ``max_coordinate_m``) is dropped with a
rate-limited warning and counted per reason in :attr:`SceneMemoryNode.drop_counts`; the node
keeps running. A stamp that jumps back by more than ``clock_jump_reset_s`` (a looped bag)
resets the memory (``stamp_check.py``). Whatever else a message makes a callback raise is
caught by the callback guard (``guarded_node.py``): counted, reported, the executor keeps
spinning, and a watchdog reports on ``/diagnostics`` a callback that stops making progress.
Samples the middleware lost before they arrived (too large for the transport) are counted as
``transport_lost`` and warned about (``transport_limits.py``); so are messages missing between two
that arrived from one publisher, by its sequence numbers, as ``sequence_gap`` (``sequence_gaps.py``:
the middleware's event misses some). Reliability: docs/RELIABILITY.md.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transform_buffer import TransformBufferConfig, TransformError, UnknownFrameError, transform_points
from w2r2_ros.geometry.transform_waiter import TransformWaiter
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
from w2r2_ros.ros.detections import proposals_to_detections
from w2r2_ros.ros.guarded_node import GuardedCallbacks
from w2r2_ros.ros.input_watchdog import InputWatchdog
from w2r2_ros.ros.interfaces import ObjectProposalArray, SceneKeyframe
from w2r2_ros.ros.keyframe_messages import keyframe_to_msg
from w2r2_ros.ros.node_diagnostics import RateMeter, status
from w2r2_ros.ros.lifecycle_support import LifecycleError, bring_up, lifecycle_step
from w2r2_ros.ros.parameter_specs import ParamSpec, declare_parameters, on_live_change
from w2r2_ros.ros.proposal_markers import proposals_to_array, proposals_to_marker_array
from w2r2_ros.ros.rate_limited_log import RateLimitedWarner
from w2r2_ros.ros.sequence_gaps import SequenceGaps
from w2r2_ros.ros.transport_limits import large_sample_advice, large_sample_warning
from w2r2_ros.ros.tf_listener import TF_BACKENDS, TfListener, make_transform_buffer
from w2r2_ros.scene.keyframes import KeyframePolicy
from w2r2_ros.scene.memory import FrameOutcome, IngestStatus, SceneMemory, SceneMemoryConfig
from w2r2_ros.scene.proposals import ProposalConfig
from w2r2_ros.scene.stamp_check import StampCheck, StampCheckConfig, StampVerdict
from w2r2_ros.scene.sync import DropReason
from w2r2_ros.scene.workers import SceneWorkers
from w2r2_ros.sensors.compressed_codec import compressed_depth_to_depth, compressed_to_rgb
from w2r2_ros.sensors.depth_resolution import resample_depth, same_aspect

POSE_SOURCES = ("tf", "pose", "odometry")
# image_transport names: the subscribed topic is <topic>/<transport> for the compressed ones.
RGB_TRANSPORTS = {"raw": (Image, image_to_rgb), "compressed": (CompressedImage, compressed_to_rgb)}
DEPTH_TRANSPORTS = {"raw": (Image, image_to_depth), "compressedDepth": (CompressedImage, compressed_depth_to_depth)}
SENSOR_QOS = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
# Clouds waiting for their transform (each can be megabytes).
_MAX_WAITING_CLOUDS = 4

# Callback durations kept for diagnostics and the ingest benchmark (bounded: a long run must not grow).
_TIMING_WINDOW = 20_000


def parameter_specs() -> dict[str, ParamSpec]:
    """Every parameter: default, meaning, range; numeric defaults come from SceneMemoryConfig, the one source."""
    memory, policy, proposals, stamps = SceneMemoryConfig(), KeyframePolicy(), ProposalConfig(), StampCheckConfig()
    topic = "(relative: resolved in the node's namespace, remappable)"
    return {
        "autostart": ParamSpec(True, "configure and activate when created (false: stay unconfigured for a lifecycle manager)"),
        "rgb_topic": ParamSpec("camera/color/image_raw", f"sensor_msgs/Image colour input, rgb8 or bgr8 {topic}"),
        "depth_topic": ParamSpec("camera/depth/image_raw", f"sensor_msgs/Image depth registered to colour, 16UC1 mm or 32FC1 m {topic}"),
        "camera_info_topic": ParamSpec("camera/color/camera_info", f"sensor_msgs/CameraInfo of the colour camera (a latched one is followed too) {topic}"),
        "rgb_transport": ParamSpec("raw", "raw: Image on rgb_topic; compressed: CompressedImage (jpeg/png) on <rgb_topic>/compressed", choices=tuple(RGB_TRANSPORTS)),
        "depth_transport": ParamSpec("raw", "raw: Image on depth_topic; compressedDepth: CompressedImage on <depth_topic>/compressedDepth", choices=tuple(DEPTH_TRANSPORTS)),
        "pose_source": ParamSpec("tf", "where the camera pose comes from: /tf + /tf_static, a PoseStamped or an Odometry", choices=POSE_SOURCES),
        "camera_frame": ParamSpec("", "tf frame of the camera optical frame; empty: the frame_id of camera_info and the colour images"),
        "pose_topic": ParamSpec("camera/pose", f"geometry_msgs/PoseStamped of the camera optical frame, in map_frame or a frame tf connects to it {topic}"),
        "odom_topic": ParamSpec("camera/odom", f"nav_msgs/Odometry of child_frame_id (the camera, or a frame /tf_static connects to it) {topic}"),
        "cloud_topic": ParamSpec("points", f"sensor_msgs/PointCloud2 in any frame tf connects to map_frame (optional input) {topic}"),
        "fused_cloud_topic": ParamSpec("w2r2/scene/cloud", f"fused voxel cloud (output) {topic}"),
        "proposal_markers_topic": ParamSpec("w2r2/scene/proposals", f"proposal boxes as a MarkerArray (output) {topic}"),
        "proposal_array_topic": ParamSpec("w2r2/scene/proposal_array", f"w2r2_ros/ObjectProposalArray (output) {topic}"),
        "proposal_detections_topic": ParamSpec("w2r2/scene/detections", f"vision_msgs/Detection3DArray of the proposals (output) {topic}"),
        "keyframes_topic": ParamSpec("w2r2/scene/keyframes", f"w2r2_ros/SceneKeyframe, each new keyframe once (output) {topic}"),
        "publish_keyframes": ParamSpec(True, "publish keyframes for a grounding node in another process (PNG + zlib, lossless)"),
        "map_frame": ParamSpec("map", "the fixed frame everything is fused in, and of the outputs"),
        "odom_frame": ParamSpec("odom", "named in the hint when tf has odom_frame but no map_frame (no localisation: set map_frame to it)"),
        "tf_backend": ParamSpec("auto", "transform buffer: auto (tf2_ros where it imports, else built-in), builtin or tf2_ros", choices=TF_BACKENDS),
        "tf_cache_s": ParamSpec(10.0, "seconds of /tf history kept for lookups", minimum=0.1, maximum=3600.0),
        "publish_rate_hz": ParamSpec(1.0, "outputs and proposals are recomputed this often", minimum=0.01, maximum=100.0, live=True),
        "sensor_qos": ParamSpec("best_effort", "reliability of the image and cloud readers (best_effort matches any writer)", choices=tuple(SENSOR_QOS)),
        "image_qos_depth": ParamSpec(5, "keep-last queue of images and clouds", minimum=1, maximum=1000),
        "pose_qos_depth": ParamSpec(200, "keep-last queue of poses (~2 s of a 100 Hz odometry)", minimum=1, maximum=100000),
        "warning_period_s": ParamSpec(5.0, "at most one warning per kind of bad input per period", minimum=0.0, maximum=3600.0, live=True),
        "watchdog_stall_s": ParamSpec(10.0, "/diagnostics reports ERROR when a callback runs longer than this (0: no watchdog)", minimum=0.0),
        "max_future_stamp_s": ParamSpec(stamps.max_future_s, "stamps further ahead of this node's clock are dropped (0: no check)", minimum=0.0),
        "clock_jump_reset_s": ParamSpec(stamps.jump_back_reset_s, "a stream's stamp jumping back further resets the memory (0: never)", minimum=0.0),
        "input_timeout_s": ParamSpec(5.0, "warn when an input topic has been silent this long", minimum=0.5, maximum=3600.0),
        "sync_tolerance_s": ParamSpec(memory.sync_tolerance_s, "RGB, depth and pose stamps must agree within this", minimum=0.0, maximum=10.0),
        "max_pose_wait_s": ParamSpec(memory.max_pose_wait_s, "a frame newer than the newest pose waits this long (image time) for it", minimum=0.0, maximum=60.0),
        "max_pose_wait_frames": ParamSpec(memory.max_pose_wait_frames, "frames waiting for their pose; the oldest is dropped beyond", minimum=0, maximum=10000),
        "max_keyframes": ParamSpec(memory.max_keyframes, "K: keyframes kept (the grounding model reads them)", minimum=1, maximum=10000),
        "keyframe_min_translation_m": ParamSpec(policy.min_translation_m, "a frame is a keyframe after this much motion", minimum=0.0),
        "keyframe_min_rotation_deg": ParamSpec(policy.min_rotation_deg, "... or this much rotation", minimum=0.0, maximum=360.0),
        "keyframe_max_interval_s": ParamSpec(policy.max_interval_s, "... or after this long", minimum=0.0),
        "voxel_size": ParamSpec(memory.voxel_size, "fusion and proposal clustering grid, metres", minimum=0.001, maximum=10.0),
        "max_voxels": ParamSpec(memory.max_voxels, "voxels are evicted beyond this: unconfirmed single readings first, then the least recently updated", minimum=1),
        "evict_grace_inserts": ParamSpec(memory.evict_grace_inserts, "a single reading counts as unconfirmed once this many frames were fused after it", minimum=0),
        "depth_stride": ParamSpec(memory.depth_stride, "fuse every n-th depth row and column; 0: from depth_max_points", minimum=0, maximum=64),
        "depth_max_points": ParamSpec(memory.depth_max_points, "with depth_stride 0: the smallest stride giving at most this many points per frame", minimum=1),
        "min_depth_m": ParamSpec(memory.min_depth_m, "closer depth is ignored", minimum=0.0),
        "max_depth_m": ParamSpec(memory.max_depth_m, "farther depth is not fused", minimum=0.0),
        "max_coordinate_m": ParamSpec(memory.max_coordinate_m, "poses, cloud points and depths farther from the origin are not physical: dropped", minimum=0.0),
        "min_fuse_interval_s": ParamSpec(memory.min_fuse_interval_s, "non-keyframes are fused at most this often", minimum=0.0),
        "proposal_min_hits": ParamSpec(memory.proposal_min_hits, "voxels hit fewer times are left out of proposals", minimum=1),
        "depth_edge_ratio": ParamSpec(memory.depth_edge_ratio, "depth jumps over this share of the depth are flying pixels, not fused (0: off)",
                                      minimum=0.0, maximum=1.0),
        "depth_noise_base_m": ParamSpec(memory.depth_noise.base_m, "the camera's axial noise sigma(z) = base + per_m2 (z - offset)^2, metres",
                                        minimum=0.0, maximum=1.0),
        "depth_noise_per_m2": ParamSpec(memory.depth_noise.per_m2, "... its growth with range, 1/m", minimum=0.0, maximum=1.0),
        "depth_noise_offset_m": ParamSpec(memory.depth_noise.offset_m, "... the range where it is least, metres", minimum=0.0, maximum=100.0),
        "drop_depth_speckles": ParamSpec(memory.drop_depth_speckles, "readings no neighbouring pixel confirms within 3 sigma(z) are not fused"),
        "diagnostics_period_s": ParamSpec(1.0, "/diagnostics report period (input rates, drops by cause, memory); 0: off",
                                          minimum=0.0, maximum=3600.0),
        "proposal_min_cluster_voxels": ParamSpec(proposals.min_cluster_voxels, "smaller clusters are not proposals", minimum=1),
        "max_fusion_backlog": ParamSpec(memory.max_fusion_backlog, "frames and clouds queued for the fusion worker; beyond, the oldest is dropped (fusion_backlog)", minimum=1),
        "segmentation_process": ParamSpec(True, "cluster proposals in a child process (false: a thread, which holds the GIL the callbacks need)"),
        "max_cloud_points": ParamSpec(500_000, "a larger input cloud is fused every n-th point, with a warning", minimum=1),
        "depth_resample": ParamSpec(True, "depth at another resolution than the colour but the same aspect is resampled to it (false: dropped)"),
    }


def parameter_defaults() -> dict[str, object]:
    """Every parameter and its default."""
    return {name: spec.default for name, spec in parameter_specs().items()}


class SceneMemoryNode(GuardedCallbacks, LifecycleNode):
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
        self._gaps = SequenceGaps()  # shared by the image and cloud readers: a publisher's id is unique across topics
        self._received: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._adjusted: Counter[str] = Counter()
        self._callback_ms: dict[str, deque[float]] = {k: deque(maxlen=_TIMING_WINDOW) for k in ("rgb", "depth", "cloud", "publish")}
        self._callback_cpu_ms: dict[str, deque[float]] = {k: deque(maxlen=_TIMING_WINDOW) for k in self._callback_ms}
        self.warnings = RateLimitedWarner(self.get_logger().warning, period_s=p["warning_period_s"])
        self.guard.warnings.period_s = p["warning_period_s"]
        self._stamps = StampCheck(StampCheckConfig(float(p["max_future_stamp_s"]), float(p["clock_jump_reset_s"])))
        self.memory_resets = 0
        self._active_entities: list[Any] = []  # subscriptions, publishers and the timer of the active state
        self._timer = None
        self._reset_service = None
        self._sent_keyframes: dict[int, Any] = {}  # id -> keyframe object already published (kept alive: ids stay unique)
        # The transform tree (/tf, /tf_static) places the camera (pose_source tf), poses given in another
        # frame than map_frame, an Odometry's child frame, and clouds in any frame.
        self._camera_frame: str = p["camera_frame"]
        self.tf_buffer = make_transform_buffer(p["tf_backend"], TransformBufferConfig(cache_time_s=float(p["tf_cache_s"])))
        wait = float(self._memory.config.max_pose_wait_s)
        self._pose_waiter: TransformWaiter[None] = TransformWaiter(
            self.tf_buffer, self.map_frame, wait, int(self._memory.config.max_pose_wait_frames))
        self._cloud_waiter: TransformWaiter[tuple[np.ndarray, np.ndarray | None]] = TransformWaiter(
            self.tf_buffer, self.map_frame, wait, _MAX_WAITING_CLOUDS, wait_for_frames=False)
        self.watchdog = InputWatchdog(self, float(p["input_timeout_s"]), self.warnings.warn)
        self._active_timers: list[Any] = []  # the watchdog's and the latched camera_info follower's
        self._latched_camera_info: Any = None
        # Fusion and segmentation run on the memory's workers for the node's whole life (nothing to do while
        # inactive: nothing is received). The publishing timer only says "publish now"; building and
        # sending the outputs (a fused cloud of up to max_voxels points, a marker per proposal) happens on
        # the output thread, so the executor stays free for the sensor callbacks.
        self._backlog_drops = 0
        self._publish_due, self._closing = threading.Event(), threading.Event()
        self.workers = SceneWorkers(
            self._memory, 1.0 / p["publish_rate_hz"], on_error=self._worker_error, in_process=not p["segmentation_process"],
            log=self.get_logger().warning,
        )
        self.workers.start()
        self._output_lock = threading.Lock()  # held while publishing; deactivate waits for it before destroying
        self._output_thread = threading.Thread(target=self._output_loop, name="scene-outputs", daemon=True)
        self._output_thread.start()
        on_live_change(self, parameter_specs(), self._apply_live_parameters)
        self._rates = RateMeter()
        self._drops_reported: dict[str, int] = {}
        self.start_watchdog(float(p["watchdog_stall_s"]), float(p["diagnostics_period_s"]), self.diagnostic_statuses)
        if p["autostart"]:
            bring_up(self)

    # --- lifecycle ---------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Parameters are read (the memory's were fixed at construction) and the reset service is offered."""
        return lifecycle_step(self, "configure", self._configure)

    def _configure(self) -> None:
        p = self.params
        self._reset_service = self.create_service(Trigger, "~/reset", self._on_reset)
        pose_topic = {"pose": p["pose_topic"], "odometry": p["odom_topic"], "tf": "/tf + /tf_static"}[p["pose_source"]]
        config = self._memory.config
        self.get_logger().info(
            f"scene memory ({'shared instance, its own config' if self._shared else 'from parameters'}): "
            f"rgb {p['rgb_topic']}, depth {p['depth_topic']}, camera_info {p['camera_info_topic']}, "
            f"pose from {p['pose_source']} {pose_topic} (tf: {type(self.tf_buffer).__name__}), "
            f"transports {p['rgb_transport']}/{p['depth_transport']}, cloud {p['cloud_topic']} -> {p['fused_cloud_topic']}, "
            f"{p['proposal_markers_topic']}, {p['proposal_array_topic']}"
            f"{', ' + p['keyframes_topic'] if p['publish_keyframes'] else ''} at {p['publish_rate_hz']} Hz "
            f"in '{self.map_frame}' (namespace '{self.get_namespace()}'); "
            f"sync {config.sync_tolerance_s} s (frames wait up to {config.max_pose_wait_s} s for their pose), "
            f"K={config.max_keyframes}, voxel {config.voxel_size} m "
            f"(max {config.max_voxels}), depth stride {config.depth_stride or f'auto (<= {config.depth_max_points} points per frame)'}"
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
            history=HistoryPolicy.KEEP_LAST, depth=p["image_qos_depth"], reliability=SENSOR_QOS[p["sensor_qos"]]
        )
        poses_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=p["pose_qos_depth"], reliability=ReliabilityPolicy.BEST_EFFORT
        )
        # Best-effort readers match both best-effort and reliable writers (camera drivers use either).
        # camera_info, tf and poses subscribe first: the executor scans ready subscriptions in creation
        # order, which favours (with several threads it cannot guarantee) a frame's pose and intrinsics
        # being stored before its images; the memory pairs an image only with poses it already has.
        entities = [self.create_subscription(CameraInfo, p["camera_info_topic"], self._on_camera_info, qos_profile_sensor_data, callback_group=sensors)]
        self._expect("camera_info", p["camera_info_topic"], CameraInfo, "camera_info_topic")
        self._sensors = sensors
        self._latched_camera_info = None
        self._active_timers = [self.create_timer(1.0, self._follow_latched_camera_info, callback_group=sensors)]
        tf_listener = TfListener(self, self.tf_buffer, self._on_tf, lambda line: self._drop("invalid_transform", line),
                                 callback_group=sensors, on_jump=self._on_tf_jump)
        entities += tf_listener.subscriptions
        if p["pose_source"] == "pose":
            entities.append(self.create_subscription(PoseStamped, p["pose_topic"], self._on_pose, poses_qos, callback_group=sensors))
            self._expect("pose", p["pose_topic"], PoseStamped, "pose_topic")
        elif p["pose_source"] == "odometry":
            entities.append(self.create_subscription(Odometry, p["odom_topic"], self._on_odometry, poses_qos, callback_group=sensors))
            self._expect("odometry", p["odom_topic"], Odometry, "odom_topic")
        self._image_topics = {}
        for stream, transports, handler in (("depth", DEPTH_TRANSPORTS, self._on_depth), ("rgb", RGB_TRANSPORTS, self._on_rgb)):
            transport = p[f"{stream}_transport"]
            msg_type, decoder = transports[transport]
            topic = p[f"{stream}_topic"] if transport == "raw" else f"{p[f'{stream}_topic'].rstrip('/')}/{transport}"
            self._image_topics[stream] = topic
            setattr(self, f"_{stream}_decoder", decoder)
            entities.append(self.create_subscription(msg_type, topic, self._sequenced(stream, topic, handler), images_qos,
                                                     callback_group=sensors, event_callbacks=self._lost_events(stream, topic)))
            self._expect(stream, topic, msg_type, f"{stream}_topic / {stream}_transport")
        entities.append(self.create_subscription(PointCloud2, p["cloud_topic"], self._sequenced("cloud", p["cloud_topic"], self._on_cloud),
                                                 images_qos, callback_group=sensors,
                                                 event_callbacks=self._lost_events("cloud", p["cloud_topic"])))
        self._active_timers.append(self.create_timer(float(p["input_timeout_s"]), self.watchdog.check,
                                                     callback_group=MutuallyExclusiveCallbackGroup()))

        self._cloud_pub = self.create_publisher(PointCloud2, p["fused_cloud_topic"], 1)
        self._markers_pub = self.create_publisher(MarkerArray, p["proposal_markers_topic"], 1)
        self._array_pub = self.create_publisher(ObjectProposalArray, p["proposal_array_topic"], 1)
        self._detections_pub = self.create_publisher(Detection3DArray, p["proposal_detections_topic"], 1)
        entities += [self._cloud_pub, self._markers_pub, self._array_pub, self._detections_pub]
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
        for timer in self._active_timers:
            self.destroy_timer(timer)
        self._active_timers = []
        self._latched_camera_info = None  # it is one of the active entities
        with self._output_lock:  # the output thread is not publishing now, and will not (no timer)
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
        """Deactivate and clean up."""
        return lifecycle_step(self, "shutdown", self._deactivate, self._cleanup)

    def _apply_live_parameters(self, changes: dict[str, Any]) -> str:
        """``ros2 param set`` of publish_rate_hz (the timer is remade) and warning_period_s."""
        self.params = {**self.params, **changes}
        if "warning_period_s" in changes:
            self.warnings.period_s = self.guard.warnings.period_s = float(changes["warning_period_s"])
        if "publish_rate_hz" in changes:
            self.workers.period_s = 1.0 / float(changes["publish_rate_hz"])
        if "publish_rate_hz" in changes and self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / float(changes["publish_rate_hz"]), self._publish,
                                            callback_group=self._publish_group)
        return ""

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """``~/reset``: forget keyframes, voxels and proposals (e.g. the robot moved to another map)."""
        stats = self._memory.stats()
        self._memory.reset()
        self._pose_waiter.clear()  # their frames are gone
        response.success = True
        response.message = (f"scene memory cleared: {stats.keyframes} keyframes, {stats.voxels} voxels, "
                            f"{stats.proposals} proposals forgotten")
        self.get_logger().info(f"reset service: {response.message}")
        return response

    def diagnostic_statuses(self) -> list[DiagnosticStatus]:
        """Input rates since the last report, drops by cause (new ones make it WARN), the memory's size."""
        state, received, drops = self.lifecycle_state, self.received_counts, self.drop_counts
        new_drops = {reason: n - self._drops_reported.get(reason, 0) for reason, n in drops.items()}
        new_drops = {reason: n for reason, n in new_drops.items() if n > 0}
        self._drops_reported = drops
        stats = self._memory.stats()
        values = {
            "lifecycle state": state,
            **{f"rate {stream} (Hz)": f"{rate:.1f}" for stream, rate in sorted(self._rates.rates(received).items())},
            **{f"received {stream}": count for stream, count in sorted(received.items())},
            **{f"dropped {reason}": count for reason, count in sorted(drops.items())},
            "keyframes": stats.keyframes,
            "voxels": stats.voxels,
            "proposals": stats.proposals,
            "frames waiting for their pose": stats.awaiting_pose,
            "images waiting for a partner": stats.pending_images,
        }
        memory = f"{stats.keyframes} keyframes, {stats.voxels} voxels, {stats.proposals} proposals"
        if state != "active":
            level, message = DiagnosticStatus.WARN, f"{state}: not receiving; {memory}"
        elif new_drops:
            worst = max(new_drops, key=new_drops.get)
            level = DiagnosticStatus.WARN
            message = f"{sum(new_drops.values())} input message(s) dropped since the last report (most: {worst}); {memory}"
        elif not received:
            level, message = DiagnosticStatus.WARN, "no input received yet"
        else:
            level, message = DiagnosticStatus.OK, memory
        return [status(self, "inputs and memory", level, message, values)]

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

    @property
    def adjusted_counts(self) -> dict[str, int]:
        """Messages used after an adjustment that was warned about: ``cloud_downsampled`` (over
        max_cloud_points), ``depth_resampled`` (depth at another resolution than the colour)."""
        with self._lock:
            return dict(self._adjusted)

    def _adjust(self, kind: str, message: str) -> None:
        with self._lock:
            self._adjusted[kind] += 1
        self.warnings.warn(kind, message)

    def callback_ms(self) -> dict[str, list[float]]:
        """Recent time spent inside the rgb, depth, cloud and publishing (timer) callbacks, in milliseconds."""
        with self._lock:
            return {k: list(v) for k, v in self._callback_ms.items()}

    def callback_cpu_ms(self) -> dict[str, list[float]]:
        """The same callbacks' CPU time on their own thread (without the time the OS or the GIL kept them waiting)."""
        with self._lock:
            return {k: list(v) for k, v in self._callback_cpu_ms.items()}

    # --- input callbacks ---------------------------------------------------------------------------

    def _drop(self, reason: str, message: str) -> None:
        with self._lock:
            self._drops[reason] += 1
        self.warnings.warn(reason, f"dropped: {message}")

    def _lost_events(self, stream: str, topic: str) -> SubscriptionEventCallbacks:
        """The middleware's report of samples it lost before they reached us (e.g. too large for the transport)."""

        def on_lost(event: Any) -> None:
            with self._lock:
                self._drops["transport_lost"] += event.total_count_change
            self.warnings.warn("transport_lost", f"the transport lost {event.total_count_change} {stream} message(s) "
                               f"on {topic} ({event.total_count} so far): {large_sample_advice()}")

        return SubscriptionEventCallbacks(message_lost=self.guard.wrap(f"message_lost {topic}", on_lost))

    def _sequenced(self, stream: str, topic: str, handler: Callable[[Any], None]) -> Callable[[Any, Any], None]:
        """``handler`` after a look at the publisher's sequence number (``sequence_gaps.py``): messages missing
        between two that arrived are ``sequence_gap`` drops, since the ``message_lost`` event misses some losses."""

        def on_message(msg: Any, info: Any) -> None:
            sequence = info.get("publication_sequence_number")
            with self._lock:
                missed = self._gaps.missed(bytes(info["publisher_gid"]["data"]), sequence)
                if missed:
                    self._drops["sequence_gap"] += missed
            if missed:
                self.warnings.warn("sequence_gap", f"{missed} {stream} message(s) on {topic} never arrived (the publisher's "
                                   f"sequence number jumped to {sequence}): the keep-last queue (image_qos_depth "
                                   f"{self.params['image_qos_depth']}) overflowed while the callbacks were busy, or "
                                   f"the transport lost them; {large_sample_advice()}")
            handler(msg)

        return on_message

    def _stamp_ok(self, stream: str, header: Header) -> bool:
        """Time sanity (``stamp_check.py``): False (dropped, warned) for a stamp in the future; a big jump
        back resets the memory, with one log line, and the message is taken."""
        stamp = stamp_to_seconds(header.stamp)
        now = self.get_clock().now().nanoseconds * 1e-9
        newest = self._stamps.newest(stream)
        verdict = self._stamps.check(stream, stamp, now)
        if verdict is StampVerdict.FUTURE:
            self._drop("stamp_in_future", f"{stream} stamped {stamp:.3f} is {stamp - now:.1f} s ahead of this node's clock "
                       f"(max_future_stamp_s {self._stamps.config.max_future_s:g}): is the sensor's clock synchronised?")
            return False
        if verdict is StampVerdict.JUMPED_BACK:
            self._memory.reset()
            self.memory_resets += 1
            self.get_logger().warning(
                f"{stream} stamp jumped back {newest - stamp:.1f} s (from {newest:.3f} to {stamp:.3f}, beyond "
                f"clock_jump_reset_s {self._stamps.config.jump_back_reset_s:g}): a new recording or a looped bag; "
                f"SceneMemory.reset()"
            )
        return True

    def _count(self, stream: str) -> None:
        with self._lock:
            self._received[stream] += 1
            first = self._received[stream] == 1
        self.watchdog.received(stream)
        if first:
            self.get_logger().info(f"first {stream} message received")

    def _expect(self, stream: str, topic: str, msg_type: type, parameter: str) -> None:
        """Watch ``topic`` for silence (``input_timeout_s``)."""
        self.watchdog.expect(stream, self.resolve_topic_name(topic), f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}",
                             parameter)

    def _record(self, statuses: list[IngestStatus]) -> None:
        for status in statuses:
            if status.dropped:
                assert status.reason is not None
                self._drop(status.reason.name.lower(), str(status))
            elif status.outcome is not FrameOutcome.WAITING:  # counted once, when its pose settles it
                with self._lock:
                    self._outcomes[status.outcome.value] += 1

    def _timed(self, stream: str, started: tuple[float, float]) -> None:
        wall, cpu = time.perf_counter() - started[0], time.thread_time() - started[1]
        with self._lock:
            self._callback_ms[stream].append(wall * 1e3)
            self._callback_cpu_ms[stream].append(cpu * 1e3)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._count("camera_info")
        if msg.header.frame_id and not self._camera_frame:  # the colour optical frame, known before the first image
            self._camera_frame = msg.header.frame_id
        try:
            intrinsics = camera_info_to_intrinsics(msg)
        except InvalidMessage as error:
            self._drop("invalid_camera_info", str(error))
            return
        with self._lock:
            self._intrinsics = intrinsics

    def _follow_latched_camera_info(self) -> None:
        """Until camera_info arrives: if a driver offers it transient-local (latched once, maybe before this node
        started), add a transient-local reader, which receives the latched message. Only then: such a reader
        is incompatible with the usual volatile writers, which would each log a QoS warning about us."""
        if self._latched_camera_info is not None or self.received_counts.get("camera_info"):
            return
        topic = self.resolve_topic_name(self.params["camera_info_topic"])
        if any(info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
               for info in self.get_publishers_info_by_topic(topic)):
            latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._latched_camera_info = self.create_subscription(
                CameraInfo, topic, self._on_camera_info, latched, callback_group=self._sensors)
            self._active_entities.append(self._latched_camera_info)
            self.get_logger().info(f"{topic} is latched (transient local): reading it with that durability too")

    # --- poses: /tf, PoseStamped, Odometry ------------------------------------------------------------

    def _tf_hint(self, error: TransformError) -> str:
        """What to change when the tree lacks ``map_frame`` but has ``odom_frame`` (a robot without localisation)."""
        frames = self.tf_buffer.frames()
        odom = self.params["odom_frame"]
        if isinstance(error, UnknownFrameError) and self.map_frame not in frames and odom in frames:
            return f" (the tf tree has '{odom}' but no '{self.map_frame}': without a localiser, set map_frame:={odom})"
        return ""

    def _on_tf(self) -> None:
        """After each /tf or /tf_static message: the images and clouds that waited for it."""
        self._count("tf")
        self._add_poses(self._pose_waiter.retry())
        for resolved in self._cloud_waiter.retry():
            self._memory.add_cloud(resolved.stamp, transform_points(resolved.transform, resolved.payload[0]), resolved.payload[1])
        self._report_gave_up()

    def _on_tf_jump(self, newest: float, stamp: float) -> None:
        """/tf went back in time (bag loop, clock restart): the tree's dynamic part was cleared; images waiting
        for a pose of the old timeline will not get one."""
        self._pose_waiter.clear()
        self.get_logger().warning(f"/tf jumped back in time from {newest:.3f} to {stamp:.3f} (bag loop or clock restart): "
                                  "dynamic transforms cleared")

    def _report_gave_up(self) -> None:
        for item in self._pose_waiter.take_gave_up():  # the memory drops (and counts) the frame as no_pose
            self.warnings.warn("no_transform", f"no camera pose from tf for the image at {item.stamp:.3f}: {item.problem}")
        for item in self._cloud_waiter.take_gave_up():
            self._drop("no_transform", f"cloud at {item.stamp:.3f} in '{item.frame}': {item.problem}")

    def _add_poses(self, resolved) -> None:
        for item in resolved:
            reason = self._memory.add_pose(item.stamp, item.transform)
            if reason is not None:
                self._drop(reason.name.lower(), f"tf pose at {item.stamp:.3f}: {reason.value}")
        self._record(self._memory.take_released())  # the frames that were waiting for these poses

    def _pose_from_tf(self, header: Header) -> bool:
        """pose_source tf: the camera pose at this colour image's stamp, now or when /tf catches up; False: drop it."""
        frame = self._camera_frame or header.frame_id
        stamp = stamp_to_seconds(header.stamp)
        if not frame:
            self._drop("missing_frame_id", "rgb image has no header.frame_id: set the camera_frame parameter")
            return False
        try:
            resolved = self._pose_waiter.add(stamp, frame, None)
        except TransformError as error:
            self._drop("no_transform", f"camera pose at {stamp:.3f}: {error}{self._tf_hint(error)}")
            return False
        self._add_poses(resolved)
        self._report_gave_up()
        return True

    def _on_pose(self, msg: PoseStamped) -> None:
        self._add_pose("pose", msg.header, "", pose_stamped_to_matrix, msg)

    def _on_odometry(self, msg: Odometry) -> None:
        self._add_pose("odometry", msg.header, msg.child_frame_id, odometry_to_matrix, msg)

    def _pose_in_map(self, frame: str, child: str, pose: np.ndarray) -> np.ndarray | None:
        """The camera-to-map transform of a pose of ``child`` (the camera when empty) in ``frame``; None: not yet known.

        ``frame`` -> map through the latest tf (a localisation correction changes slowly); ``child`` ->
        camera through tf too, once an image has named the camera frame. A child the tree does not know is
        taken for the camera itself (nothing else could place the camera)."""
        if frame and frame != self.map_frame:
            pose = self.tf_buffer.lookup(self.map_frame, frame) @ pose
        camera = self._camera_frame
        if child and child != camera and child.lstrip("/") in self.tf_buffer.frames():
            if not camera:
                return None
            pose = pose @ self.tf_buffer.lookup(child, camera)
        return pose

    def _add_pose(self, stream: str, header: Header, child: str, to_matrix: Callable[[Any], np.ndarray], msg: Any) -> None:
        self._count(stream)
        if not self._stamp_ok(stream, header):
            return
        try:
            pose = to_matrix(msg)
        except InvalidMessage as error:
            self._drop("invalid_pose", str(error))
            return
        try:
            cam_to_map = self._pose_in_map(header.frame_id, child, pose)
        except TransformError as error:
            self._drop("wrong_frame", f"{stream} of '{child or 'the camera'}' in frame '{header.frame_id}' cannot be "
                                      f"placed in '{self.map_frame}': {error}{self._tf_hint(error)}")
            return
        if cam_to_map is None:
            self._drop("no_camera_frame", f"{stream} of '{child}' before any image named the camera frame "
                                          "(set the camera_frame parameter)")
            return
        reason = self._memory.add_pose(stamp_to_seconds(header.stamp), cam_to_map)
        if reason is not None:
            self._drop(reason.name.lower(), f"{stream} at {stamp_to_seconds(header.stamp):.3f}: {reason.value}")
        self._record(self._memory.take_released())  # the frames that were waiting for this pose

    # --- images ----------------------------------------------------------------------------------------

    def _camera(self, stream: str) -> Intrinsics | None:
        """The current intrinsics; None (and the image dropped) before a valid camera_info."""
        with self._lock:
            intrinsics = self._intrinsics
        if intrinsics is None:
            self._drop("missing_camera_info", f"{stream} image: no valid camera_info received yet")
        return intrinsics

    def _decode(self, stream: str, msg: Any, decoder: Callable[[Any], np.ndarray], intrinsics: Intrinsics) -> np.ndarray | None:
        """The image's pixels if they decode and match the intrinsics' size; otherwise drop it and say why."""
        try:
            pixels = decoder(msg)
        except UnsupportedEncoding as error:
            self._drop("unsupported_encoding", f"{stream} image: {error}")
            return None
        except InvalidMessage as error:
            self._drop("invalid_image", f"{stream} image: {error}")
            return None
        height, width = pixels.shape[:2]
        if stream == "depth" and (height, width) != (intrinsics.height, intrinsics.width):
            return self._depth_to_colour_size(pixels, intrinsics)
        if (height, width) != (intrinsics.height, intrinsics.width):
            self._drop(
                "size_mismatch",
                f"{stream} image is {width}x{height} but camera_info says {intrinsics.width}x{intrinsics.height}"
                " (depth must be registered to the colour camera)",
            )
            return None
        return pixels

    def _depth_to_colour_size(self, depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray | None:
        """Depth of another size than the colour: resampled to it when it has the colour's aspect ratio (the same
        field of view, as registered depth at a driver's own resolution has) and ``depth_resample`` is on;
        otherwise dropped. Either way the warning names both sizes."""
        height, width = depth.shape
        sizes = f"depth image is {width}x{height} but the colour camera_info says {intrinsics.width}x{intrinsics.height}"
        if not self.params["depth_resample"] or not same_aspect((width, height), (intrinsics.width, intrinsics.height)):
            why = "depth_resample is false" if not self.params["depth_resample"] else "another aspect ratio, so another field of view"
            self._drop(
                "size_mismatch",
                f"{sizes} ({why}): publish depth registered to the colour camera"
                + ("" if self.params["depth_resample"] else ", or set depth_resample true to resample depth of the same aspect"),
            )
            return None
        self._adjust(
            "depth_resampled",
            f"{sizes}: resampled to the colour size (nearest pixel; assumes depth registered to the colour camera, same "
            "field of view); publish depth at the colour resolution, or set depth_resample false to drop such frames",
        )
        return resample_depth(depth, intrinsics.width, intrinsics.height)

    def _on_rgb(self, msg: Image | CompressedImage) -> None:
        started = time.perf_counter(), time.thread_time()
        self._count("rgb")
        if msg.header.frame_id and not self.params["camera_frame"]:
            self._camera_frame = msg.header.frame_id
        intrinsics = self._camera("rgb") if self._stamp_ok("rgb", msg.header) else None
        rgb = self._decode("rgb", msg, self._rgb_decoder, intrinsics) if intrinsics is not None else None
        if rgb is not None and (self.params["pose_source"] != "tf" or self._pose_from_tf(msg.header)):
            self._ingest(lambda: self._memory.add_rgb(stamp_to_seconds(msg.header.stamp), rgb, intrinsics))
        self._timed("rgb", started)

    def _on_depth(self, msg: Image | CompressedImage) -> None:
        started = time.perf_counter(), time.thread_time()
        self._count("depth")
        intrinsics = self._camera("depth") if self._stamp_ok("depth", msg.header) else None
        depth = self._decode("depth", msg, self._depth_decoder, intrinsics) if intrinsics is not None else None
        if depth is not None:
            with np.errstate(invalid="ignore"):
                valid = np.isfinite(depth) & (depth > 0) & (depth <= self._memory.config.max_coordinate_m)
            if not valid.any():
                self._drop("invalid_depth", f"depth image at {stamp_to_seconds(msg.header.stamp):.3f}: no valid pixel "
                           f"(all NaN, inf, 0 or beyond max_coordinate_m {self._memory.config.max_coordinate_m:g} m)")
            else:
                self._ingest(lambda: self._memory.add_depth(stamp_to_seconds(msg.header.stamp), depth))
        self._timed("depth", started)

    def _ingest(self, add: Callable[[], list[IngestStatus]]) -> None:
        try:
            self._record(add())
        except ValueError as error:  # SceneMemory's one-line check of a frame it cannot fuse
            self._drop("invalid_frame", str(error))
        self._record(self._memory.take_released())  # frames that gave up waiting for their pose

    # --- point clouds --------------------------------------------------------------------------------

    def _on_cloud(self, msg: PointCloud2) -> None:
        started = time.perf_counter(), time.thread_time()
        self._count("cloud")
        frame, stamp = msg.header.frame_id, stamp_to_seconds(msg.header.stamp)
        n_points, limit = int(msg.width) * int(msg.height), int(self.params["max_cloud_points"])
        stride = -(-n_points // limit) if n_points > limit else 1
        if stride > 1:
            self._adjust(
                "cloud_downsampled",
                f"cloud of {n_points} points is more than max_cloud_points {limit}: every {stride}th point fused "
                f"({-(-n_points // stride)}); raise max_cloud_points to fuse all (fusion time grows with the points)",
            )
        points = colors = None
        if self._stamp_ok("cloud", msg.header):
            try:
                points, colors = cloud_to_xyz_rgb(msg, stride)
            except InvalidMessage as error:
                self._drop("invalid_cloud", str(error))
        if points is not None and frame == self.map_frame:
            self._memory.add_cloud(stamp, points, colors)
        elif points is not None:
            try:  # a cloud in a sensor frame waits (briefly) for /tf to cover its stamp
                for resolved in self._cloud_waiter.add(stamp, frame, (points, colors)):
                    self._memory.add_cloud(resolved.stamp, transform_points(resolved.transform, resolved.payload[0]), resolved.payload[1])
            except TransformError as error:
                self._drop("wrong_frame", f"cloud in frame '{frame}' cannot be placed in '{self.map_frame}': "
                                          f"{error}{self._tf_hint(error)}")
            self._report_gave_up()
        self._timed("cloud", started)

    # --- workers and output ------------------------------------------------------------------------

    def _worker_error(self, step: str, error: Exception) -> None:
        self.warnings.warn(f"{step}_error", f"{step} worker: {type(error).__name__}: {error} (the worker carries on)")

    def destroy_node(self) -> None:
        if hasattr(self, "workers"):  # absent when the constructor failed before starting them (a bad parameter)
            self._closing.set()
            self._output_thread.join(timeout=5.0)
            self.workers.stop()
        super().destroy_node()

    def _output_loop(self) -> None:
        while not self._closing.is_set():
            if not self._publish_due.wait(0.1):
                continue
            self._publish_due.clear()
            try:
                with self._output_lock:
                    if self._timer is not None:  # still active
                        self._publish_outputs()
            except Exception as error:  # noqa: BLE001 - e.g. the context shut down under it; say so, carry on
                if not self.context.ok():
                    return
                self._worker_error("publish", error)

    def _report_backlog(self) -> None:
        """Frames the fusion worker could not keep up with: counted and said, never lost silently."""
        dropped = self._memory.stats().dropped.get(DropReason.FUSION_BACKLOG, 0)
        self._backlog_drops = min(self._backlog_drops, dropped)  # the memory was reset
        if dropped > self._backlog_drops:
            with self._lock:
                self._drops["fusion_backlog"] += dropped - self._backlog_drops
            self.warnings.warn(
                "fusion_backlog",
                f"{dropped - self._backlog_drops} frame(s) not fused: {DropReason.FUSION_BACKLOG.value}; raise "
                "max_fusion_backlog, min_fuse_interval_s or depth_stride, or lower max_voxels",
            )
            self._backlog_drops = dropped

    def _publish(self) -> None:
        """Timer callback: hand the publishing to the output thread (it takes milliseconds to tens of them)."""
        self._publish_due.set()

    def _publish_outputs(self) -> None:
        started = time.perf_counter(), time.thread_time()
        self._report_backlog()
        for warning in self._memory.proposal_warnings():
            self.warnings.warn(f"proposals_{warning.kind}", f"proposals: {warning.message}")
        cloud_wanted = self._cloud_pub.get_subscription_count() > 0
        snapshot = self._memory.snapshot(include_cloud=cloud_wanted)
        proposals = snapshot.proposals
        header = make_header(snapshot.stamp if snapshot.stamp is not None else self.get_clock().now().to_msg(), self.map_frame)
        if cloud_wanted:
            cloud = xyz_rgb_to_cloud(snapshot.cloud_points, snapshot.cloud_colors, header.stamp, self.map_frame)
            warning = large_sample_warning("PointCloud2", self._cloud_pub.topic_name, len(cloud.data))
            if warning is not None:  # max_voxels decides the size: 16 bytes a voxel
                self.warnings.warn("large_fused_cloud", f"{warning}; or lower max_voxels")
            self._cloud_pub.publish(cloud)
        self._markers_pub.publish(proposals_to_marker_array(proposals, header))
        if self._keyframe_pub is not None:
            self._publish_new_keyframes(snapshot.keyframes)
        self._array_pub.publish(proposals_to_array(proposals, header, len(snapshot.keyframes), snapshot.n_voxels))
        self._detections_pub.publish(proposals_to_detections(proposals, header))
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
        evict_grace_inserts=int(p["evict_grace_inserts"]),
        depth_stride=int(p["depth_stride"]),
        depth_max_points=int(p["depth_max_points"]),
        min_depth_m=float(p["min_depth_m"]),
        max_depth_m=float(p["max_depth_m"]),
        max_coordinate_m=float(p["max_coordinate_m"]),
        min_fuse_interval_s=float(p["min_fuse_interval_s"]),
        proposal_min_hits=int(p["proposal_min_hits"]),
        depth_edge_ratio=float(p["depth_edge_ratio"]),
        depth_noise=dataclasses.replace(
            defaults.depth_noise,
            base_m=float(p["depth_noise_base_m"]),
            per_m2=float(p["depth_noise_per_m2"]),
            offset_m=float(p["depth_noise_offset_m"]),
        ),
        drop_depth_speckles=bool(p["drop_depth_speckles"]),
        max_fusion_backlog=int(p["max_fusion_backlog"]),
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
