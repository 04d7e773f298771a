"""Synthetic RGB-D indoor world: scenes, rendering, trajectories, recordings.

``bag_writer`` (rosbag2 files) is imported on its own: it needs ``rosbags``.
"""
from w2r2_ros.sim.recording import Recording, load_recording, record_scene, save_recording
from w2r2_ros.sim.render import RenderConfig, RenderedFrame, render_rgbd
from w2r2_ros.sim.trajectory import TrajectoryConfig, orbit_trajectory
from w2r2_ros.sim.world import CATEGORIES, COLORS, ObjectSpec, SceneConfig, SceneSpec, generate_scene

__all__ = [
    "CATEGORIES",
    "COLORS",
    "ObjectSpec",
    "Recording",
    "RenderConfig",
    "RenderedFrame",
    "SceneConfig",
    "SceneSpec",
    "TrajectoryConfig",
    "generate_scene",
    "load_recording",
    "orbit_trajectory",
    "record_scene",
    "render_rgbd",
    "save_recording",
]
