"""Sub-commands of the `cfld` CLI, one module each (see :mod:`cfld.cli`).

:data:`COMMANDS` is the one list of them, in ``cfld --help`` order, with their one-line help:
``cfld --help`` prints it without importing any command module (nor torch).
"""

#: name → one line for ``cfld --help`` (the module is ``cfld.commands.<name>``).
COMMANDS: dict[str, str] = {
    "demo": "offline demo with the shipped small model",
    "generate": "generate a person in a target pose",
    "train": "train a CFLD model",
    "distill": "distil a guided model into a few-step, one-branch student",
    "evaluate": "score generated images: FID (standard and authors'), LPIPS, SSIM, SSIM_256, "
                "PSNR",
    "convert": "convert the authors' checkpoint into a pipeline folder",
    "info": "version and parameter table of a preset",
    "data": "make, prepare and check data roots (DeepFashion, Market-1501)",
    "pose": "estimate the keypoints of a photo, draw them, list the example poses",
    "edit": "appearance editing: style transfer, interpolation",
    "animate": "animate a person through a sequence of poses (PNGs + GIF)",
    "app": "web app: pose transfer, style transfer, interpolation, animation",
}
