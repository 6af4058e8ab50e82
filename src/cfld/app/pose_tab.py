"""The app's pose-transfer and animation tabs: one pose panel (the editor) and its wiring.

The target pose lives in one place, the editor's keypoint table.  Picking an example pose,
uploading a photo (its pose is estimated) or a keypoint JSON *replaces* what the table holds
(and clears the example picker for an upload), so the preview always shows the pose Generate
will use.  Joints are edited in the table, or moved by choosing a joint and clicking on the
preview.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from typing import Any

import gradio as gr

from cfld.app import pose_editor
from cfld.app.handlers import EDITED_POSE, AppHandlers
from cfld.pose.keypoints import JOINT_NAMES

VIEW_BUTTONS = ["download", "fullscreen"]
EDITOR_HELP = ("**Target pose.** The preview shows the pose Generate uses. Pick an example pose, "
               "or upload a photo of someone in the pose (estimated offline) or a keypoint "
               "JSON: each replaces the pose. Then edit it: choose a joint and click where it "
               "goes on the preview, or type y, x in the table (-1 = missing).")


def example_sources(folder: str) -> list[str]:
    """A few procedural people (the kind the shipped model knows) written into ``folder``."""
    from cfld.data.synthetic_root import synthesize

    synthesize(folder, people=1, poses=3, size=(256, 176), seed=4242, test_people=1)
    test_dir = os.path.join(folder, "test_highres")
    return [os.path.join(test_dir, n) for n in sorted(os.listdir(test_dir))]


def pose_tab(app: AppHandlers, names: list[str], settings: list[Any]) -> Any:
    """Source photo + the pose editor → result; returns the editor's table (for animation)."""
    first = pose_editor.keypoints_to_table(app.gallery[names[0]])
    with gr.Row():
        with gr.Column(scale=1):
            source = gr.Image(type="filepath", label="Source photo", height=360,
                              sources=["upload", "clipboard"], elem_id="source")
            generate = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column(scale=1):
            gr.Markdown(EDITOR_HELP)
            pose_pick = gr.Radio(names, value=names[0], label="Example pose",
                                 elem_id="gallery-pose")
            with gr.Row():
                pose_photo = gr.Image(type="filepath", label="…or a photo of someone in the pose",
                                      sources=["upload"], elem_id="pose-photo", height=160)
                pose_json = gr.File(label="…or a keypoint JSON", file_types=[".json"],
                                    elem_id="pose-json", height=160)
            joint = gr.Dropdown([f"{j} {n}" for j, n in enumerate(JOINT_NAMES)],
                                value=f"4 {JOINT_NAMES[4]}", label="Joint to move (then click "
                                "the preview)", elem_id="joint-to-move")
            preview = gr.Image(value=pose_editor.render_preview(first), label="Target pose "
                               "(click to move the chosen joint)", interactive=False,
                               elem_id="pose-preview", height=512, buttons=VIEW_BUTTONS)
            with gr.Accordion("Keypoints (y, x in the 256×176 frame)", open=False):
                table = gr.Dataframe(value=first, headers=pose_editor.TABLE_HEADERS,
                                     datatype=["number", "str", "number", "number"],
                                     row_count=18, column_count=4, static_columns=[0, 1],
                                     type="array", interactive=True, elem_id="pose-table")
        with gr.Column(scale=1):
            result = gr.Image(label="Result", format="png", interactive=False, height=512,
                              elem_id="result", buttons=VIEW_BUTTONS)
    folder = tempfile.mkdtemp(prefix="cfld-examples-")
    weakref.finalize(app, shutil.rmtree, folder, True)  # with the app's other files
    gr.Examples([[p, n] for p, n in zip(example_sources(folder), names[1:4])],
                inputs=[source, pose_pick], label="Examples: procedural people (what the "
                "shipped model was trained on) with example poses", elem_id="examples")
    pose_pick.change(app.editor_from_example, [pose_pick], [table, preview],
                     show_progress="hidden")
    pose_photo.upload(app.editor_from_photo, [pose_photo], [table, preview, pose_pick])
    pose_json.upload(app.editor_from_json, [pose_json], [table, preview, pose_pick])
    table.input(app.editor_preview, [table], [preview], show_progress="hidden")
    preview.select(app.editor_click, [table, joint], [table, preview], show_progress="hidden")
    generate.click(app.generate_from_editor, [source, table, *settings], [result])
    return table


def animation_tab(app: AppHandlers, names: list[str], settings: list[Any], table: Any) -> None:
    """One source through any poses in turn (or an uploaded sequence) → GIF and frames."""
    with gr.Row():
        anim_src = gr.Image(type="filepath", label="Source photo", height=300,
                            sources=["upload"], elem_id="anim-source")
        with gr.Column():
            poses = gr.Dropdown(names + [EDITED_POSE], value=names[:3], multiselect=True,
                                label="Poses to go through, in this order (the edited pose is "
                                      "the pose tab's)", elem_id="anim-poses")
            anim_frames = gr.Slider(2, 48, value=9, step=1, label="Frames in all",
                                    elem_id="anim-frames")
            fps = gr.Slider(1, 30, value=6, step=1, label="GIF frames per second")
            anim_json = gr.File(label="…or a pose sequence JSON ({\"frames\": [...]}), used "
                                      "instead", file_types=[".json"], elem_id="anim-json")
    anim_btn = gr.Button("Animate", variant="primary", elem_id="anim-run")
    with gr.Row():
        anim_gif = gr.Image(label="Animation (GIF)", type="filepath", interactive=False,
                            height=512, buttons=VIEW_BUTTONS, elem_id="anim-gif")
        frames_out = gr.Gallery(label="Frames", columns=4, height="auto", object_fit="contain",
                                format="png", elem_id="anim-frames-out")
    anim_btn.click(app.run_animate_through,
                   [anim_src, anim_json, poses, table, anim_frames, fps, *settings],
                   [anim_gif, frames_out])


__all__ = ["EDITOR_HELP", "animation_tab", "example_sources", "pose_tab"]
