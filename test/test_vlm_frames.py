"""The package's Qwen2-VL frame preprocessing gives the vision tower what the model's own processor gives it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from w2r2_ros.vlm.frames import VisionLayout, patchify_frames, patchify_video

LAYOUT = VisionLayout()


def frames_uint8(count: int, height: int = 84, width: int = 112, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)


def ours(images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    frames = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # as prepare_keyframe gives them
    return patchify_frames(frames, LAYOUT)


def processor_output(processor, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    out = processor(images=list(images), do_resize=False, return_tensors="pt")
    return out["pixel_values"].float(), out["image_grid_thw"]


def test_matches_the_qwen2_vl_processor_pil_backend():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    images = frames_uint8(3)
    expected, expected_grid = processor_output(Qwen2VLImageProcessorPil(), images)
    pixel_values, grid = ours(images)
    assert grid.tolist() == expected_grid.tolist() == [[1, 6, 8]] * 3
    assert pixel_values.shape == expected.shape == (3 * 6 * 8, 3 * 2 * 14 * 14)
    torch.testing.assert_close(pixel_values, expected, atol=1e-5, rtol=1e-5)


def test_matches_the_default_torchvision_processor_where_it_loads():
    try:  # on a robot with a working torchvision; its registry build for the CPU torch here fails to load
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    except (ImportError, RuntimeError) as error:
        pytest.skip(f"torchvision does not load here ({type(error).__name__})")

    images = frames_uint8(2, seed=1)
    expected, expected_grid = processor_output(Qwen2VLImageProcessor(), images)
    pixel_values, grid = ours(images)
    assert grid.tolist() == expected_grid.tolist()
    torch.testing.assert_close(pixel_values, expected, atol=1e-5, rtol=1e-5)


def test_each_merged_token_gets_its_own_28_pixel_square_in_row_major_order():
    """Pixel values that encode their own coordinates: row t of the output's merge groups is token t's square."""
    h, w = 56, 84
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    identity = VisionLayout(image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0))
    frame = torch.stack([rows.float(), cols.float(), torch.zeros(h, w)]).unsqueeze(0)
    pixel_values, _ = patchify_frames(frame, identity)
    patches = pixel_values.view(-1, 4, 3, 2, 14, 14)  # (merged tokens, m*m patches, C, T, p, p)
    assert torch.equal(patches[:, :, :, 0], patches[:, :, :, 1])  # a still image: both temporal copies
    for token in range(patches.shape[0]):
        token_row, token_col = divmod(token, w // 28)
        square_rows = patches[token, :, 0, 0].flatten()
        square_cols = patches[token, :, 1, 0].flatten()
        assert square_rows.min() == 28 * token_row and square_rows.max() == 28 * token_row + 27
        assert square_cols.min() == 28 * token_col and square_cols.max() == 28 * token_col + 27


def test_refuses_frames_that_are_not_a_multiple_of_the_token_size():
    with pytest.raises(ValueError, match="multiple of 28"):
        patchify_frames(torch.zeros(1, 3, 84, 100), LAYOUT)


def test_a_video_of_repeated_frames_is_those_frames_as_still_images():
    """bench/vlm.py --vision-layouts compares the two layouts: a temporal patch of two copies of a frame
    must be exactly that frame as a still image, and two different frames must share one token."""
    frames = torch.rand(2, 3, 84, 112, generator=torch.Generator().manual_seed(0))
    stills, grid = patchify_frames(frames, VisionLayout())
    video, video_grid = patchify_video(frames.repeat_interleave(2, dim=0), VisionLayout())
    assert grid.tolist() == [[1, 6, 8]] * 2 and video_grid.tolist() == [[2, 6, 8]]
    assert torch.equal(video, stills)
    pair, pair_grid = patchify_video(frames, VisionLayout())
    assert pair_grid.tolist() == [[1, 6, 8]] and pair.shape == stills[: 6 * 8].shape
    t_slots = pair.view(6 * 8, 3, 2, 14 * 14)  # (tokens, C, T, p*p): slot 0 is frame 0, slot 1 frame 1
    torch.testing.assert_close(t_slots[:, :, 0], stills[: 6 * 8].view(6 * 8, 3, 2, -1)[:, :, 0])
    torch.testing.assert_close(t_slots[:, :, 1], stills[6 * 8:].view(6 * 8, 3, 2, -1)[:, :, 0])
    with pytest.raises(ValueError, match="multiple of the temporal patch 2"):
        patchify_video(frames[:1], VisionLayout())
