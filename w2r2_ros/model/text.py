"""Query text -> token ids: a word-level tokenizer built from the training texts with the `tokenizers` library.

No pretrained language model exists offline, so the vocabulary is the words of
the training queries (lower-cased, punctuation split off); any other word maps
to [UNK]. The tokenizer is saved as ``tokenizer.json`` beside the weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


class QueryTokenizer:
    """Word-level tokenizer; id 0 is [PAD], id 1 is [UNK]."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        if tokenizer.token_to_id(PAD_TOKEN) != 0 or tokenizer.token_to_id(UNK_TOKEN) != 1:
            raise ValueError(f"tokenizer: expected {PAD_TOKEN} = 0 and {UNK_TOKEN} = 1")
        self.tokenizer = tokenizer

    @staticmethod
    def build(texts: Iterable[str], min_frequency: int = 1) -> "QueryTokenizer":
        """Vocabulary of every word seen at least ``min_frequency`` times in ``texts``."""
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(special_tokens=[PAD_TOKEN, UNK_TOKEN], min_frequency=min_frequency)
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return QueryTokenizer(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def save(self, path: str | Path) -> None:
        self.tokenizer.save(str(path))

    @staticmethod
    def load(path: str | Path) -> "QueryTokenizer":
        """Read ``tokenizer.json``; a missing or unreadable file is a one-line ValueError naming it."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: tokenizer file not found")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises its own Exception subclass
            raise ValueError(f"{path}: not a valid tokenizer file ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
        return QueryTokenizer(tokenizer)

    def encode(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, L) int64 and mask (B, L) bool, L = longest text (at most ``max_length``; longer texts are cut)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        length = max(1, min(max_length, max((len(e.ids) for e in encodings), default=1)))
        ids = torch.zeros((len(encodings), length), dtype=torch.long)
        mask = torch.zeros((len(encodings), length), dtype=torch.bool)
        for row, encoding in enumerate(encodings):
            tokens = encoding.ids[:length]
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, : len(tokens)] = True
        return ids, mask
