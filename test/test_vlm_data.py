"""The dataset builders prepare data for the video LLM when the config's model section has its token grid."""
from __future__ import annotations

import dataclasses

from test_dataset_scanrefer import CONFIG, scannet  # noqa: F401  (scannet is a pytest fixture)
from vlm_fixtures import GEOMETRY
from w2r2_ros.model.config import ModelConfig
from w2r2_training.dataset import GroundingDataset
from w2r2_training.scanrefer import build_scanrefer_dataset


def test_scanrefer_builder_stores_frames_at_the_vlm_size_and_depth_per_visual_token(scannet, tmp_path):  # noqa: F811
    folder, _, _ = scannet
    config = dataclasses.replace(CONFIG, model=ModelConfig(**GEOMETRY))
    manifest = build_scanrefer_dataset(tmp_path / "vlm", folder, {"train": folder / "train.json"}, config, progress=False)
    assert manifest.input_settings["patch_size"] == 28 and manifest.input_settings["image_width"] == 112
    inputs = GroundingDataset(tmp_path / "vlm", "train")[0].inputs
    k = inputs.frames.shape[0]
    assert inputs.frames.shape == (k, 3, 84, 112)  # the VLM's input size
    assert inputs.patch_xyz.shape == (k, 12, 3) and inputs.patch_valid.any()  # one world point per 28-pixel token
    assert inputs.box_patch_weights.shape[1:] == (k, 12)
