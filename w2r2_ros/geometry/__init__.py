"""Frames, cameras and boxes shared by every stage.

Conventions (REP 103/105): the world frame ``map`` is x forward, y left, z up;
camera poses are 4x4 camera-to-map transforms of the camera *optical* frame
(z forward, x right, y down). Depth is float32 metres, 0 or NaN means invalid.
"""
