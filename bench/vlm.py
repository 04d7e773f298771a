"""Video-LLM benchmark: W2R2 training step with LoRA, and query latency with the keyframe/scene cache cold and warm.

    .venv/bin/python bench/vlm.py --arch tiny --device cpu                      # the tiny random base, CPU rows
    python bench/vlm.py --arch qwen2_5_vl_3b --device cuda --out bench/results/vlm_cuda_3b.json
    python bench/vlm.py --arch qwen2_5_vl_3b --device cuda --vision-layouts    # keyframes as images vs video
    .venv/bin/python bench/vlm.py --arch tiny --smoke --out /tmp/vlm.json       # the code path at toy sizes (test_bench_vlm.py)

``--arch qwen2_5_vl_3b`` builds the published Qwen2.5-VL-3B-Instruct architecture
(bench/configs/qwen2_5_vl_3b_config.json) with random bf16 weights on the device: nothing is
downloaded, and timing does not depend on the weights. Its tokenizer is the tiny base's (ids of
the prompt's words differ, its lengths are comparable); the vision special-token ids are the config's.

Rows:
- train: one W2R2 step (fused pass + 2D-only pass sharing the visual tokens, alignment + pseudo-label
  loss, backward, AdamW on LoRA + Where + heads) at ``--train-frames`` keyframes and ``--batch`` texts of
  one scene (``texts_per_scene``); median step time, samples/s, peak memory (GPU: allocated; CPU: RSS);
- query: ``Grounder.ground`` latency p50/p95 at 8/16/32 keyframes and ``--proposals`` proposals;
  cold = nothing cached (vision tower, scene prefix, query), frames-warm = keyframes cached but a new
  scene prefix (proposals changed), warm = unchanged scene (the query tokens only).
Reference (Video-3D LLM, 7B): 309 / 537 / 1050 ms at 8 / 16 / 32 frames. Target: p50 <= 300 ms at 16
keyframes, warm cache, 3B, one GPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
ARCH_CONFIGS = {"qwen2_5_vl_3b": REPO / "bench" / "configs" / "qwen2_5_vl_3b_config.json"}
QUERIES = ["the red chair next to the table", "the lamp on the left of the bed", "the smallest box on the shelf",
           "the white cabinet near the door"]


def build_model(arch: str, device: str, image: tuple[int, int], work: Path, checkpointing: bool, layers: int = 0):
    """(model, tokenizer) of the video-LLM kind on a random base of ``arch``, on ``device``."""
    from w2r2_ros.model.config import ModelConfig
    from w2r2_ros.vlm.base_model import FAMILIES, LoadedBase, base_config_hash
    from w2r2_ros.vlm.checkpoint import build_video_llm
    from w2r2_ros.vlm.config import VLMConfig
    from w2r2_ros.vlm.tiny_base import build_tokenizer, write_tiny_base

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    width, height = image
    if arch == "tiny":
        base = write_tiny_base(work / "tiny-base")
        vlm = VLMConfig(base_model=str(base), lora_rank=8, lora_alpha=16, where_hidden=64, head_size=64,
                        gradient_checkpointing=checkpointing)
        hidden = 64
        loaded = None
    else:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        config_dict = json.loads(ARCH_CONFIGS[arch].read_text())
        if layers:  # a shallower copy of the architecture: a dry run of the same code path on a small machine
            config_dict.update(num_hidden_layers=layers)
            config_dict["vision_config"].update(depth=layers, fullatt_block_indexes=[layers - 1])
        hf_config = Qwen2_5_VLConfig(**config_dict)
        torch.manual_seed(0)
        with torch.device(device):
            hf_model = Qwen2_5_VLForConditionalGeneration._from_config(hf_config, dtype=dtype)
        tokenizer = build_tokenizer(work / "tokenizer")
        family = FAMILIES[hf_config.model_type]
        loaded = LoadedBase(hf_model, tokenizer, family, family.vision_layout(hf_config, {}), base_config_hash(config_dict))
        vlm = VLMConfig(base_model=arch, gradient_checkpointing=checkpointing)
        hidden = int(hf_config.text_config.hidden_size)
    model_config = ModelConfig(image_width=width, image_height=height, patch_size=28, video_token_pool=1,
                               hidden_size=hidden, max_text_length=32, categories=("chair", "table", "lamp", "box"))
    model, tokenizer = build_video_llm(model_config, vlm, dtype, loaded)
    return model.to(device), tokenizer


def synthetic_keyframes(count: int, seed: int = 0) -> list:
    """Keyframes of a 4 x 4 m room seen from a circle of poses: random colours, a plane of depth with noise."""
    from w2r2_ros.geometry.camera import Intrinsics
    from w2r2_ros.geometry.transforms import look_at
    from w2r2_ros.scene.keyframes import Keyframe

    rng = np.random.default_rng(seed)
    intrinsics = Intrinsics.from_fov(320, 240, 70.0)
    frames = []
    for i in range(count):
        angle = 2 * np.pi * i / count
        eye = np.array([1.5 * np.cos(angle), 1.5 * np.sin(angle), 1.3])
        rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        depth = (2.0 + 0.3 * rng.random((240, 320))).astype(np.float32)
        frames.append(Keyframe.create(float(seed * 1000 + i), rgb, depth, intrinsics, look_at(eye, np.array([0.0, 0.0, 0.5]))))
    return frames


def synthetic_proposals(count: int, seed: int = 0) -> list:
    from w2r2_ros.geometry.boxes import Box3D
    from w2r2_ros.scene.proposals import Proposal

    rng = np.random.default_rng(seed)
    return [Proposal(i, Box3D(np.r_[rng.uniform(-1.5, 1.5, 2), 0.4], rng.uniform(0.2, 0.8, 3)), 100, np.full(3, 128.0))
            for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_queries(model, tokenizer, device: str, frames: int, proposals: int, repeats: int) -> dict[str, dict[str, float]]:
    from w2r2_ros.model.grounder import Grounder

    grounder = Grounder(model, tokenizer, device)
    keyframes = synthetic_keyframes(frames)
    boxes = [synthetic_proposals(proposals, seed) for seed in range(repeats + 1)]
    grounder.ground(keyframes, boxes[0], QUERIES[0], max_frames=frames)  # warm-up (kernels, allocator)
    cold, frames_warm, warm = [], [], []
    for r in range(repeats):
        grounder.clear_cache()
        start = time.perf_counter()
        grounder.ground(keyframes, boxes[r], QUERIES[r % len(QUERIES)], max_frames=frames)
        cold.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        grounder.ground(keyframes, boxes[r + 1], QUERIES[(r + 1) % len(QUERIES)], max_frames=frames)
        frames_warm.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        grounder.ground(keyframes, boxes[r + 1], QUERIES[(r + 2) % len(QUERIES)], max_frames=frames)
        warm.append((time.perf_counter() - start) * 1e3)
    return {name: {"p50_ms": percentile(v, 50), "p95_ms": percentile(v, 95)}
            for name, v in (("cold", cold), ("frames_warm", frames_warm), ("warm", warm))}


def bench_training(model, tokenizer, device: str, frames: int, proposals: int, batch: int, steps: int) -> dict[str, float]:
    from w2r2_ros.model.inputs import prepare_inputs
    from w2r2_training.losses import W2R2LossConfig, w2r2_objective
    from w2r2_training.trainer import DualPass

    scene = prepare_inputs(synthetic_keyframes(frames, seed=7), np.stack([p.box.as_oriented_array() for p in synthetic_proposals(proposals, 7)]),
                           model.config)
    inputs = scene.batched().to(device)
    ids, mask = tokenizer.encode([QUERIES[i % len(QUERIES)] for i in range(batch)], model.config.max_text_length)
    ids, mask = ids.to(device), mask.to(device)
    target = torch.arange(batch, device=device) % proposals
    rows = torch.zeros(batch, dtype=torch.long, device=device)  # every text describes the one scene
    dual = DualPass(model).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss_config = W2R2LossConfig()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 1):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        expanded = dataclasses.replace(inputs, **{f.name: getattr(inputs, f.name).expand(batch, *getattr(inputs, f.name).shape[1:])
                                                  for f in dataclasses.fields(inputs)})
        fused, pseudo = dual(expanded, ids, mask, True, rows)
        total, _ = w2r2_objective(fused.logits, pseudo.logits, target, loss_config)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if step:  # the first step pays for allocation and kernel choice
            times.append(time.perf_counter() - start)
    model.eval()
    step_s = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"step_s": step_s, "samples_per_s": batch / step_s, "peak_memory_gib": peak,
            "memory_kind": "GPU allocated" if cuda else "process RSS"}


def bench_vision_layouts(model, device: str, frame_counts: list[int], repeats: int) -> dict[int, dict[str, dict[str, float]]]:
    """Vision tower only, per keyframe count: visual tokens per keyframe and p50 ms with keyframes as images (one
    image per keyframe, what the model does) and as one video (temporal patch 2: pairs of keyframes share a token)."""
    from w2r2_ros.vlm.frames import patchify_frames, patchify_video

    qwen, layout = model._qwen, model.layout
    rows = {}
    for count in frame_counts:
        frames = torch.rand(count, 3, model.config.image_height, model.config.image_width, device=device)
        runs = {
            "images": lambda: qwen.get_image_features(*patchify_frames(frames, layout), return_dict=True),
            "video": lambda: qwen.get_video_features(*patchify_video(frames, layout), return_dict=True),
        }
        rows[count] = {}
        for name, run in runs.items():
            times = []
            with torch.inference_mode():
                for _ in range(repeats + 1):
                    start = time.perf_counter()
                    out = run()
                    synchronise(device)
                    times.append(time.perf_counter() - start)
            tokens = sum(int(t.shape[0]) for t in out.pooler_output)
            rows[count][name] = {"tokens_per_keyframe": tokens / count, "p50_ms": statistics.median(times[1:]) * 1e3}
    return rows


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=("tiny", *ARCH_CONFIGS), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image", default=None, help="keyframe size WxH, multiples of 28 (tiny: 112x84, 3B: 336x252)")
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--train-frames", type=int, default=16)
    parser.add_argument("--proposals", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4, help="texts per training step (one scene)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10, help="queries per row (each cold, frames-warm and warm)")
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing in the training row")
    parser.add_argument("--layers", type=int, default=0, help="override the text layers and vision blocks (a dry run; 0: as published)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--vision-layouts", action="store_true",
                        help="only compare the vision tower with keyframes as images and as one video (docs/VLM.md)")
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/vlm[_layouts]_<device>_<arch>.json)")
    parser.add_argument("--smoke", action="store_true",
                        help="every row at toy sizes (2 keyframes, 4 proposals, 1 step, 1 repeat): checks the code path, times nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.frames, args.train_frames, args.proposals, args.batch, args.steps, args.repeats = [2], 2, 4, 2, 1, 1
    torch.set_num_threads(args.threads)
    image = args.image or ("112x84" if args.arch == "tiny" else "336x252")
    width, height = (int(v) for v in image.lower().split("x"))
    kind = "vlm_layouts" if args.vision_layouts else "vlm"
    out = args.out or REPO / "bench" / "results" / f"{kind}_{args.device.split(':')[0]}_{args.arch}.json"
    command = "python bench/vlm.py " + " ".join(sys.argv[1:] if argv is None else argv)

    with tempfile.TemporaryDirectory() as work:
        model, tokenizer = build_model(args.arch, args.device, (width, height), Path(work), args.checkpointing, args.layers)
        if args.vision_layouts:
            rows = bench_vision_layouts(model, args.device, args.frames, args.repeats)
            write_json(out, {"command": command, "device": device_name(args.device), "arch": args.arch,
                             "layers_override": args.layers, "image": f"{width}x{height}", "vision_layouts": rows})
            print(f"{device_name(args.device)}; {args.arch}, {width}x{height} keyframes; vision tower only")
            print(f"{'keyframes':>9} | {'images: tokens/kf, p50 ms':>26} | {'video: tokens/kf, p50 ms':>25}")
            for n, row in rows.items():
                cells = [f"{row[k]['tokens_per_keyframe']:.1f}, {row[k]['p50_ms']:.1f}" for k in ("images", "video")]
                print(f"{n:>9} | {cells[0]:>26} | {cells[1]:>25}")
            print(f"written to {out}")
            return 0
        parameters = sum(p.numel() for p in model.parameters())
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        training = bench_training(model, tokenizer, args.device, args.train_frames, args.proposals, args.batch, args.steps)
        queries = {n: bench_queries(model, tokenizer, args.device, n, args.proposals, args.repeats) for n in args.frames}

    tokens = model.config.patches_per_frame
    result = {
        "command": command,
        "device": device_name(args.device), "arch": args.arch, "layers_override": args.layers, "image": f"{width}x{height}", "tokens_per_frame": tokens,
        "parameters": parameters, "trained_parameters": trained, "proposals": args.proposals,
        "train": {"frames": args.train_frames, "batch": args.batch, **training}, "query": queries,
    }
    write_json(out, result)
    print(f"{result['device']}; {args.arch} ({parameters / 1e6:.1f} M parameters, {trained / 1e6:.2f} M trained), "
          f"{width}x{height} keyframes = {tokens} visual tokens each, {args.proposals} proposals")
    print(f"train: {args.train_frames} keyframes, {args.batch} texts/step: {training['step_s'] * 1e3:.0f} ms/step, "
          f"{training['samples_per_s']:.2f} samples/s, peak {training['peak_memory_gib']:.2f} GiB ({training['memory_kind']})")
    print(f"{'keyframes':>9} | {'cold p50/p95 ms':>16} | {'frames-warm p50/p95':>20} | {'warm p50/p95 ms':>16}")
    for n, row in queries.items():
        cells = [f"{row[k]['p50_ms']:.0f} / {row[k]['p95_ms']:.0f}" for k in ("cold", "frames_warm", "warm")]
        print(f"{n:>9} | {cells[0]:>16} | {cells[1]:>20} | {cells[2]:>16}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
