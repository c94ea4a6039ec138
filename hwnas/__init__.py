"""hwnas: hardware-aware neural architecture search and hardware/model codesign.

The host side: search spaces (:mod:`hwnas.space`), export of architectures to ONNX
(:mod:`hwnas.export`) and the ``hwnas`` command line (:mod:`hwnas.cli`). Importing ``hwnas`` does
not import torch; only building networks does.
"""

__version__ = "0.1.0"
