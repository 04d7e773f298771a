"""Scene memory core (no rclpy): keyframes, timestamp sync, voxel fusion, object proposals."""
from w2r2_ros.scene.keyframes import Keyframe, KeyframeBuffer, KeyframePolicy
from w2r2_ros.scene.memory import (
    FrameOutcome,
    IngestStatus,
    MemoryStats,
    SceneMemory,
    SceneMemoryConfig,
    SceneSnapshot,
)
from w2r2_ros.scene.proposals import Proposal, ProposalConfig, propose_objects
from w2r2_ros.scene.sync import DropReason, SyncedFrame, SyncOutcome, TimestampSync
from w2r2_ros.scene.voxel_map import VoxelMap

__all__ = [
    "DropReason",
    "FrameOutcome",
    "IngestStatus",
    "Keyframe",
    "KeyframeBuffer",
    "KeyframePolicy",
    "MemoryStats",
    "Proposal",
    "ProposalConfig",
    "SceneMemory",
    "SceneMemoryConfig",
    "SceneSnapshot",
    "SyncOutcome",
    "SyncedFrame",
    "TimestampSync",
    "VoxelMap",
    "propose_objects",
]
