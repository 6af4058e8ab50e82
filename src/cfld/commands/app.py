"""`cfld app`: the web app (Gradio) on 127.0.0.1, no analytics, nothing fetched from outside.

    cfld app [--model DIR] [--host 127.0.0.1] [--port 7860] [--share]
"""

from __future__ import annotations

import argparse
import os

from cfld.checks.numbers import PORT, STEPS, UPLOAD_MB


def run(args: argparse.Namespace) -> int:
    """Load the pipeline and serve the app until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    PORT.check(args.port, "--port")
    UPLOAD_MB.check(args.max_upload_mb, "--max-upload-mb")
    if args.steps is not None:
        STEPS.check(args.steps, "--steps")
    from cfld.app import build_app, launch_app, load_default_pipeline

    pipe = load_default_pipeline(args.model, args.vae, args.device)
    from cfld.commands._common import apply_precision

    apply_precision(pipe, args.precision)
    demo = build_app(pipe, default_steps=args.steps, max_upload_mb=args.max_upload_mb,
                     guidance_type=args.guidance_type)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can use "
              "the app")
    if args.share:
        print("warning: --share asks Gradio's servers for a public link: anyone with the link "
              "can use the app, and its traffic goes through gradio.live")
    from cfld.shipped import is_shipped

    if is_shipped(pipe):
        from cfld.scope import SHIPPED_NOTE

        print(SHIPPED_NOTE)
    launch_app(demo, host=args.host, port=args.port, share=args.share)
    return 0


EXAMPLES = (
    "cfld app                                   # the shipped model on http://127.0.0.1:7860",
    "cfld app --model cfld-fashion --device cuda --steps 50",
    "cfld app --share                           # a public gradio.live link",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld app`."""
    from cfld.commands._common import add_model_arguments
    from cfld.commands._help import GUIDANCE_NAMES, add_command

    p = add_command(subparsers, "app", EXAMPLES, description=(
        "Serve the web app (Gradio) on this machine: pose transfer, a pose editor, style "
        "transfer,\ninterpolation and animation. No analytics; nothing is fetched from outside "
        "unless --share."))
    add_model_arguments(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=PORT.arg(), default=7860, help="port to serve on")
    p.add_argument("--share", action="store_true",
                   help="also create a public link through Gradio's share servers (needs the "
                        "internet; anyone with the link can use the app)")
    p.add_argument("--steps", type=STEPS.arg(), default=None,
                   help="initial steps in the app (default: the model's own: a distilled "
                        "folder's recorded steps, else the paper's 50)")
    p.add_argument("--max-upload-mb", type=UPLOAD_MB.arg(), default=10.0,
                   help="refuse uploads above this size (default 10 MB)")
    p.add_argument("--guidance-type", default=None, choices=GUIDANCE_NAMES,
                   help="guidance of every generation (default: the model's own: none for a "
                        "guidance-distilled folder, else uc_down_full, Eq. 7)")
    p.set_defaults(func=run)
