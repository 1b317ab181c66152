"""Embeddings: image and box-crop features from a pretrained backbone, cached on disk.

``embed_dataset(dataset, backbone, level)`` is the one entry point; backbones are
specs in a registry (``list_backbones``, ``get_backbone``) that declare their weights
source and preprocessing together.
"""

from detreduce.features.backbones import (
    Backbone,
    BackboneSpec,
    get_backbone,
    list_backbones,
    register_backbone,
)
from detreduce.features.embed import Embeddings, embed_dataset
from detreduce.features.export import export_embeddings

__all__ = [
    "Backbone",
    "BackboneSpec",
    "Embeddings",
    "embed_dataset",
    "export_embeddings",
    "get_backbone",
    "list_backbones",
    "register_backbone",
]
