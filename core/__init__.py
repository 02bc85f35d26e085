"""alkd: distil LLM recommenders into small session-based students (ALKDRec and peers)."""

__version__ = "0.1.0"
