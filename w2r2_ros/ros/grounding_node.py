"""grounding_node: answers "where is <text>?" with one GroundingResult per query, markers and a debug image.

Queries arrive as ``w2r2_ros/GroundingQuery`` on ``/w2r2/query`` or as
``std_msgs/String`` on ``/w2r2/query_text``. Every query gets exactly one
``GroundingResult`` with its ``query_id`` on ``/w2r2/result`` (an id such as
``text-3`` is assigned when empty): OK with the box, or a status and a message a
person understands. It is never silent.

Threading: the subscription callbacks only validate and enqueue (a bounded
queue; full -> STATUS_BUSY), and one worker thread runs the model on a
``SceneMemory.snapshot(include_cloud=False)`` (keyframes and proposals; the
fused cloud is not copied). So a query never blocks the executor that feeds the
scene memory node its sensor streams, and a burst is queued up to
``queue_size`` and then refused, each query answered.

State sharing: the node reads the ``SceneMemory`` it is given, i.e. the one the
scene memory node fills when both run in one process (``w2r2-bringup``, the
launch file, the demo). Keyframes are not published on any topic, so a
grounding node in a process of its own has nothing to read: that case is not
implemented (docs/NODES.md).
"""
from __future__ import annotations

import itertools
import queue
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from w2r2_ros.model.grounder import GroundingAnswer, Grounder
from w2r2_ros.model.grounder import GroundingCandidate as RankedCandidate
from w2r2_ros.ros.conversions import make_header
from w2r2_ros.ros.interfaces import GroundingCandidate, GroundingQuery, GroundingResult
from w2r2_ros.ros.markers import debug_image, result_markers
from w2r2_ros.ros.params import DEFAULT_CHECKPOINT, resolve_package_path
from w2r2_ros.scene.memory import SceneSnapshot

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
}


class SnapshotSource(Protocol):
    """Where the node reads the scene: ``SceneMemory`` (shared with the scene memory node)."""

    def snapshot(self, include_cloud: bool = True) -> SceneSnapshot: ...


@dataclass(frozen=True)
class GroundingNodeParams:
    """The node's ROS parameters and their defaults (the same values as config/w2r2.yaml and the launch file).

    ``checkpoint``: a model directory (``save_checkpoint`` layout) or
    ``package://w2r2_ros/...``; empty or unloadable -> every query is answered
    MODEL_NOT_LOADED. ``score_threshold``: the answer's softmax score (over the
    proposals and "no target") must reach it, else NOT_FOUND. ``max_frames``:
    the keyframes the model reads (spread evenly over the buffer). ``queue_size``: queries waiting for
    the model beyond the one it is answering; more are refused with BUSY.
    """

    checkpoint: str = DEFAULT_CHECKPOINT
    device: str = "cpu"
    top_k: int = 5
    score_threshold: float = 0.2
    max_frames: int = 32
    max_query_length: int = 200
    queue_size: int = 8
    map_frame: str = "map"
    query_topic: str = "/w2r2/query"
    query_text_topic: str = "/w2r2/query_text"
    result_topic: str = "/w2r2/result"
    markers_topic: str = "/w2r2/markers"
    debug_image_topic: str = "/w2r2/debug_image"


def _shortened(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Job:
    query_id: str
    text: str


_EVERY_MESSAGE = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
_LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)


class GroundingNode(Node):
    """Grounds queries on the shared scene memory with the W2R2 model (see the module docstring)."""

    def __init__(self, memory: SnapshotSource, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        for field in fields(GroundingNodeParams):
            self.declare_parameter(field.name, field.default)
        self.params = GroundingNodeParams(
            **{f.name: self.get_parameter(f.name).value for f in fields(GroundingNodeParams)}
        )
        self._check_params()
        self.memory = memory
        self.grounder, self.model_problem = self._load_model()
        self._ids = itertools.count(1)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=self.params.queue_size)
        # Queries and results are KEEP_ALL: a keep-last history would silently drop the oldest queries of
        # a burst (or results a slow reader has not taken yet), and every query must be answered.
        self._result_pub = self.create_publisher(GroundingResult, self.params.result_topic, _EVERY_MESSAGE)
        self._markers_pub = self.create_publisher(MarkerArray, self.params.markers_topic, _LATEST)
        self._image_pub = self.create_publisher(Image, self.params.debug_image_topic, _LATEST)
        self.create_subscription(GroundingQuery, self.params.query_topic, self._on_query, _EVERY_MESSAGE)
        self.create_subscription(String, self.params.query_text_topic, self._on_query_text, _EVERY_MESSAGE)
        self._worker = threading.Thread(target=self._work, name="grounding-worker", daemon=True)
        self._worker.start()

    # --- set-up ------------------------------------------------------------------------------

    def _check_params(self) -> None:
        p = self.params
        problems = [
            f"{name} must be >= 1, got {getattr(p, name)}"
            for name in ("top_k", "max_frames", "max_query_length", "queue_size")
            if getattr(p, name) < 1
        ]
        if not 0.0 <= p.score_threshold <= 1.0:
            problems.append(f"score_threshold must be in [0, 1], got {p.score_threshold}")
        if problems:
            raise ValueError(f"{NODE_NAME} parameters: {'; '.join(problems)}")

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
            grounder = Grounder.from_checkpoint(path, self.params.device)
        except Exception as error:  # any load failure is reported the same way: the node keeps answering
            problem = f"cannot load checkpoint {path} on {self.params.device}: {error}"
            self.get_logger().error(f"model not loaded: {problem}; every query will be answered MODEL_NOT_LOADED")
            return None, problem
        self.get_logger().info(f"model loaded from {path} on {self.params.device}")
        return grounder, ""

    # --- queries in --------------------------------------------------------------------------

    def _on_query(self, msg: GroundingQuery) -> None:
        query_id = msg.query_id or f"query-{next(self._ids)}"
        if msg.target_frame and msg.target_frame != self.params.map_frame:
            self._refuse(query_id, msg.text, GroundingResult.STATUS_INVALID_QUERY,
                         f"target_frame '{msg.target_frame}' is not supported: answers are in '{self.params.map_frame}'")
            return
        self._accept(query_id, msg.text)

    def _on_query_text(self, msg: String) -> None:
        self._accept(f"text-{next(self._ids)}", msg.data)

    def _accept(self, query_id: str, text: str) -> None:
        """Validate and enqueue; everything that can be refused without the model is refused here."""
        stripped = text.strip()
        if not stripped:
            self._refuse(query_id, text, GroundingResult.STATUS_INVALID_QUERY, "the query text is empty")
        elif len(stripped) > self.params.max_query_length:
            self._refuse(query_id, text, GroundingResult.STATUS_INVALID_QUERY,
                         f"the query is {len(stripped)} characters long; the limit is {self.params.max_query_length}")
        elif self.grounder is None:
            self._refuse(query_id, text, GroundingResult.STATUS_MODEL_NOT_LOADED, f"model not loaded: {self.model_problem}")
        else:
            try:
                self._queue.put_nowait(_Job(query_id, stripped))
            except queue.Full:
                self._refuse(query_id, text, GroundingResult.STATUS_BUSY,
                             f"busy: {self.params.queue_size} queries are already waiting; try again shortly")

    def _refuse(self, query_id: str, text: str, status: int, message: str) -> None:
        self._publish(self._result(query_id, text, status, message))

    # --- the model (worker thread) -----------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                result, snapshot = self._answer(job)
            except Exception as error:  # the query must still be answered; the node keeps running
                self.get_logger().error(f"query {job.query_id} ('{job.text}') failed: {error!r}")
                result, snapshot = self._result(job.query_id, job.text, GroundingResult.STATUS_ERROR,
                                                f"internal error: {error}"), None
            self._publish(result, snapshot)

    def _answer(self, job: _Job) -> tuple[GroundingResult, SceneSnapshot | None]:
        snapshot = self.memory.snapshot(include_cloud=False)  # the model reads keyframes and proposals only
        if not snapshot.keyframes:
            return self._result(job.query_id, job.text, GroundingResult.STATUS_NO_FRAMES,
                                "no keyframes received yet: is the camera streaming RGB, depth and pose?"), None
        if not snapshot.proposals:
            return self._result(job.query_id, job.text, GroundingResult.STATUS_NO_PROPOSALS,
                                "no object proposals yet: the scene memory has found no objects so far"), None
        assert self.grounder is not None
        answer = self.grounder.ground(snapshot.keyframes, snapshot.proposals, job.text,
                                      top_k=self.params.top_k, max_frames=self.params.max_frames)
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
        """OK, or NOT_FOUND when "no target" wins or the best score misses the threshold (W2R2.md: no-target score)."""
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
        center, size = ranked.box.center, ranked.box.size
        candidate.pose.position.x, candidate.pose.position.y, candidate.pose.position.z = (float(v) for v in center)
        candidate.pose.orientation.w = 1.0
        candidate.size.x, candidate.size.y, candidate.size.z = (float(v) for v in size)
        return candidate

    # --- results out -------------------------------------------------------------------------

    def _result(self, query_id: str, text: str, status: int, message: str) -> GroundingResult:
        header = make_header(self.get_clock().now().to_msg(), self.params.map_frame)
        return GroundingResult(header=header, query_id=query_id, text=text, status=status, message=message)

    def _publish(self, result: GroundingResult, snapshot: SceneSnapshot | None = None) -> None:
        """The result, and for answers the model produced, markers that replace the previous answer's and the debug image."""
        self._result_pub.publish(result)
        line = f"[{result.query_id}] '{_shortened(result.text)}': {STATUS_NAMES[result.status]}: {result.message}"
        # Two call sites: rclpy refuses a different severity from the same line.
        if result.status == GroundingResult.STATUS_OK:
            self.get_logger().info(line)
        else:
            self.get_logger().warning(line)
        if snapshot is not None and result.status in (GroundingResult.STATUS_OK, GroundingResult.STATUS_NOT_FOUND):
            self._markers_pub.publish(result_markers(result, self.params.map_frame, result.header.stamp))
            self._image_pub.publish(debug_image(snapshot.keyframes[-1], result))

    def destroy_node(self) -> None:
        """Stop the worker after the query it is answering; queries still waiting get BUSY (shutting down)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._refuse(job.query_id, job.text, GroundingResult.STATUS_BUSY, "busy: the node is shutting down")
        self._queue.put(None)
        self._worker.join(timeout=30.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """``grounding_node`` alone has no scene memory to read (keyframes are not on any topic): run ``w2r2-bringup``."""
    raise SystemExit(
        "grounding_node reads the scene memory in-process: start it with scene_memory_node via "
        "`w2r2-bringup` or `ros2 launch w2r2_ros w2r2.launch.py` (docs/NODES.md)"
    )
