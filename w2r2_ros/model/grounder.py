"""Grounder: the inference wrapper used by the grounding node, the demo and the benchmark.

It answers one query over the scene's keyframes and proposals. Work that does
not depend on the query (resizing each keyframe, sampling its world points, and
its image-encoder patch features) is cached per keyframe stamp, so repeated
queries over the same keyframe buffer pay only for the proposals, the text and
the fusion transformer. The scene's text-independent tokens (``SceneTokens``:
box-to-patch pooling, point and box encodings, video pooling) are kept for the
last (keyframes, proposals) pair too: the scene memory changes them about once
a second, while a person asks several questions about the same scene.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.geometry.viewer import viewer_from_camera_pose
from w2r2_ros.model.checkpoint import load_checkpoint
from w2r2_ros.model.grounding_model import GroundingOutput, SceneTokens, W2R2GroundingModel, centred_geometry
from w2r2_ros.model.inputs import (
    GroundingInputs, KeyframeLike, PreparedKeyframe, assemble_inputs, newest_viewer, prepare_keyframe,
)
from w2r2_ros.model.pretrained_text import PretrainedText
from w2r2_ros.model.text import QueryTokenizer


# An answer's label is the model's category when it gives it at least this probability; otherwise the word of
# the query that best matches the object (open vocabulary): "the purple bed" is not answered "sofa" on a guess.
LABEL_CONFIDENCE = 0.5
# Query words considered for a label: alphabetic, at least three letters ("a", "of" are never names; "bed",
# "cup" are) and none of the function words below, which the pretrained space can place near an object's vector.
_LABEL_WORD = re.compile(r"[^\W\d_]{3,}")
_NOT_NAMES = frozenset(
    "the and that this these those with from into onto near next its one ones which there where what who find "
    "show look for you can please then than also".split()
)


# Weight dtypes a grounder can load a checkpoint in (the grounding node's ``dtype`` parameter).
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ProposalLike(Protocol):
    """What the grounder reads of a proposal (``w2r2_ros.scene.proposals.Proposal`` satisfies it)."""

    proposal_id: int
    box: Box3D


class StampedKeyframe(KeyframeLike, Protocol):
    stamp: float


class SnapshotLike(Protocol):
    """What the grounder reads of a scene snapshot (``w2r2_ros.scene.memory.SceneSnapshot`` satisfies it)."""

    keyframes: Sequence[StampedKeyframe]
    proposals: Sequence[ProposalLike]


@dataclass(frozen=True)
class GroundingCandidate:
    """One ranked proposal: ``score`` is its softmax probability over all proposals and "no target"."""

    proposal_id: int
    box: Box3D
    score: float
    label: str
    label_score: float


@dataclass(frozen=True)
class GroundingAnswer:
    """Top-k candidates (best first), the "no target" probability, and where the time went."""

    candidates: tuple[GroundingCandidate, ...]
    no_target_score: float
    prepare_ms: float
    model_ms: float
    n_keyframes: int

    @property
    def best(self) -> GroundingCandidate | None:
        """The answer: the top candidate, or None when "no target" is more likely than every proposal."""
        if not self.candidates or self.candidates[0].score < self.no_target_score:
            return None
        return self.candidates[0]


def select_keyframes(count: int, max_frames: int) -> np.ndarray:
    """Indices of at most ``max_frames`` keyframes spread evenly over ``count`` (first and last kept): coverage of the scene."""
    if count <= max_frames:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, max_frames).round().astype(np.int64))


class Grounder:
    """Thread-safe query answering over keyframes and proposals with a trained ``W2R2GroundingModel``."""

    def __init__(
        self, model: W2R2GroundingModel, tokenizer: QueryTokenizer | PretrainedText, device: str | torch.device = "cpu", cache_size: int = 128
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.cache_size = cache_size
        self._cache: OrderedDict[float, tuple[PreparedKeyframe, torch.Tensor]] = OrderedDict()
        # The video LLM's Where encodings per keyframe (same keys and eviction as _cache), with the scene centre
        # they were computed for (ModelConfig.center_xy): reused while it is unchanged.
        self._where: dict[float, tuple[bytes, torch.Tensor]] = {}
        self._scene_key: tuple[tuple[float, ...], bytes] | None = None
        self._scene_tokens: SceneTokens | None = None
        self._lock = threading.Lock()

    @staticmethod
    def from_checkpoint(
        directory: str | Path, device: str | torch.device = "cpu", num_threads: int | None = 1, dtype: str = "float32"
    ) -> "Grounder":
        """Load a checkpoint (either model kind) with weights in ``dtype`` (``TORCH_DTYPES``: bfloat16 for the
        video LLM on a GPU); ``num_threads`` sets torch's (process-wide) intra-op threads, None leaves them alone.

        Default 1: a query is ~0.5 GFLOP, so a second thread gains little, while on a
        CPU shared with other nodes torch's threads wait on each other: measured on
        a loaded 2-core machine, 2 threads made a query 10-20x slower than 1.
        """
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if dtype not in TORCH_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(TORCH_DTYPES)}, got {dtype!r}")
        model, tokenizer = load_checkpoint(directory, device, TORCH_DTYPES[dtype])
        return Grounder(model, tokenizer, device)

    @property
    def cached_keyframes(self) -> int:
        return len(self._cache)

    def clear_cache(self) -> None:
        """Forget every cached keyframe and the cached scene tokens."""
        with self._lock:
            self._cache.clear()
            self._where.clear()
            self._scene_key, self._scene_tokens = None, None

    def ground(
        self,
        keyframes: Sequence[StampedKeyframe],
        proposals: Sequence[ProposalLike],
        text: str,
        top_k: int = 5,
        max_frames: int = 32,
        viewer: np.ndarray | None = None,
    ) -> GroundingAnswer:
        """Rank ``proposals`` for ``text`` given ``keyframes`` (oldest first; at most ``max_frames`` used, spread
        evenly), asked from ``viewer`` (3,) ``[x, y, yaw]`` (default: the newest keyframe's camera, ``newest_viewer``)."""
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            chosen = [keyframes[i] for i in select_keyframes(len(keyframes), max_frames)]
            if not proposals:
                return GroundingAnswer((), 1.0, (time.perf_counter() - start) * 1e3, 0.0, len(chosen))
            boxes = np.stack([proposal.box.as_oriented_array() for proposal in proposals])
            viewer = np.asarray(newest_viewer(keyframes) if viewer is None else viewer, dtype=np.float32)
            scene_key = (tuple(float(keyframe.stamp) for keyframe in chosen), boxes.tobytes(), viewer.tobytes())
            inputs = None
            if scene_key != self._scene_key:
                prepared = [self._prepared(keyframe) for keyframe in chosen]
                inputs = assemble_inputs([item[0] for item in prepared], boxes, self.model.config, viewer).to(self.device)
            text_ids, text_mask = self.tokenizer.encode([text], self.model.config.max_text_length)
            prepared_at = time.perf_counter()

            if inputs is not None:
                features = self._patch_features(chosen, prepared)
                cached_where = {"patch_where": self._patch_where(chosen, inputs)} if hasattr(self.model, "patch_where") else {}
                self._scene_tokens = self.model.scene_tokens(inputs, features, **cached_where)
                self._scene_key = scene_key
            output = self.model(None, text_ids.to(self.device), text_mask.to(self.device), scene=self._scene_tokens)
            probabilities = torch.softmax(output.logits[0].float(), dim=-1).cpu().numpy()
            labels = torch.softmax(output.category_logits[0].float(), dim=-1).cpu().numpy()
            done = time.perf_counter()

            order = np.argsort(-probabilities[:-1], kind="stable")[:top_k]
            named = self._labels(order, labels, output, text)
        candidates = tuple(
            GroundingCandidate(
                proposal_id=int(proposals[i].proposal_id),
                box=proposals[i].box,
                score=float(probabilities[i]),
                label=label,
                label_score=label_score,
            )
            for i, (label, label_score) in zip(order, named)
        )
        return GroundingAnswer(
            candidates=candidates,
            no_target_score=float(probabilities[-1]),
            prepare_ms=(prepared_at - start) * 1e3,
            model_ms=(done - prepared_at) * 1e3,
            n_keyframes=len(chosen),
        )

    def ground_snapshot(self, snapshot: SnapshotLike, text: str, top_k: int = 5, max_frames: int = 32) -> GroundingAnswer:
        """``ground`` over a ``SceneSnapshot``'s keyframes and proposals, asked from its newest camera pose."""
        pose = getattr(snapshot, "camera_pose", None)
        viewer = None if pose is None else viewer_from_camera_pose(pose)
        return self.ground(snapshot.keyframes, snapshot.proposals, text, top_k=top_k, max_frames=max_frames, viewer=viewer)

    def _labels(self, order: np.ndarray, probabilities: np.ndarray, output: GroundingOutput, text: str) -> list[tuple[str, float]]:
        """(label, its probability) of each proposal in ``order``: the model's category when it is sure
        (``LABEL_CONFIDENCE``), else, with an open vocabulary, the query's word that best matches the object
        among the query's words and the trained names (its probability over them), if it beats the category."""
        categories = self.model.config.categories
        named = [(categories[int(probabilities[i].argmax())], float(probabilities[i].max())) for i in order]
        unsure = [row for row, i in enumerate(order) if probabilities[i].max() < LABEL_CONFIDENCE]
        said = dict.fromkeys(w.lower() for w in _LABEL_WORD.findall(text))
        words = [w for w in said if w not in categories and w not in _NOT_NAMES][:16]
        if not unsure or output.object_category is None or not words:
            return named
        embeddings = self.tokenizer.name_embeddings([*categories, *words]).to(self.device)
        objects = output.object_category[0, [int(order[row]) for row in unsure]]
        scores = torch.softmax(self.model.score_names(objects, embeddings).float(), dim=-1).cpu().numpy()
        for row, score in zip(unsure, scores):
            best_word = int(score[len(categories) :].argmax()) + len(categories)
            if score[best_word] > score[: len(categories)].max():
                named[row] = (words[best_word - len(categories)], float(score[best_word]))
        return named

    def _prepared(self, keyframe: StampedKeyframe) -> tuple[PreparedKeyframe, torch.Tensor | None]:
        """Cached preprocessing of a keyframe; patch features are None until ``_patch_features`` computes them."""
        key = float(keyframe.stamp)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return prepare_keyframe(keyframe, self.model.config), None

    def _patch_features(
        self, keyframes: Sequence[StampedKeyframe], prepared: list[tuple[PreparedKeyframe, torch.Tensor | None]]
    ) -> torch.Tensor:
        """(1, K, P, D) image-encoder features, running the encoder once over the keyframes not yet cached."""
        missing = [i for i, (_, features) in enumerate(prepared) if features is None]
        if missing:
            frames = torch.from_numpy(np.stack([prepared[i][0].image for i in missing])).to(self.device)
            fresh = self.model.encode_frames(frames)
            for row, i in enumerate(missing):
                prepared[i] = (prepared[i][0], fresh[row])
                self._cache[float(keyframes[i].stamp)] = prepared[i]
            while len(self._cache) > self.cache_size:
                evicted, _ = self._cache.popitem(last=False)
                self._where.pop(evicted, None)
        if not prepared:
            cfg = self.model.config
            return torch.zeros((1, 0, cfg.patches_per_frame, cfg.hidden_size), device=self.device)
        return torch.stack([features for _, features in prepared]).unsqueeze(0)

    def _patch_where(self, keyframes: Sequence[StampedKeyframe], inputs: GroundingInputs) -> torch.Tensor:
        """(1, K, P, D) the video LLM's Where encodings of ``inputs``' visual tokens, encoding only the keyframes
        without one cached for this scene centre and viewer. A new viewer (the camera moved: ``viewer_frame``) or,
        with ``center_xy``, a new keyframe re-encodes every keyframe; new proposals alone reuse the cached ones."""
        batched = inputs.batched()
        patch_xyz, _, centre_xy = centred_geometry(batched, self.model.config)
        # The encodings depend on the frame: the centre and, in the viewer frame, the viewer.
        centre = centre_xy.cpu().numpy().tobytes() + batched.viewer.cpu().numpy().tobytes()
        stamps = [float(keyframe.stamp) for keyframe in keyframes]
        if not stamps:
            return patch_xyz.new_zeros((1, 0, self.model.config.patches_per_frame, self.model.config.hidden_size))
        where = [self._where[stamp][1] if self._where.get(stamp, (None,))[0] == centre else None for stamp in stamps]
        missing = [i for i, encoding in enumerate(where) if encoding is None]
        if missing:
            fresh = self.model.patch_where(patch_xyz[0, missing], batched.patch_valid[0, missing])
            for row, i in enumerate(missing):
                where[i] = fresh[row]
                if stamps[i] in self._cache:  # kept (and evicted) with its visual tokens
                    self._where[stamps[i]] = (centre, fresh[row])
        return torch.stack(where).unsqueeze(0)
