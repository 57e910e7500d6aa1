"""Codecs of the modalities beyond tables and images (text, audio) and the multimodal codec that
holds one codec per modality and marks which modalities each record has."""

from fds.data.multimodal.audio import AudioCodec, griffin_lim
from fds.data.multimodal.codec import MODALITY_KINDS, MultimodalCodec, present_mask
from fds.data.multimodal.text import TextCodec

__all__ = [
    "MODALITY_KINDS",
    "AudioCodec",
    "MultimodalCodec",
    "TextCodec",
    "griffin_lim",
    "present_mask",
]
