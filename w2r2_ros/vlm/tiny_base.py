"""Write a tiny randomly initialised Qwen2.5-VL base (about 0.2 M parameters) with its tokenizer to a directory.

For tests, CI and a first end-to-end run of the video-LLM kind without a download:

    python -m w2r2_ros.vlm.tiny_base models/tiny-qwen2_5_vl

It has the published Qwen2.5-VL architecture at toy sizes (2 text layers of hidden 64,
a 2-block vision tower, 14-pixel patches merged 2 x 2) and a byte-level BPE tokenizer
trained here on a few hundred words, with Qwen's chat and vision special tokens, so the
same prompt code serves it and the real ``Qwen/Qwen2.5-VL-3B-Instruct``. The weights
are seeded: two runs write the same base (the same config hash).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import torch

# Qwen2's special tokens that the prompt and the vision placeholders use, first in the vocabulary.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
# What the BPE merges are learned from: words of indoor scenes and of grounding queries.
CORPUS = """
You see a 3D scene as video frames and a list of objects. Find the object the user describes.
the chair next to the table, the red chair between the two tables, the lamp on the left of the bed,
the white cabinet near the door, a blue box on the shelf, the sofa facing the television, the plant in the corner,
the mug on the desk, the fire extinguisher by the wall, the trash can under the sink, the largest bookshelf,
the small stool behind the counter, the black monitor above the keyboard, the pillow on the couch, the window
left right front back above below near far closest farthest biggest smallest tall short green yellow brown grey
orange purple pink wooden metal kitchen bedroom office bathroom living room refrigerator oven microwave toilet
""".split("\n")


def build_tokenizer(directory: Path, vocab_size: int = 512) -> object:
    """A byte-level BPE tokenizer (any text encodes) with ``SPECIAL_TOKENS``, saved to ``directory``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([line for line in CORPUS if line.strip()] * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    fast.save_pretrained(directory)
    return fast


def tiny_config(tokenizer: object) -> object:
    """A Qwen2.5-VL config at toy sizes whose special-token ids are the tokenizer's."""
    from transformers import Qwen2_5_VLConfig

    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
            "fullatt_block_indexes": [1], "tokens_per_second": 2,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def write_tiny_base(directory: str | Path, seed: int = 0) -> Path:
    """Write config, seeded random weights (safetensors), tokenizer and preprocessor config to ``directory``."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from w2r2_ros.vlm.frames import CLIP_MEAN, CLIP_STD

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(directory)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Qwen2_5_VLForConditionalGeneration(tiny_config(tokenizer))
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(directory)
    preprocessor = {
        "image_processor_type": "Qwen2VLImageProcessor", "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2,
        "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD), "min_pixels": 28 * 28, "max_pixels": 448 * 448,
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2r2_ros.vlm.tiny_base", description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, help="where to write the base (created)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = write_tiny_base(args.directory, args.seed)
    count = sum(p.numel() for p in __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(path / "model.safetensors")).values())
    print(f"tiny Qwen2.5-VL base ({count / 1e6:.2f} M parameters) written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
