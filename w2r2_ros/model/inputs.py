"""From keyframes and proposal boxes to model tensors: the bridge between scene memory, training and the model.

Training caches ``prepare_inputs`` per scene; the grounding node calls it on
live keyframes (through ``Grounder``, which caches ``prepare_keyframe`` per
keyframe stamp). Everything here is vectorised numpy; only the final arrays
become tensors.

Geometry (W2R2.md, "Where"): every patch gets the mean world coordinate of its
valid depth samples; a proposal "contains" the fraction of a patch's samples
that fall inside its (slightly enlarged) box. Those fractions are the pooling
weights that form object tokens from patch features. The colour of each depth
sample's pixel, averaged over the samples inside a box, is the box's colour in
that frame: object pixels only, where a patch feature mixes in the background.

The tensors stay in the map frame (the dataset's ground-truth boxes and the scores' IoU are map-frame);
``viewer`` records where the query is asked from (``w2r2_ros.geometry.viewer``) and the model turns
every xy it reads into that frame (``grounding_model.viewer_geometry``), so "left" means the viewer's left.
A proposal is turned in yaw (its minimum-area footprint rectangle); ``boxes`` are its axis-aligned bounds (patch
pooling, IoU), ``oriented_boxes`` the box itself, whose own sizes the model reads: the bounds of a box grow as
the map turns under it, the box's own sizes do not.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, fields, replace
from typing import Protocol, Sequence

import cv2
import numpy as np
import torch

from w2r2_ros.geometry.boxes import aligned_bounds, as_oriented
from w2r2_ros.geometry.camera import Intrinsics, depth_to_world_map
from w2r2_ros.geometry.viewer import VIEWER_SIZE, viewer_from_camera_pose
from w2r2_ros.model.config import ModelConfig


class KeyframeLike(Protocol):
    """What the model reads of a keyframe (``w2r2_ros.scene.keyframes.Keyframe`` satisfies it)."""

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    cam_to_world: np.ndarray


@dataclass(frozen=True)
class PreparedKeyframe:
    """The proposal-independent part of one keyframe's inputs (cacheable per keyframe).

    ``image`` (3, h, w) float32 in [0, 1]; ``sample_xyz`` (P, S, 3) float32 world
    points of the S depth samples of each of the P patches, NaN where depth is
    invalid; ``patch_xyz`` (P, 3) their mean (0 where none is valid),
    ``patch_valid`` (P,); ``patch_lo``/``patch_hi`` (P, 3) their bounds (NaN where none is valid);
    ``sample_rgb`` (P, S, 3) float32 in [0, 1], the colour of each depth sample's pixel.
    """

    image: np.ndarray
    sample_xyz: np.ndarray
    sample_rgb: np.ndarray
    patch_xyz: np.ndarray
    patch_valid: np.ndarray
    patch_lo: np.ndarray
    patch_hi: np.ndarray


@dataclass
class GroundingInputs:
    """Model inputs of one scene, or of a batch of scenes (then every field has a leading B).

    frames (K, 3, h, w) float in [0, 1]; frame_mask (K,) bool;
    patch_xyz (K, P, 3) metres (0 where invalid); patch_valid (K, P) bool;
    boxes (N, 6) ``[cx, cy, cz, sx, sy, sz]`` axis-aligned bounds; oriented_boxes (N, 7) ``[cx, cy, cz, sx, sy, sz,
    yaw]`` the same proposals turned in yaw, sizes along their own axes (yaw 0: the bounds themselves);
    object_mask (N,) bool;
    box_patch_weights (N, K, P): fraction of each patch's depth samples inside each box;
    box_colours (N, K, 3): mean RGB in [0, 1] of the pixels of the depth samples inside each box (not
    grown) in each frame (0 where the frame has none; ``box_patch_weights`` summed over patches weighs the frames);
    viewer (3,) ``[x, y, yaw]`` in the map frame: where the query is asked from (``viewer_from_camera_pose``).
    """

    frames: torch.Tensor
    frame_mask: torch.Tensor
    patch_xyz: torch.Tensor
    patch_valid: torch.Tensor
    boxes: torch.Tensor
    oriented_boxes: torch.Tensor
    object_mask: torch.Tensor
    box_patch_weights: torch.Tensor
    box_colours: torch.Tensor
    viewer: torch.Tensor

    @property
    def is_batched(self) -> bool:
        return self.frames.dim() == 5

    def batched(self) -> "GroundingInputs":
        """A batch of one if this is a single scene, else itself."""
        if self.is_batched:
            return self
        return GroundingInputs(**{f.name: getattr(self, f.name).unsqueeze(0) for f in fields(self)})

    def with_boxes(self, proposal_boxes: torch.Tensor) -> "GroundingInputs":
        """The same inputs with other proposal boxes, (..., N, 7) turned in yaw or (..., N, 6) axis-aligned,
        ``boxes`` and ``oriented_boxes`` kept consistent (pooling weights and colours unchanged)."""
        leading = tuple(proposal_boxes.shape[:-1])
        oriented = as_oriented(proposal_boxes.reshape(-1, proposal_boxes.shape[-1]).double().numpy())
        return replace(
            self,
            boxes=torch.from_numpy(aligned_bounds(oriented)).reshape(*leading, 6).to(self.boxes.dtype),
            oriented_boxes=torch.from_numpy(oriented).reshape(*leading, 7).to(self.boxes.dtype),
        )

    def to(self, device: torch.device | str) -> "GroundingInputs":
        return GroundingInputs(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _nearest_indices(source: int, target: int) -> np.ndarray:
    """Source pixel nearest to the centre of each of ``target`` pixels spanning the same extent."""
    return np.minimum(((np.arange(target) + 0.5) * source / target).astype(np.int64), source - 1)


def prepare_keyframe(keyframe: KeyframeLike, config: ModelConfig) -> PreparedKeyframe:
    """Resize the RGB for the image encoder and sample world points on a regular grid in every patch.

    Depth is subsampled by nearest pixel, never averaged: averaging depth across an
    object's silhouette would invent points floating between object and background.
    """
    intrinsics = keyframe.intrinsics
    depth = np.asarray(keyframe.depth)
    rgb = np.asarray(keyframe.rgb)
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"keyframe depth: shape {depth.shape} does not match intrinsics {intrinsics.height}x{intrinsics.width}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"keyframe rgb: expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    image = cv2.resize(rgb, (config.image_width, config.image_height), interpolation=cv2.INTER_AREA)
    image = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) * np.float32(1.0 / 255.0)

    s = config.depth_samples_per_patch
    gh, gw = config.grid_height, config.grid_width
    rows = _nearest_indices(depth.shape[0], gh * s)
    cols = _nearest_indices(depth.shape[1], gw * s)
    small = depth[rows[:, None], cols[None, :]]
    world = depth_to_world_map(small, intrinsics.scaled(gw * s, gh * s), np.asarray(keyframe.cam_to_world))
    samples = _per_patch(world, gh, gw, s)
    # Each sample's colour is its own pixel's: an average over the cell around it would mix an object's
    # border pixels with the background, as a patch feature does.
    # The image may have another resolution than the depth (it is resized for the encoder likewise).
    rgb_rows, rgb_cols = _nearest_indices(rgb.shape[0], gh * s), _nearest_indices(rgb.shape[1], gw * s)
    colours = rgb[rgb_rows[:, None], rgb_cols[None, :]].astype(np.float32) * np.float32(1.0 / 255.0)
    valid = np.isfinite(samples[..., 0])
    count = valid.sum(axis=-1)
    patch_xyz = np.where(valid[..., None], samples, 0.0).sum(axis=1) / np.maximum(count, 1)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN patches give NaN bounds, which overlap nothing
        patch_lo, patch_hi = np.nanmin(samples, axis=1), np.nanmax(samples, axis=1)
    return PreparedKeyframe(
        image=image,
        sample_xyz=samples.astype(np.float32, copy=False),
        sample_rgb=_per_patch(colours, gh, gw, s),
        patch_xyz=patch_xyz.astype(np.float32),
        patch_valid=count > 0,
        patch_lo=patch_lo.astype(np.float32, copy=False),
        patch_hi=patch_hi.astype(np.float32, copy=False),
    )


def _per_patch(grid: np.ndarray, gh: int, gw: int, s: int) -> np.ndarray:
    """(gh * s, gw * s, C) sample grid -> (P, S, C): each patch's s x s samples, patches in row-major order."""
    c = grid.shape[-1]
    return np.ascontiguousarray(grid.reshape(gh, s, gw, s, c).transpose(0, 2, 1, 3, 4).reshape(gh * gw, s * s, c))


def assemble_inputs(
    prepared: Sequence[PreparedKeyframe], proposal_boxes: np.ndarray, config: ModelConfig, viewer: np.ndarray
) -> GroundingInputs:
    """Combine prepared keyframes with the proposals of one query, (N, 7) turned in yaw or (N, 6) axis-aligned
    (``geometry.boxes``), and the ``viewer`` (3,) into ``GroundingInputs``."""
    viewer = np.asarray(viewer, dtype=np.float32).reshape(-1)
    if viewer.shape != (VIEWER_SIZE,) or not np.all(np.isfinite(viewer)):
        raise ValueError(f"viewer: expected 3 finite values [x, y, yaw], got {viewer.tolist()}")
    oriented = as_oriented(proposal_boxes)
    if not np.all(np.isfinite(oriented)):
        raise ValueError("proposal_boxes: contains NaN or infinite values")
    if np.any(oriented[:, 3:6] < 0):
        raise ValueError("proposal_boxes: negative box size")
    boxes = aligned_bounds(oriented).astype(np.float32)
    k, p = len(prepared), config.patches_per_frame

    def stacked(name: str, empty_shape: tuple[int, ...], dtype: type) -> np.ndarray:
        if not k:
            return np.zeros((0, *empty_shape), dtype)
        return np.stack([getattr(item, name) for item in prepared])

    images = stacked("image", (3, config.image_height, config.image_width), np.float32)
    patch_xyz = stacked("patch_xyz", (p, 3), np.float32)
    patch_valid = stacked("patch_valid", (p,), bool)
    patch_lo = stacked("patch_lo", (p, 3), np.float32)
    patch_hi = stacked("patch_hi", (p, 3), np.float32)
    weights, colours = _box_patch_fractions(prepared, patch_lo, patch_hi, boxes, config.box_margin_m)
    return GroundingInputs(
        frames=torch.from_numpy(images),
        frame_mask=torch.ones(k, dtype=torch.bool),
        patch_xyz=torch.from_numpy(patch_xyz),
        patch_valid=torch.from_numpy(patch_valid),
        boxes=torch.from_numpy(boxes),
        oriented_boxes=torch.from_numpy(oriented.astype(np.float32)),
        object_mask=torch.ones(boxes.shape[0], dtype=torch.bool),
        box_patch_weights=torch.from_numpy(weights),
        box_colours=torch.from_numpy(colours),
        viewer=torch.from_numpy(viewer),
    )


def _box_patch_fractions(
    prepared: Sequence[PreparedKeyframe], patch_lo: np.ndarray, patch_hi: np.ndarray, boxes: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, P) fraction of each patch's S depth samples inside each box grown by ``margin``, and (N, K, 3)
    the mean colour (``sample_rgb``) of the samples inside each box as it is (not grown) per frame (0 where
    it has none).

    Two stages keep this at a few ms for 32 frames x 64 boxes: a cheap test of
    every patch's sample bounds (K, P, 3) against every box, then the per-sample
    test only for the (patch, box) pairs whose bounds overlap (a few hundred in a
    real room). NaN (invalid) samples, and all-NaN patch bounds, are never inside.
    """
    k, p, _ = patch_lo.shape
    n = boxes.shape[0]
    half = boxes[:, 3:] / 2 + margin
    lo, hi = boxes[:, :3] - half, boxes[:, :3] + half
    flat_lo, flat_hi = patch_lo.reshape(k * p, 3), patch_hi.reshape(k * p, 3)
    overlap = np.ones((k * p, n), dtype=bool)
    for axis in range(3):
        overlap &= flat_lo[:, axis, None] <= hi[None, :, axis]
        overlap &= flat_hi[:, axis, None] >= lo[None, :, axis]
    fraction = np.zeros((n, k * p), dtype=np.float32)
    colour_sum = np.zeros((n * k, 3), dtype=np.float64)
    count = np.zeros(n * k, dtype=np.float64)
    flat_index, box_index = np.nonzero(overlap)
    if flat_index.size:
        frame_index, patch_index = np.divmod(flat_index, p)
        # Pairs come out sorted by frame: gather each frame's samples without stacking all K frames.
        splits = np.searchsorted(frame_index, np.arange(1, k))
        per_frame = [(f, idx) for f, idx in enumerate(np.split(patch_index, splits)) if idx.size]
        pts = np.concatenate([prepared[f].sample_xyz[idx] for f, idx in per_frame])
        rgb = np.concatenate([prepared[f].sample_rgb[idx] for f, idx in per_frame])
        box_lo, box_hi = lo[box_index, None, :], hi[box_index, None, :]
        inside = ((pts >= box_lo) & (pts <= box_hi)).all(axis=-1)
        fraction[box_index, flat_index] = inside.mean(axis=1, dtype=np.float32)
        # Colours from the box itself, not grown: the margin would add a ring of wall and floor.
        within = ((pts >= box_lo + margin) & (pts <= box_hi - margin)).all(axis=-1)
        cell = box_index * k + frame_index
        sums = (rgb * within[..., None]).sum(axis=1)
        for channel in range(3):
            colour_sum[:, channel] = np.bincount(cell, weights=sums[:, channel], minlength=n * k)
        count = np.bincount(cell, weights=within.sum(axis=1), minlength=n * k)
    colours = colour_sum / np.maximum(count, 1.0)[:, None]
    return fraction.reshape(n, k, p), colours.reshape(n, k, 3).astype(np.float32)


def newest_viewer(keyframes: Sequence[KeyframeLike]) -> np.ndarray:
    """The viewer of the newest (last) keyframe's camera pose: the default query-time view; the origin
    looking along +x when there is no keyframe."""
    if not keyframes:
        return np.zeros(VIEWER_SIZE)
    return viewer_from_camera_pose(np.asarray(keyframes[-1].cam_to_world))


def prepare_inputs(
    keyframes: Sequence[KeyframeLike], proposal_boxes: np.ndarray, config: ModelConfig, viewer: np.ndarray | None = None
) -> GroundingInputs:
    """Model inputs of one scene: K keyframes (oldest first) and N proposal boxes (N, 7) or (N, 6) in the map frame, seen
    from ``viewer`` (3,) ``[x, y, yaw]`` (default: ``newest_viewer(keyframes)``)."""
    viewer = newest_viewer(keyframes) if viewer is None else viewer
    return assemble_inputs([prepare_keyframe(kf, config) for kf in keyframes], proposal_boxes, config, viewer)


def _pad(tensor: torch.Tensor, sizes: dict[int, int]) -> torch.Tensor:
    """Zero-pad ``tensor`` to ``sizes[dim]`` along each given dim."""
    shape = list(tensor.shape)
    for dim, size in sizes.items():
        shape[dim] = size
    out = tensor.new_zeros(shape)
    out[tuple(slice(0, n) for n in tensor.shape)] = tensor
    return out


def collate_inputs(items: Sequence[GroundingInputs]) -> GroundingInputs:
    """Batch single-scene inputs, zero-padding frames (K) and proposals (N); the masks mark what is real."""
    if not items:
        raise ValueError("collate_inputs: no inputs to collate")
    if any(item.is_batched for item in items):
        raise ValueError("collate_inputs: expects single-scene inputs, got an already batched one")
    k = max(item.frames.shape[0] for item in items)
    n = max(item.boxes.shape[0] for item in items)
    padded = [
        replace(
            item,
            frames=_pad(item.frames, {0: k}),
            frame_mask=_pad(item.frame_mask, {0: k}),
            patch_xyz=_pad(item.patch_xyz, {0: k}),
            patch_valid=_pad(item.patch_valid, {0: k}),
            boxes=_pad(item.boxes, {0: n}),
            oriented_boxes=_pad(item.oriented_boxes, {0: n}),
            object_mask=_pad(item.object_mask, {0: n}),
            box_patch_weights=_pad(item.box_patch_weights, {0: n, 1: k}),
            box_colours=_pad(item.box_colours, {0: n, 1: k}),
        )
        for item in items
    ]
    return GroundingInputs(**{f.name: torch.stack([getattr(item, f.name) for item in padded]) for f in fields(GroundingInputs)})
