"""`cfld app`: the web app (Gradio) on 127.0.0.1, no analytics, nothing fetched from outside.

    cfld app [--model DIR] [--host 127.0.0.1] [--port 7860]
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
    STEPS.check(args.steps, "--steps")
    from cfld.app import build_app, launch_app, load_default_pipeline

    pipe = load_default_pipeline(args.model, args.vae, args.device)
    demo = build_app(pipe, default_steps=args.steps, max_upload_mb=args.max_upload_mb,
                     guidance_type=args.guidance_type)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can use "
              "the app")
    launch_app(demo, host=args.host, port=args.port)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld app`."""
    from cfld.commands._common import add_model_arguments
    from cfld.pipelines.guidance import GUIDANCE_TYPES

    p = subparsers.add_parser("app", help="web app: pose transfer, style transfer, "
                                          "interpolation, animation",
                              description="Serve the web app (Gradio) locally.")
    add_model_arguments(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=PORT.arg(), default=7860)
    p.add_argument("--steps", type=STEPS.arg(), default=50,
                   help="initial steps in the app (default 50)")
    p.add_argument("--max-upload-mb", type=UPLOAD_MB.arg(), default=10.0,
                   help="refuse uploads above this size (default 10 MB)")
    p.add_argument("--guidance-type", default="uc_down_full", choices=sorted(GUIDANCE_TYPES),
                   help="guidance of every generation (default: Eq. 7)")
    p.set_defaults(func=run)
