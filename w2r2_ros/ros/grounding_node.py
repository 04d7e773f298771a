"""grounding_node: answers "where is <text>?" with one GroundingResult per query, markers and a debug image.

Queries arrive four ways: ``w2r2_ros/GroundingQuery`` on ``w2r2/query``,
``std_msgs/String`` on ``w2r2/query_text`` (topic names are relative), the
``w2r2/ground`` action (``w2r2_ros/action/Ground``: feedback names the stage,
cancellable) and the ``w2r2/ground_service`` service (``w2r2_ros/srv/Ground``).
Every query gets exactly one ``GroundingResult``: on ``w2r2/result`` (all
queries, with their ``query_id``; an id such as ``text-3`` is assigned when
empty), and for the action and the service also as their result. OK with the
box, or a status and a message a person understands. It is never silent.

Lifecycle (``rclpy.lifecycle``, as yolo_ros): configure reads the parameters,
loads the model, starts the worker and offers the action and the service;
activate subscribes to the query topics (and, in two-process mode, to the
scene's keyframes and proposals); deactivate unsubscribes (the action and the
service then answer BUSY, naming the state); cleanup frees the model.
``autostart`` (default) configures and activates at creation.

Threading: the subscription callbacks only validate and enqueue (a bounded
queue; full -> STATUS_BUSY), and one worker thread runs the model on a
``SceneMemory.snapshot(include_cloud=False)`` (keyframes and proposals; the
fused cloud is not copied). So a query never blocks the executor that feeds the
scene memory node its sensor streams, and a burst is queued up to
``queue_size`` and then refused, each query answered.

Frames and vision_msgs: a query's ``target_frame`` (topic, action, service)
gets its answer in that frame, through the latest ``/tf`` (the node keeps its
own transform buffer); a frame tf does not connect to ``map_frame`` is refused
(INVALID_QUERY, with tf's reason). Markers and the debug image stay in
``map_frame``. Every result is also published as a
``vision_msgs/Detection3DArray`` on ``w2r2/detections`` (the answer and its
alternatives, best first; empty unless OK: ``ros/detections.py``).

Reliability (docs/RELIABILITY.md): every callback is guarded (``guarded_node.py``), and an
unexpected error while taking a query still answers it (ERROR); a non-finite model score is
ERROR, never OK; a result carries an excerpt of at most ``max_query_length`` characters of
the query, and log lines carry it with control characters escaped. On shutdown
(:meth:`GroundingNode.begin_shutdown`) the queries already queued are answered and later
ones get BUSY "shutting down". A watchdog reports on ``/diagnostics`` an answer that takes
longer than ``watchdog_stall_s``.

State sharing: given a ``SceneMemory`` the node reads it in-process, zero
copy (the one the scene memory node fills: ``w2r2-bringup``, the demo).
Without one (``grounding_node`` run alone) it reads a ``RemoteScene`` fed by the
scene memory node's ``SceneKeyframe`` and ``ObjectProposalArray`` topics.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.action import ActionServer, CancelResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import Image
from std_msgs.msg import String
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from w2r2_ros.geometry.transform_buffer import TransformError
from w2r2_ros.model.grounder import TORCH_DTYPES, GroundingAnswer, Grounder
from w2r2_ros.model.grounder import GroundingCandidate as RankedCandidate
from w2r2_ros.ros.callback_guard import one_line
from w2r2_ros.ros.conversions import InvalidMessage, make_header, stamp_to_seconds
from w2r2_ros.ros.detections import box_pose, result_to_detections
from w2r2_ros.ros.guarded_node import GuardedCallbacks
from w2r2_ros.ros.interfaces import (
    GroundAction,
    GroundingCandidate,
    GroundingQuery,
    GroundingResult,
    GroundService,
    ObjectProposalArray,
    SceneKeyframe,
)
from w2r2_ros.ros.keyframe_messages import array_to_proposals, msg_to_keyframe
from w2r2_ros.ros.lifecycle_support import LifecycleError, bring_up, lifecycle_step
from w2r2_ros.ros.markers import debug_image, result_markers
from w2r2_ros.ros.node_diagnostics import status
from w2r2_ros.ros.parameter_specs import ParamSpec, declare_parameters, on_live_change
from w2r2_ros.ros.node_runtime import NodeRuntime, stop_on_signals, wait_for
from w2r2_ros.ros.params import DEFAULT_CHECKPOINT, resolve_package_path
from w2r2_ros.ros.query_text import excerpt, loggable
from w2r2_ros.ros.rate_limited_log import RateLimitedWarner
from w2r2_ros.ros.result_frames import result_in_frame
from w2r2_ros.ros.tf_listener import TF_BACKENDS, TfListener, make_transform_buffer
from w2r2_ros.scene.memory import SceneSnapshot
from w2r2_ros.scene.remote_scene import RemoteScene

NODE_NAME = "grounding_node"

STATUS_NAMES = {
    GroundingResult.STATUS_OK: "OK",
    GroundingResult.STATUS_NO_FRAMES: "NO_FRAMES",
    GroundingResult.STATUS_NO_PROPOSALS: "NO_PROPOSALS",
    GroundingResult.STATUS_MODEL_NOT_LOADED: "MODEL_NOT_LOADED",
    GroundingResult.STATUS_INVALID_QUERY: "INVALID_QUERY",
    GroundingResult.STATUS_NOT_FOUND: "NOT_FOUND",
    GroundingResult.STATUS_BUSY: "BUSY",
    GroundingResult.STATUS_ERROR: "ERROR",
    GroundingResult.STATUS_CANCELED: "CANCELED",
}
# Statuses for which the model produced the answer: the action goal succeeds; any other aborts.
ANSWERED = (GroundingResult.STATUS_OK, GroundingResult.STATUS_NOT_FOUND)


class SnapshotSource(Protocol):
    """Where the node reads the scene: ``SceneMemory`` (shared with the scene memory node)."""

    def snapshot(self, include_cloud: bool = True) -> SceneSnapshot: ...


def parameter_specs() -> dict[str, ParamSpec]:
    """Every parameter: default (the same as config/w2r2.yaml and the launch file), meaning, range."""
    topic = "(relative: resolved in the node's namespace, remappable)"
    return {
        "autostart": ParamSpec(True, "configure and activate when created (false: stay unconfigured for a lifecycle manager)"),
        "checkpoint": ParamSpec(DEFAULT_CHECKPOINT, "model directory (save_checkpoint layout) or package://w2r2_ros/...; "
                                "empty or unloadable: every query is answered MODEL_NOT_LOADED"),
        "device": ParamSpec("cpu", "torch device, e.g. cpu, cuda, cuda:1"),
        "dtype": ParamSpec("float32", "weights' dtype (bfloat16 for the video LLM on a GPU, docs/VLM.md)",
                           choices=tuple(TORCH_DTYPES)),
        "top_k": ParamSpec(5, "candidates in each result: the answer plus top_k - 1 alternatives", minimum=1, maximum=100, live=True),
        "score_threshold": ParamSpec(0.2, "answer score (softmax over proposals and 'no target') needed for OK",
                                     minimum=0.0, maximum=1.0, live=True),
        "max_frames": ParamSpec(32, "keyframes the model reads per query (spread over the buffer)", minimum=1, maximum=1000, live=True),
        "max_query_length": ParamSpec(500, "characters; longer queries are refused (INVALID_QUERY)", minimum=1, maximum=100000, live=True),
        "queue_size": ParamSpec(8, "queries waiting for the model; more are refused (BUSY)", minimum=1, maximum=10000),
        "watchdog_stall_s": ParamSpec(60.0, "/diagnostics reports ERROR when one answer (or a callback) takes longer (0: no watchdog)",
                                      minimum=0.0),
        "map_frame": ParamSpec("map", "frame of the scene, and of the answers unless a query names a target_frame"),
        "tf_backend": ParamSpec("auto", "transform buffer for target_frame: auto (tf2_ros where it imports), builtin or tf2_ros",
                                choices=TF_BACKENDS),
        "query_topic": ParamSpec("w2r2/query", f"w2r2_ros/GroundingQuery input {topic}"),
        "query_text_topic": ParamSpec("w2r2/query_text", f"std_msgs/String query input {topic}"),
        "result_topic": ParamSpec("w2r2/result", f"w2r2_ros/GroundingResult output, one per query {topic}"),
        "markers_topic": ParamSpec("w2r2/markers", f"answer MarkerArray output {topic}"),
        "debug_image_topic": ParamSpec("w2r2/debug_image", f"sensor_msgs/Image with the answer drawn in {topic}"),
        "detections_topic": ParamSpec("w2r2/detections", f"vision_msgs/Detection3DArray: the answer and its alternatives {topic}"),
        "action_name": ParamSpec("w2r2/ground", f"w2r2_ros/action/Ground server {topic}"),
        "service_name": ParamSpec("w2r2/ground_service", f"w2r2_ros/srv/Ground server {topic}"),
        "keyframes_topic": ParamSpec("w2r2/scene/keyframes", f"SceneKeyframe input when run alone (two-process mode) {topic}"),
        "proposal_array_topic": ParamSpec("w2r2/scene/proposal_array", f"ObjectProposalArray input when run alone {topic}"),
        "scene_max_keyframes": ParamSpec(32, "keyframes kept from keyframes_topic when run alone (the scene node's max_keyframes)",
                                         minimum=1, maximum=10000),
        "diagnostics_period_s": ParamSpec(1.0, "/diagnostics report period (model state, queue, answers, last latency); 0: off",
                                          minimum=0.0, maximum=3600.0),
    }


@dataclass(frozen=True)
class GroundingNodeParams:
    """The node's parameter values (names and defaults: :func:`parameter_specs`). ``score_threshold``: the
    answer's softmax score (over the proposals and "no target") must reach it, else NOT_FOUND.
    ``max_frames``: the keyframes the model reads (spread evenly over the buffer). ``queue_size``:
    queries waiting for the model beyond the one it is answering; more are refused with BUSY."""

    autostart: bool
    checkpoint: str
    device: str
    dtype: str
    top_k: int
    score_threshold: float
    max_frames: int
    max_query_length: int
    queue_size: int
    watchdog_stall_s: float
    map_frame: str
    tf_backend: str
    query_topic: str
    query_text_topic: str
    result_topic: str
    markers_topic: str
    debug_image_topic: str
    detections_topic: str
    action_name: str
    service_name: str
    keyframes_topic: str
    proposal_array_topic: str
    scene_max_keyframes: int
    diagnostics_period_s: float


@dataclass(frozen=True)
class _Job:
    """One query for the worker. ``reply`` also receives the result (action, service); ``stage`` hears
    the stage (action feedback); a set ``cancelled`` means nobody waits any more (cancelled goal)."""

    query_id: str
    text: str
    target_frame: str = ""  # "" or map_frame: answers in map_frame
    reply: Callable[[GroundingResult], None] | None = None
    stage: Callable[[str], None] | None = None
    cancelled: threading.Event | None = None
    received: float = dataclasses.field(default_factory=time.monotonic)


_EVERY_MESSAGE = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
_LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
Stage = GroundAction.Feedback
# What the watchdog calls the model worker while it answers a query.
WORKER_JOB = "model worker (one query)"


class GroundingNode(GuardedCallbacks, LifecycleNode):
    """Grounds queries on the scene memory with the W2R2 model (see the module docstring).

    ``memory``: the scene memory to read in-process (zero copy); None reads the
    scene memory node's topics instead (two processes).
    """

    def __init__(self, memory: SnapshotSource | None = None, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._worker: threading.Thread | None = None
        self.params = GroundingNodeParams(**declare_parameters(self, parameter_specs()))
        self.remote = memory is None
        self.memory: SnapshotSource = RemoteScene(self.params.scene_max_keyframes) if memory is None else memory
        self.grounder: Grounder | None = None
        self.model_source = ""
        self.model_problem = "the node is not configured (lifecycle state 'unconfigured')"
        self.last_latency_ms: float | None = None  # arrival to answer, of the last query the model worker answered
        self._last_model_ms: float | None = None
        self._answers: Counter[str] = Counter()  # results published, per status name
        self._ids = itertools.count(1)
        self._closing = False
        self._last_query = time.monotonic()  # when a query last arrived (shutdown waits for a quiet spell)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=self.params.queue_size)
        self._interfaces: list[Any] = []  # action server and service (configure .. cleanup)
        self._subscriptions_active: list[Any] = []  # query (and scene) subscriptions (activate .. deactivate)
        self._goal_lock = threading.Lock()
        self._running_goal: str | None = None
        self._goal_cancels: dict[bytes, Callable[[], None]] = {}  # goal id -> wakes its coroutine as cancelled
        self.warnings = RateLimitedWarner(self.get_logger().warning)
        self.tf_buffer = make_transform_buffer(self.params.tf_backend)
        on_live_change(self, parameter_specs(), self._apply_live_parameters)
        self.start_watchdog(self.params.watchdog_stall_s, self.params.diagnostics_period_s, self.diagnostic_statuses)
        if self.params.autostart:
            bring_up(self)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def lifecycle_state(self) -> str:
        """``unconfigured``, ``inactive``, ``active`` or ``finalized``."""
        return self._state_machine.current_state[1]

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model, start the worker, create the publishers, the action server and the service."""
        return lifecycle_step(self, "configure", self._configure)

    def _configure(self) -> None:
        p = self.params
        self.grounder, self.model_problem = self._load_model()
        # Queries and results are KEEP_ALL: a keep-last history would silently drop the oldest queries of
        # a burst (or results a slow reader has not taken yet), and every query must be answered.
        self._result_pub = self.create_publisher(GroundingResult, p.result_topic, _EVERY_MESSAGE)
        self._markers_pub = self.create_publisher(MarkerArray, p.markers_topic, _LATEST)
        self._image_pub = self.create_publisher(Image, p.debug_image_topic, _LATEST)
        self._detections_pub = self.create_publisher(Detection3DArray, p.detections_topic, _LATEST)
        # Reentrant: a goal or service request awaits its answer while the next request is refused or queued.
        requests = ReentrantCallbackGroup()
        self._interfaces = [
            self._result_pub, self._markers_pub, self._image_pub, self._detections_pub,
            ActionServer(self, GroundAction, p.action_name, self._execute_goal, callback_group=requests,
                         cancel_callback=self._on_cancel),
            self.create_service(GroundService, p.service_name, self._on_service, callback_group=requests),
        ]
        self._worker = threading.Thread(target=self._work, name="grounding-worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"queries on {p.query_topic}, {p.query_text_topic}, action {p.action_name}, service {p.service_name} "
            f"-> {p.result_topic} (namespace '{self.get_namespace()}'); scene "
            + (f"from {p.keyframes_topic} and {p.proposal_array_topic} (own process)" if self.remote else "in-process")
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the query topics (and the scene's topics when run alone)."""
        return lifecycle_step(self, "activate", self._activate)

    def _activate(self) -> None:
        p = self.params
        subscriptions = [
            self.create_subscription(GroundingQuery, p.query_topic, self._on_query, _EVERY_MESSAGE),
            self.create_subscription(String, p.query_text_topic, self._on_query_text, _EVERY_MESSAGE),
        ]
        subscriptions += TfListener(self, self.tf_buffer, on_update=lambda: None,
                                    on_invalid=lambda line: self.warnings.warn("invalid_transform", line)).subscriptions
        if self.remote:
            keyframes_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.scene_max_keyframes,
                                       reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._proposal_subscription = self.create_subscription(ObjectProposalArray, p.proposal_array_topic,
                                                                   self._on_proposals, 1)
            subscriptions += [
                self.create_subscription(SceneKeyframe, p.keyframes_topic, self._on_keyframe, keyframes_qos),
                self._proposal_subscription,
            ]
        self._subscriptions_active = subscriptions

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe; queries already queued are still answered."""
        return lifecycle_step(self, "deactivate", self._deactivate)

    def _deactivate(self) -> None:
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker (waiting queries get BUSY), free the model, remove the action, service and publishers."""
        return lifecycle_step(self, "cleanup", self._cleanup)

    def _cleanup(self) -> None:
        self._stop_worker()
        for entity in self._interfaces:
            if isinstance(entity, ActionServer):
                entity.destroy()
            elif hasattr(entity, "publish"):
                self.destroy_publisher(entity)
            else:
                self.destroy_service(entity)
        self._interfaces = []
        self.grounder = None
        self.model_problem = "the node was cleaned up (lifecycle state 'unconfigured')"

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Deactivate and clean up."""
        return lifecycle_step(self, "shutdown", self._deactivate, self._cleanup)

    def _apply_live_parameters(self, changes: dict[str, Any]) -> str:
        """``ros2 param set`` of score_threshold, top_k, max_frames, max_query_length: the next query uses them."""
        self.params = dataclasses.replace(self.params, **changes)
        return ""

    # --- the scene from topics (two-process mode) --------------------------------------------

    def _on_keyframe(self, msg: SceneKeyframe) -> None:
        try:
            self.memory.add_keyframe(msg_to_keyframe(msg))
        except (InvalidMessage, ValueError) as error:
            self.warnings.warn("invalid_keyframe", f"dropped a keyframe: {error}")

    def _on_proposals(self, msg: ObjectProposalArray) -> None:
        topic = self._proposal_subscription.topic_name
        if (publishers := self.count_publishers(topic)) > 1:
            # Each array replaces the scene and trims the keyframes to its count: two scene memory nodes on one
            # topic make the scene flip between them (and an empty one clears the other's keyframes).
            self.warnings.warn("several_scene_publishers", f"{publishers} publishers on {topic}: the scene flips "
                               "between them; run one scene_memory_node per namespace (or remap proposal_array_topic)")
        self.memory.set_proposals(array_to_proposals(msg), msg.num_keyframes, msg.num_voxels, stamp_to_seconds(msg.header.stamp))

    # --- set-up ------------------------------------------------------------------------------

    def _load_model(self) -> tuple[Grounder | None, str]:
        """The grounder, or None and a sentence saying why (logged once, repeated in every answer)."""
        try:
            path = resolve_package_path(self.params.checkpoint)
        except ValueError as error:
            path, problem = None, f"checkpoint parameter: {error}"
        else:
            problem = "the checkpoint parameter is empty"
        if path is not None and not Path(path).is_dir():
            path, problem = None, f"checkpoint directory {path} does not exist (set the checkpoint parameter)"
        if path is None:
            self.get_logger().error(f"model not loaded: {problem}; every query will be answered MODEL_NOT_LOADED")
            return None, problem
        try:
            grounder = Grounder.from_checkpoint(path, self.params.device, dtype=self.params.dtype)
        except Exception as error:  # any load failure is reported the same way: the node keeps answering
            problem = f"cannot load checkpoint {path} on {self.params.device}: {error}"
            self.get_logger().error(f"model not loaded: {problem}; every query will be answered MODEL_NOT_LOADED")
            return None, problem
        self.model_source = f"loaded from {path} on {self.params.device}"
        self.get_logger().info(f"model {self.model_source}")
        return grounder, ""

    # --- queries in --------------------------------------------------------------------------

    def _on_query(self, msg: GroundingQuery) -> None:
        self._take(_Job(msg.query_id or f"query-{next(self._ids)}", msg.text), msg.target_frame)

    def _on_query_text(self, msg: String) -> None:
        self._take(_Job(f"text-{next(self._ids)}", msg.data), "")

    def _take(self, job: _Job, target_frame: str) -> None:
        """Submit the query; whatever goes wrong meanwhile, it is still answered (ERROR), exactly once."""
        self._last_query = time.monotonic()
        try:
            self._submit(job, target_frame)
        except Exception as error:
            self.guard.report("query", error)
            self._deliver(job, self._result(job.query_id, job.text, GroundingResult.STATUS_ERROR,
                                            f"internal error taking the query: {one_line(error)}"))

    def _submit(self, job: _Job, target_frame: str) -> None:
        """Validate and enqueue; everything that can be refused without the model is refused here."""
        stripped = job.text.strip()
        refusal: tuple[int, str] | None = None
        if self._closing:
            refusal = (GroundingResult.STATUS_BUSY, "busy: the node is shutting down")
        elif self.lifecycle_state != "active":
            refusal = (GroundingResult.STATUS_BUSY,
                       f"busy: {NODE_NAME} is {self.lifecycle_state} (lifecycle); activate it to answer queries")
        elif (problem := self._frame_problem(target_frame)) is not None:
            refusal = (GroundingResult.STATUS_INVALID_QUERY, f"target_frame '{loggable(target_frame)}': {problem}")
        elif not stripped:
            refusal = (GroundingResult.STATUS_INVALID_QUERY, "the query text is empty")
        elif len(stripped) > self.params.max_query_length:
            refusal = (GroundingResult.STATUS_INVALID_QUERY,
                       f"the query is {len(stripped)} characters long; the limit is {self.params.max_query_length}")
        elif self.grounder is None:
            refusal = (GroundingResult.STATUS_MODEL_NOT_LOADED, f"model not loaded: {self.model_problem}")
        else:
            try:
                self._queue.put_nowait(dataclasses.replace(job, text=stripped, target_frame=target_frame))
                if job.stage is not None:
                    job.stage(Stage.STAGE_QUEUED)
                return
            except queue.Full:
                refusal = (GroundingResult.STATUS_BUSY,
                           f"busy: {self.params.queue_size} queries are already waiting; try again shortly")
        self._deliver(job, self._result(job.query_id, job.text, *refusal))

    def _deliver(self, job: _Job, result: GroundingResult, snapshot: SceneSnapshot | None = None) -> None:
        """The result on the topic (with markers), and to whoever waits for it (action, service)."""
        if job.cancelled is not None and job.cancelled.is_set():
            return  # the goal ended as cancelled; its answer is discarded
        result = self._publish(result, snapshot, job.target_frame)
        if job.reply is not None:
            job.reply(result)

    # --- action and service ------------------------------------------------------------------

    def _awaitable(self) -> tuple[Future, Callable[[GroundingResult | None], None]]:
        """A future the executor resumes on, and a thread-safe way to complete it once."""
        future: Future = Future(executor=self.executor)
        lock = threading.Lock()

        def complete(result: GroundingResult | None) -> None:
            with lock:
                if future.done():
                    return
                future.set_result(result)
            if self.executor is not None:
                self.executor.wake()  # the awaiting callback runs in the executor, which may be idle

        return future, complete

    async def _on_service(self, request: GroundService.Request, response: GroundService.Response) -> GroundService.Response:
        future, complete = self._awaitable()
        self._take(_Job(f"service-{next(self._ids)}", request.text, reply=complete), request.target_frame)
        response.result = await future
        return response

    def _on_cancel(self, goal_handle: ServerGoalHandle) -> CancelResponse:
        """Any goal may be cancelled; the waiting coroutine is woken at once (see _execute_goal)."""
        cancel = self._goal_cancels.get(bytes(goal_handle.goal_id.uuid))
        if cancel is not None:
            cancel()
        return CancelResponse.ACCEPT

    async def _execute_goal(self, goal_handle: ServerGoalHandle) -> GroundAction.Result:
        """One goal at a time: a second goal while one runs is answered BUSY at once (abort)."""
        goal = goal_handle.request
        query_id = f"goal-{next(self._ids)}"
        with self._goal_lock:
            running = self._running_goal
            if running is None:
                self._running_goal = query_id
        if running is not None:
            result = self._result(query_id, goal.text, GroundingResult.STATUS_BUSY,
                                  f"busy: goal {running} is running; the action answers one goal at a time "
                                  "(wait, cancel it, or use the service or the query topic, which queue)")
            self._publish(result)
            goal_handle.abort()
            return GroundAction.Result(result=result)
        try:
            future, complete = self._awaitable()
            cancelled = threading.Event()

            def cancel() -> None:
                cancelled.set()
                complete(None)

            self._goal_cancels[bytes(goal_handle.goal_id.uuid)] = cancel
            if goal_handle.is_cancel_requested:
                cancel()

            def stage(name: str) -> None:
                if not cancelled.is_set():
                    goal_handle.publish_feedback(Stage(stage=name))

            self._take(_Job(query_id, goal.text, reply=complete, stage=stage, cancelled=cancelled), goal.target_frame)
            result = await future
            if result is None:
                result = self._result(query_id, goal.text, GroundingResult.STATUS_CANCELED,
                                      "cancelled: the goal was cancelled before its answer was ready")
                self.get_logger().info(f"[{query_id}] '{loggable(goal.text)}': CANCELED")
                goal_handle.canceled()
            elif result.status in ANSWERED:
                goal_handle.succeed()
            else:
                goal_handle.abort()
            return GroundAction.Result(result=result)
        finally:
            self._goal_cancels.pop(bytes(goal_handle.goal_id.uuid), None)
            with self._goal_lock:
                self._running_goal = None

    # --- the model (worker thread) -----------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                if job.cancelled is None or not job.cancelled.is_set():
                    self._work_on(job)
            finally:
                self._queue.task_done()

    def _work_on(self, job: _Job) -> None:
        with self.guard.busy(WORKER_JOB):
            try:
                result, snapshot = self._answer(job)
            except Exception as error:  # the query must still be answered; the node keeps running
                self.get_logger().error(f"query {job.query_id} ('{loggable(job.text)}') failed: {one_line(error)}")
                result, snapshot = self._result(job.query_id, job.text, GroundingResult.STATUS_ERROR,
                                                f"internal error: {one_line(error)}"), None
            self.last_latency_ms = (time.monotonic() - job.received) * 1e3
            self._last_model_ms = float(result.model_time_ms) if result.model_time_ms > 0 else self._last_model_ms
            try:
                self._deliver(job, result, snapshot)
            except Exception as error:  # e.g. a reply callback: the result itself went out first
                self.guard.report(WORKER_JOB, error)

    def _answer(self, job: _Job) -> tuple[GroundingResult, SceneSnapshot | None]:
        if job.stage is not None:
            job.stage(Stage.STAGE_READING_SCENE)
        snapshot = self.memory.snapshot(include_cloud=False)  # the model reads keyframes and proposals only
        if not snapshot.keyframes:
            return self._result(job.query_id, job.text, GroundingResult.STATUS_NO_FRAMES,
                                "no keyframes received yet: is the camera streaming RGB, depth and pose?"), None
        if not snapshot.proposals:
            return self._result(job.query_id, job.text, GroundingResult.STATUS_NO_PROPOSALS,
                                "no object proposals yet: the scene memory has found no objects so far"), None
        grounder, params = self.grounder, self.params
        if grounder is None:
            return self._result(job.query_id, job.text, GroundingResult.STATUS_MODEL_NOT_LOADED,
                                f"model not loaded: {self.model_problem}"), None
        if job.stage is not None:
            job.stage(Stage.STAGE_RUNNING_MODEL)
        answer = grounder.ground_snapshot(snapshot, job.text, top_k=params.top_k, max_frames=params.max_frames)
        status, message = self._judge(answer, job.text)
        result = self._result(job.query_id, job.text, status, message)
        candidates = [self._candidate(c) for c in answer.candidates]
        if status == GroundingResult.STATUS_OK:
            result.best, result.alternatives = candidates[0], candidates[1:]
        else:
            result.alternatives = candidates
        result.num_keyframes = answer.n_keyframes
        result.num_proposals = len(snapshot.proposals)
        result.model_time_ms = float(answer.prepare_ms + answer.model_ms)
        return result, snapshot

    def _judge(self, answer: GroundingAnswer, text: str) -> tuple[int, str]:
        """OK, or NOT_FOUND when "no target" wins or the best score misses the threshold (W2R2.md: no-target score);
        ERROR when a score is not finite (NaN compares false with every threshold: it would pass as OK)."""
        text = loggable(text)
        scores = [c.score for c in answer.candidates] + [answer.no_target_score]
        if not all(math.isfinite(float(score)) for score in scores):
            return (GroundingResult.STATUS_ERROR,
                    "the model produced a non-finite score: an input (keyframe depth, pose, intrinsics or proposal box) "
                    "or the checkpoint's weights are not finite; no answer is given")
        if not answer.candidates:
            return GroundingResult.STATUS_NOT_FOUND, f"nothing in the scene matches '{text}'"
        best = answer.candidates[0]
        if answer.best is None:
            return (GroundingResult.STATUS_NOT_FOUND,
                    f"'{text}' does not seem to be in the scene (no-target {answer.no_target_score:.2f} "
                    f"beats the best object, {best.label} {best.score:.2f})")
        if best.score < self.params.score_threshold:
            return (GroundingResult.STATUS_NOT_FOUND,
                    f"no object matches '{text}' well enough (best: {best.label} {best.score:.2f}, "
                    f"threshold {self.params.score_threshold:.2f})")
        return GroundingResult.STATUS_OK, f"found {best.label} (score {best.score:.2f})"

    @staticmethod
    def _candidate(ranked: RankedCandidate) -> GroundingCandidate:
        candidate = GroundingCandidate(proposal_id=int(ranked.proposal_id), label=str(ranked.label), score=float(ranked.score))
        candidate.pose = box_pose(ranked.box)
        candidate.size.x, candidate.size.y, candidate.size.z = (float(v) for v in ranked.box.size)
        return candidate

    # --- results out -------------------------------------------------------------------------

    def _result(self, query_id: str, text: str, status: int, message: str) -> GroundingResult:
        """A result with an excerpt of the query (at most ``max_query_length`` characters: a refused 10 MB query
        is not echoed back whole)."""
        header = make_header(self.get_clock().now().to_msg(), self.params.map_frame)
        limit = self.params.max_query_length
        return GroundingResult(header=header, query_id=excerpt(query_id, limit), text=excerpt(text, limit),
                               status=status, message=message)

    def _frame_problem(self, target_frame: str) -> str | None:
        """Why answers cannot be given in ``target_frame`` now (tf's reason), or None when they can."""
        if not target_frame or target_frame == self.params.map_frame:
            return None
        try:
            self.tf_buffer.lookup(target_frame, self.params.map_frame)
        except TransformError as error:
            return str(error)
        return None

    def _in_frame(self, result: GroundingResult, target_frame: str) -> GroundingResult:
        """``result`` in ``target_frame`` (latest transform); ERROR with tf's reason if that fails now."""
        if not target_frame or target_frame == self.params.map_frame:
            return result
        try:
            return result_in_frame(result, target_frame, self.tf_buffer.lookup(target_frame, self.params.map_frame))
        except TransformError as error:
            return self._result(result.query_id, result.text, GroundingResult.STATUS_ERROR,
                                f"the answer cannot be given in target_frame '{target_frame}': {error}")

    def _publish(self, result: GroundingResult, snapshot: SceneSnapshot | None = None,
                 target_frame: str = "") -> GroundingResult:
        """For answers the model produced, markers that replace the previous answer's and the debug image (in
        map_frame); then the result and its detections in ``target_frame``, which are returned."""
        if snapshot is not None and result.status in (GroundingResult.STATUS_OK, GroundingResult.STATUS_NOT_FOUND):
            try:
                self._markers_pub.publish(result_markers(result, self.params.map_frame, result.header.stamp))
                self._image_pub.publish(debug_image(snapshot.keyframes[-1], result))
            except Exception as error:  # drawing must never cost the answer
                self.guard.report("markers and debug image", error)
        result = self._in_frame(result, target_frame)
        self._result_pub.publish(result)
        self._detections_pub.publish(result_to_detections(result))
        self._answers[STATUS_NAMES[result.status]] += 1
        line = f"[{loggable(result.query_id)}] '{loggable(result.text)}': {STATUS_NAMES[result.status]}: {result.message}"
        # Two call sites: rclpy refuses a different severity from the same line.
        if result.status == GroundingResult.STATUS_OK:
            self.get_logger().info(line)
        else:
            self.get_logger().warning(line)
        return result

    # --- /diagnostics ------------------------------------------------------------------------

    def diagnostic_statuses(self) -> list[DiagnosticStatus]:
        """Model state, lifecycle state, queue, answers per status and the last query's latency."""
        state, snapshot = self.lifecycle_state, self.memory.snapshot(include_cloud=False)
        latency = "none yet" if self.last_latency_ms is None else f"{self.last_latency_ms:.1f}"
        values = {
            "lifecycle state": state,
            "model": self.model_source if self.grounder is not None else f"not loaded: {self.model_problem}",
            "queries waiting": self._queue.qsize(),
            "last query latency (ms)": latency,
            "last model time (ms)": "none yet" if self._last_model_ms is None else f"{self._last_model_ms:.1f}",
            "scene": "topics (own process)" if self.remote else "in-process",
            "keyframes": len(snapshot.keyframes),
            "proposals": len(snapshot.proposals),
            **{f"answers {name}": count for name, count in sorted(self._answers.items())},
        }
        if state not in ("active", "inactive"):
            level, message = DiagnosticStatus.WARN, f"{state}: not answering queries"
        elif self.grounder is None:
            level, message = DiagnosticStatus.ERROR, f"model not loaded: {self.model_problem}"
        elif state != "active":
            level, message = DiagnosticStatus.WARN, "inactive: queries are answered BUSY until activated"
        else:
            level, message = DiagnosticStatus.OK, f"model loaded; last query {latency} ms"
        return [status(self, "grounding", level, message, values)]
    # --- shutdown ----------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """From now on new queries are answered BUSY ("shutting down"); the queued ones are still answered.

        The quiet spell that ends the drain counts from now at the earliest: a burst sent just before the
        signal may not have reached this node yet, and the last query before it may be long past."""
        self._closing = True
        self._last_query = time.monotonic()

    def drained(self, quiet_s: float) -> bool:
        """Whether every queued query is answered and none has arrived for ``quiet_s`` (those still in
        transit when shutdown began have then been taken and answered)."""
        return self._queue.unfinished_tasks == 0 and time.monotonic() - self._last_query >= quiet_s

    def drain(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> bool:
        """Graceful stop (the executor still spinning): new queries get BUSY "shutting down", the queued ones
        are answered, and queries still in DDS's queues when this began are taken until none has arrived for
        ``quiet_s``; then the results are delivered (acknowledged). False if ``timeout_s`` ran out."""
        self.begin_shutdown()
        deadline = time.monotonic() + timeout_s
        while not self.drained(quiet_s):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return self.lifecycle_state == "unconfigured" or self.wait_results_delivered(max(0.1, deadline - time.monotonic()))

    def wait_results_delivered(self, timeout_s: float) -> bool:
        """Wait until every reader has acknowledged the results published so far (reliable QoS)."""
        return bool(self._result_pub.wait_for_all_acked(Duration(seconds=timeout_s)))

    def _stop_worker(self) -> None:
        """Stop the worker after the query it is answering; queries still waiting get BUSY (shutting down)."""
        if self._worker is None:
            return
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._deliver(job, self._result(job.query_id, job.text, GroundingResult.STATUS_BUSY,
                                                "busy: the node is shutting down"))
                self._queue.task_done()
        self._queue.put(None)
        self._worker.join(timeout=30.0)
        self._worker = None

    def destroy_node(self) -> None:
        self._stop_worker()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point (``grounding_node``): alone, it reads the scene memory node's keyframe and proposal topics.
    SIGINT/SIGTERM: every query received is answered before it exits (:meth:`GroundingNode.drain`)."""
    stop = stop_on_signals()
    runtime = NodeRuntime(args=args)
    try:
        node = runtime.add(GroundingNode(context=runtime.context))
    except (ValueError, ParameterException, LifecycleError) as error:
        runtime.shutdown()
        raise SystemExit(f"grounding_node: {error}") from None
    try:
        runtime.start()
        wait_for(stop, runtime)
        node.drain()
    finally:
        runtime.shutdown()
