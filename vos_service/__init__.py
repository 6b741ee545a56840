"""vos_service: real-time video object segmentation streaming on SAM 2."""

__version__ = "0.1.0"
