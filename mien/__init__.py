"""mien: search image and video archives by facial expression."""

__version__ = "0.1.0"
