"""Running a cached export without torch or ultralytics: OpenVINO or ONNX Runtime, plus the pre- and
post-processing ultralytics' predictor applies, in NumPy and OpenCV.

Importing torch and ultralytics costs about 2 s and the torch model several hundred MB; a run whose
export (and its parity with PyTorch) is already cached needs neither. What ultralytics does around the
network is reproduced step for step (tests/test_runtime.py compares the two on the same export):

- input (`preprocess`): ultralytics' LetterBox for a fixed square input: RT-DETR stretches the picture
  to the square (`scale_fill`), YOLO scales it to fit and pads with grey 114, centred; BGR → RGB, 0..1,
  NCHW (for OpenVINO, that last step is compiled into the graph, which takes the letterboxed uint8
  picture as is);
- output (`decode`): RT-DETR's (1, queries, 6) rows, cx, cy, w, h normalized, score, class, already
  top-k by the decoder, kept above `conf`, first `max_det`, scaled by the picture's width and height (no
  clip); YOLO's (1, 4 + classes, anchors), best class per anchor above `conf`, class-wise greedy NMS at
  `iou` (ultralytics' `non_max_suppression`), first `max_det`, mapped back through the letterbox and
  clipped; an end-to-end head (YOLO26: (1, 300, 6) boxes in input pixels) skips the NMS.

The network runs in a session (`sessions`: OpenVINO, latency or throughput mode, or ONNX Runtime),
compiled through the cache beside the export (`cache`); `detector` holds the `ExportedDetector` that
puts the steps together.

Other layers import from here; the modules of the package import each other directly.
"""

from detect_cli.runtime.cache import compiled_cache
from detect_cli.runtime.decode import (
    Decoded,
    batched_nms,
    decode_end2end,
    decode_rtdetr,
    decode_yolo,
    nms,
    unletterbox,
    xywh2xyxy,
)
from detect_cli.runtime.detector import ExportedDetector, export_names
from detect_cli.runtime.preprocess import Fit, letterbox, to_input, uint8_bgr_input
from detect_cli.runtime.sessions import (
    INT8_FLOAT,
    Finish,
    Mode,
    OnnxSession,
    OpenVINOSession,
    Session,
    is_end2end,
    open_session,
)

__all__ = [
    "INT8_FLOAT",
    "Decoded",
    "ExportedDetector",
    "Finish",
    "Fit",
    "Mode",
    "OnnxSession",
    "OpenVINOSession",
    "Session",
    "batched_nms",
    "compiled_cache",
    "decode_end2end",
    "decode_rtdetr",
    "decode_yolo",
    "export_names",
    "is_end2end",
    "letterbox",
    "nms",
    "open_session",
    "to_input",
    "uint8_bgr_input",
    "unletterbox",
    "xywh2xyxy",
]
