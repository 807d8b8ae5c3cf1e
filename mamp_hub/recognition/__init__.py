"""Actions in long recordings and live pose streams: windowed recognition with timestamps, several people, streaming.

- `windows`: where windows lie (`window_starts`), the checkpoint's default window and stride and their limits, and
  how window scores become per-frame scores and segments;
- `persons`: recordings of any number of people or tracks (`read_recording`), and which people a window is run on;
- `runners`: what runs a batch of window clips: a PyTorch model or an ONNX Runtime session;
- `recognize`: a whole recording (what the pipelines return when called with `window=`);
- `streaming`: `StreamingActionRecognizer`, the same windows from frames pushed as they arrive.

docs/long_recordings.md is the user's guide.
"""

from .persons import PERSON_POLICIES, Recording, read_recording
from .recognize import recognize_recording, window_features
from .runners import OnnxRunner, TorchRunner, classifier_runner
from .streaming import StreamingActionRecognizer
from .windows import default_stride, default_window, window_limits, window_starts

__all__ = [
    "PERSON_POLICIES",
    "OnnxRunner",
    "Recording",
    "StreamingActionRecognizer",
    "TorchRunner",
    "classifier_runner",
    "default_stride",
    "default_window",
    "read_recording",
    "recognize_recording",
    "window_features",
    "window_limits",
    "window_starts",
]
