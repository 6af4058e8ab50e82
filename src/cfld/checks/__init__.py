"""The validation layer at cfld's edges: every rule on what comes in and what goes out, once.

The CLI, the Python API and the web app all check their inputs here, so one bad value gets the
same message wherever it enters, and before any work is done:

* :mod:`~cfld.checks.numbers` — every numeric argument (finite, integer, range) and the resource
  bounds (steps, frames, output size, batch); ``rule.arg()`` is the argparse ``type=``.
* :mod:`~cfld.checks.files` — input files and folders, paths inside their data root, text and
  JSON within size and nesting limits.
* :mod:`~cfld.checks.outputs` — output paths (type, existing files, writable) and write errors.
* :mod:`~cfld.checks.writes` — atomic writes with the umask's permissions; stale temporaries
  removed on the next write.
* :mod:`~cfld.checks.models` — model folders file by file, ``model_index.json`` against an
  allow-list, safetensors headers, safe ``torch.load``.
* :mod:`~cfld.checks.device` — ``--device``.
* :mod:`~cfld.checks.messages` — warnings on the command line as one ``cfld CMD: warning:``
  line (formatting only: they stay catchable in the API).
* :mod:`~cfld.checks.tensorboard` — a TensorBoard log that cannot be written is one warning;
  training goes on (``metrics.jsonl`` has every value).

Existing outputs are refused before any work unless ``--overwrite`` (a training run is never
replaced; an earlier frame sequence clashes whatever its length); names read from data files
go through :func:`inside_root` (no ``..``, no link out of the root); the web app deletes each
upload once its handler has read it (:mod:`cfld.app.uploads`).

Images (EXIF orientation, modes and bit depths, size limits) are opened by
:func:`cfld.data.images.open_image` and keypoints checked by :class:`cfld.pose.Keypoints`; both
use the limits defined here.  Errors are ``ValueError`` (or a subclass) or ``FileNotFoundError``
with a message that names the problem and the fix; the CLI prints it as one line, exit code 2.
"""

from cfld.checks.device import check_device, device_arg
from cfld.checks.files import (
    input_dir,
    input_file,
    inside_root,
    parse_json,
    read_json,
    read_text,
)
from cfld.checks.numbers import (
    BATCH_SIZE,
    ETA,
    FPS,
    FRAMES,
    GUIDANCE_SCALE,
    LIMIT,
    MAX_FRAMES,
    MAX_OUTPUT_SIDE,
    MAX_STEPS,
    PAIRS,
    PORT,
    SEED,
    STEPS,
    UPLOAD_MB,
    Number,
    check_numbers,
)
from cfld.checks.outputs import (
    IMAGE_FORMATS,
    OutputError,
    output_dir,
    output_file,
    output_image,
    writable_dir,
)

__all__ = ["BATCH_SIZE", "ETA", "FPS", "FRAMES", "GUIDANCE_SCALE", "IMAGE_FORMATS", "LIMIT",
           "MAX_FRAMES", "MAX_OUTPUT_SIDE", "MAX_STEPS", "Number", "OutputError", "PAIRS", "PORT",
           "SEED", "STEPS", "UPLOAD_MB", "check_device", "check_numbers", "device_arg",
           "input_dir", "input_file", "inside_root", "output_dir", "output_file", "output_image",
           "parse_json", "read_json", "read_text", "writable_dir"]
