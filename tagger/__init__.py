"""tagger: named-entity tagging for Ukrainian and English with ONNX Runtime.

This package is the inference side: it never imports torch or transformers.
"""

__version__ = "0.1.0"
