"""LipSyncResult -> files: versioned cue JSON and Rhubarb-compatible ``mouthCues`` JSON (UTF-8)."""

from .cues import rhubarb_cues, to_cue_dict, to_rhubarb_dict, write_json

__all__ = ["rhubarb_cues", "to_cue_dict", "to_rhubarb_dict", "write_json"]
