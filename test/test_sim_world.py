"""The procedural rooms: counts, shapes, placement invariants and determinism."""
from collections import Counter
from itertools import combinations

import numpy as np
import pytest

from w2r2_ros.geometry.boxes import box_iou_matrix
from w2r2_ros.sim.world import CATEGORIES, COLORS, SceneSpec, generate_scene

SCENES = [generate_scene(f"scene_{i:04d}", seed=7) for i in range(40)]


def _overlap_volume(a: np.ndarray, b: np.ndarray) -> float:
    lo = np.maximum(a[:3] - a[3:] / 2, b[:3] - b[3:] / 2)
    hi = np.minimum(a[:3] + a[3:] / 2, b[:3] + b[3:] / 2)
    return float(np.prod(np.clip(hi - lo, 0, None)))


@pytest.mark.parametrize("scene", SCENES, ids=lambda s: s.scene_id)
def test_scene_is_a_furnished_room(scene: SceneSpec) -> None:
    x, y, height = scene.room_size
    assert 5.0 <= x <= 8.0 and 4.0 <= y <= 7.0 and 2.4 <= height <= 2.8
    assert 5 <= len(scene.objects) <= 20
    assert [o.object_id for o in scene.objects] == list(range(len(scene.objects)))
    room_lo, room_hi = np.array([-x / 2, -y / 2, 0.0]), np.array([x / 2, y / 2, height])
    for obj in scene.objects:
        assert obj.category in CATEGORIES
        assert COLORS[obj.color_name] == obj.rgb
        assert len(obj.parts) >= 2 and len(obj.part_tones) == len(obj.parts)
        # The ground-truth box is the tight box of the parts.
        lo = np.min([p.min_corner for p in obj.parts], axis=0)
        hi = np.max([p.max_corner for p in obj.parts], axis=0)
        np.testing.assert_allclose(obj.box.min_corner, lo, atol=1e-9)
        np.testing.assert_allclose(obj.box.max_corner, hi, atol=1e-9)
        assert np.all(lo >= room_lo - 1e-9) and np.all(hi <= room_hi + 1e-9)


@pytest.mark.parametrize("scene", SCENES, ids=lambda s: s.scene_id)
def test_objects_do_not_intersect_and_floor_objects_keep_a_gap(scene: SceneSpec) -> None:
    for a, b in combinations(scene.objects, 2):
        assert _overlap_volume(a.box.as_array(), b.box.as_array()) < 1e-9, (a.object_id, b.object_id)
        if a.support_id is None and b.support_id is None:
            gap = np.maximum(a.box.min_corner - b.box.max_corner, b.box.min_corner - a.box.max_corner)[:2].max()
            assert gap >= 0.15, (scene.scene_id, a.object_id, b.object_id, gap)


@pytest.mark.parametrize("scene", SCENES, ids=lambda s: s.scene_id)
def test_supported_objects_stand_on_their_support(scene: SceneSpec) -> None:
    for obj in scene.objects:
        if obj.support_id is None:
            assert obj.box.min_corner[2] == pytest.approx(0.0, abs=1e-9)
            assert obj.category != "monitor"
            continue
        support = scene.object_by_id(obj.support_id)
        assert support.category in ("table", "cabinet")
        assert obj.box.min_corner[2] == pytest.approx(support.box.max_corner[2], abs=1e-9)
        assert np.all(obj.box.min_corner[:2] >= support.box.min_corner[:2])
        assert np.all(obj.box.max_corner[:2] <= support.box.max_corner[:2])


def test_same_id_and_seed_give_the_same_scene_and_others_differ() -> None:
    again = generate_scene("scene_0003", seed=7)
    assert again.to_dict() == SCENES[3].to_dict()
    assert generate_scene("scene_0003", seed=8).to_dict() != again.to_dict()
    assert generate_scene("scene_0004", seed=7).to_dict() != again.to_dict()


def test_scene_round_trips_through_a_dict() -> None:
    scene = SCENES[5]
    back = SceneSpec.from_dict(scene.to_dict())
    assert back.to_dict() == scene.to_dict()
    np.testing.assert_allclose(back.boxes(), scene.boxes())


def test_many_scenes_repeat_a_category_and_stack_objects() -> None:
    """Training needs same-category distractors (2-4 instances) and 'on top of' relations."""
    repeated = [max(Counter(o.category for o in s.objects).values()) for s in SCENES]
    assert sum(2 <= r <= 4 for r in repeated) >= 0.7 * len(SCENES)
    assert max(repeated) <= 4
    stacked = sum(any(o.support_id is not None for o in s.objects) for s in SCENES)
    assert stacked >= 0.3 * len(SCENES)
    seen = {o.category for s in SCENES for o in s.objects}
    assert seen == set(CATEGORIES)
    colours = {o.color_name for s in SCENES for o in s.objects}
    assert colours == set(COLORS)


def test_categories_differ_in_size_and_instances_differ_from_each_other() -> None:
    sizes: dict[str, list[np.ndarray]] = {}
    for scene in SCENES:
        for obj in scene.objects:
            sizes.setdefault(obj.category, []).append(obj.box.size)
    mean = {c: np.mean(v, axis=0) for c, v in sizes.items()}
    assert np.prod(mean["bed"]) > np.prod(mean["table"]) > np.prod(mean["chair"]) > np.prod(mean["box"])
    sofa_length = np.mean([size[:2].max() for size in sizes["sofa"]])
    assert sofa_length > 1.4 and mean["monitor"][2] < 0.7
    for category, values in sizes.items():
        volumes = np.prod(values, axis=1)
        assert volumes.max() > 1.1 * volumes.min(), category  # "the largest chair" is meaningful
    # Different categories are different shapes, not only different sizes: compare part layouts.
    n_parts = {c: {len(o.parts) for s in SCENES for o in s.objects if o.category == c} for c in CATEGORIES}
    assert n_parts["table"] == {5} and n_parts["chair"] == {6} and n_parts["lamp"] == {3}


def test_box_iou_of_distinct_objects_is_zero() -> None:
    boxes = SCENES[0].boxes()
    iou = box_iou_matrix(boxes, boxes)
    assert np.allclose(iou - np.eye(len(boxes)), 0.0)
