"""Synthetic RGB-D indoor world: scenes, rendering, trajectories, recordings."""
