"""The three modules ATOM keeps resident: video encoder, language decoder, MiniLM."""

from atom_deploy.models.decoder import Decoder
from atom_deploy.models.minilm import MiniLM
from atom_deploy.models.video_encoder import VideoEncoder

__all__ = ["Decoder", "MiniLM", "VideoEncoder"]
