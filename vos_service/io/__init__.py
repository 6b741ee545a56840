"""Frames in, masks out: video decoding, mask RLE, overlays and masklet files.

- ``video``: decode files, URLs and cameras to RGB frames (PyAV); probe metadata.
- ``rle``: COCO RLE encode/decode of binary masks, area and box.
- ``overlay``: draw masklets on frames; write H.264 MP4s.
- ``masklets``: per-frame masklets as JSON lines.

Submodules are not imported here, so ``from vos_service.io.rle import …``
does not pull in OpenCV or FFmpeg.
"""
