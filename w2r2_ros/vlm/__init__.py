"""The second model kind: a pretrained video LLM (Qwen2.5-VL) with 3D "Where" tokens and a grounding head (docs/VLM.md)."""
