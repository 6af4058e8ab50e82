"""Mutation check: break the code a test guards and show that the test then fails.

Each mutation replaces one exact piece of text in a *copy* of the repository (src/, benchmarks/,
tests/; the working tree is never touched), runs the tests that guard it in that copy and
records whether they failed. A mutation whose text is no longer found (the code moved) is
reported as such.

    .venv/bin/python scripts/mutation_check.py                # all, table on stdout
    .venv/bin/python scripts/mutation_check.py guidance_sign  # some, by id
    .venv/bin/python scripts/mutation_check.py --list

Run it with ``CFLD_TEST_THREADS=1`` on a busy machine. tests/MUTATIONS.md holds the table of the
last full run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str  # relative to the repository; a hint: the text is searched for if it moved
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids that must fail
    what: str
    count: int = 1  # how many occurrences to replace (all of them must exist)


MUTATIONS: list[Mutation] = [
    # ---------------------------------------------------------------- guidance (test_pipeline)
    Mutation("guidance_sign_uc_down_full", "src/cfld/pipelines/guidance.py",
             "e[0] + s.down * (e[1] - e[0]) + s.full * (e[2] - e[1])",
             "e[0] + s.down * (e[1] - e[0]) - s.full * (e[2] - e[1])",
             ("tests/test_pipeline.py::test_every_guidance_type_equals_its_formula_in_one_batched_call[uc_down_full]",),
             "wrong sign of the appearance term of Eq. (7)"),
    Mutation("guidance_scale_uc_full", "src/cfld/pipelines/guidance.py",
             'GuidanceType("uc_full", (_UC, _FULL),\n                     lambda e, s: e[0] + s.full',
             'GuidanceType("uc_full", (_UC, _FULL),\n                     lambda e, s: e[0] + s.down',
             ("tests/test_pipeline.py::test_every_guidance_type_equals_its_formula_in_one_batched_call[uc_full]",),
             "uc_full uses s_down instead of s_full"),
    Mutation("guidance_branch_updown_full", "src/cfld/pipelines/guidance.py",
             'GuidanceType("updown_full", (_UPDOWN, _FULL)',
             'GuidanceType("updown_full", (_DOWN, _FULL)',
             ("tests/test_pipeline.py::test_every_guidance_type_equals_its_formula_in_one_batched_call[updown_full]",),
             "updown_full's first branch without the appearance biases"),
    Mutation("guidance_branch_down_full", "src/cfld/pipelines/guidance.py",
             'GuidanceType("down_full", (_DOWN, _FULL)',
             'GuidanceType("down_full", (_UC, _FULL)',
             ("tests/test_pipeline.py::test_every_guidance_type_equals_its_formula_in_one_batched_call[down_full]",),
             "down_full's first branch without the pose"),
    Mutation("guidance_cdown_scale", "src/cfld/pipelines/guidance.py",
             "+ s.cond * (e[3] - e[1])", "+ s.all * (e[3] - e[1])",
             ("tests/test_pipeline.py::test_every_guidance_type_equals_its_formula_in_one_batched_call[uc_down_updown_cdown]",),
             "uc_down_updown_cdown uses s_all for the s_g term"),
    Mutation("guidance_updown_full_term", "src/cfld/pipelines/guidance.py",
             "+ s.full * (e[3] - e[2]))", "+ s.full * (e[3] - e[1]))",
             ("tests/test_pipeline.py::test_every_guidance_type_equals_its_formula_in_one_batched_call[uc_down_updown_full]",),
             "uc_down_updown_full: last difference against ε_down instead of ε_ud"),
    Mutation("guidance_none_branch", "src/cfld/pipelines/guidance.py",
             'GuidanceType("none", (_FULL,)', 'GuidanceType("none", (_CDOWN,)',
             ("tests/test_pipeline.py::test_every_guidance_type_equals_its_formula_in_one_batched_call[none]",),
             "no guidance runs (C, pose, 0) instead of (C, pose, A)"),
    # ---------------------------------------------------------------- sampling loop
    Mutation("scheduler_skip_last_step", "src/cfld/pipelines/pipeline_cfld.py",
             "for i, t in enumerate(timesteps):", "for i, t in enumerate(timesteps[:-1]):",
             ("tests/test_pipeline.py::test_every_scheduler_equals_a_hand_written_diffusers_loop",
              "tests/test_speed.py::test_fp32_equals_a_hand_written_loop"),
             "the denoising loop skips the last scheduler step"),
    Mutation("scheduler_no_input_scaling", "src/cfld/pipelines/pipeline_cfld.py",
             "model_in = self.scheduler.scale_model_input(model_in, t)", "pass",
             ("tests/test_pipeline.py::test_every_scheduler_equals_a_hand_written_diffusers_loop[euler]",
              "tests/test_pipeline.py::test_every_scheduler_equals_a_hand_written_diffusers_loop[euler_a]"),
             "scale_model_input is not applied (Euler-type schedulers see unscaled z_t)"),
    Mutation("scheduler_step_no_generator", "src/cfld/pipelines/pipeline_cfld.py",
             'kwargs["generator"] = generator', "pass",
             ("tests/test_pipeline.py::test_every_scheduler_equals_a_hand_written_diffusers_loop[ddpm]",
              "tests/test_pipeline.py::test_every_scheduler_equals_a_hand_written_diffusers_loop[euler_a]"),
             "stochastic steps draw from the global RNG instead of the caller's generator"),
    Mutation("dpm_not_plus_plus", "src/cfld/pipelines/schedulers.py",
             '"dpm": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"})',
             '"dpm": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver"})',
             ("tests/test_pipeline.py::test_every_scheduler_equals_a_hand_written_diffusers_loop[dpm]",),
             "`--scheduler dpm` builds DPM-Solver instead of DPM-Solver++"),
    Mutation("one_source_first_pose_only", "src/cfld/pipelines/inputs.py",
             "return a.expand(b.shape[0], *a.shape[1:]), b",
             "return a.expand(b.shape[0], *a.shape[1:]), b[:1].expand(b.shape[0], *b.shape[1:])",
             ("tests/test_pipeline.py::test_one_source_many_poses",),
             "one source with many poses: every image gets the first pose"),
    Mutation("swin_bf16_drops_shift_mask", "src/cfld/models/source_encoder.py",
             "y = self.attn(y, self.attn_mask)",
             "y = self.attn(y, self.attn_mask if y.dtype == torch.float32 else None)",
             ("tests/test_source_encoder.py::test_bfloat16_forward_close_to_float32",),
             "Swin drops the shifted-window mask in bf16 (1.7 % error; the old 10 % gate passed)"),
    Mutation("cli_generate_wrong_seed", "src/cfld/generation.py",
             "result = pipe(source, pose, generator=torch.Generator().manual_seed(seed), **pipe_kwargs)",
             "result = pipe(source, pose, generator=torch.Generator().manual_seed(seed + 1), **pipe_kwargs)",
             ("tests/test_cli_generate.py::test_generate_single",),
             "`cfld generate` samples with another seed than --seed (the old test only compared two runs)"),
    Mutation("pair_iou_over_target_area", "src/cfld/data/synthetic_root.py",
             "union = np.logical_or(sa, sb).sum()", "union = sb.sum()",
             ("tests/test_data_synthetic.py::test_pairs_are_hard",),
             "the pair difficulty divides by the target's area (the old 0 < IoU < 0.5 passed)"),
    # ---------------------------------------------------------------- editing
    Mutation("lerp_prompt_squared_weight", "src/cfld/models/cfld.py",
             "return CFLDConditions(torch.lerp(self.prompt, other.prompt, weight),",
             "return CFLDConditions(torch.lerp(self.prompt, other.prompt, weight ** 2),",
             ("tests/test_model_tiny.py::test_lerp_is_linear_in_prompt_and_biases",
              "tests/test_editing.py::test_interpolation_endpoints_equal_plain_generation"),
             "prompt interpolation not linear (w² instead of w; the old tests checked the ends only)"),
    Mutation("lerp_biases_kept", "src/cfld/models/cfld.py",
             "biases = {k: torch.lerp(v, other.app_biases[k], weight)",
             "biases = {k: torch.lerp(v, other.app_biases[k], round(weight))",
             ("tests/test_model_tiny.py::test_lerp_is_linear_in_prompt_and_biases",
              "tests/test_editing.py::test_interpolation_endpoints_equal_plain_generation"),
             "appearance biases jump from a to b instead of moving linearly"),
    # ---------------------------------------------------------------- metrics, presets
    Mutation("iou_is_recall", "src/cfld/metrics/parts.py",
             "union = (fg | gt).flatten(1).sum(1).double()",
             "union = gt.flatten(1).sum(1).double()",
             ("tests/test_metrics_parts.py::test_toy_silhouette_and_colours",),
             "silhouette IoU divides by the ground-truth area (recall; the old 0.3-0.9 gate passed)"),
    Mutation("foreground_threshold_doubled", "src/cfld/metrics/parts.py",
             "return diff > threshold", "return diff > 2 * threshold",
             ("tests/test_metrics_parts.py::test_toy_silhouette_and_colours",),
             "foreground threshold twice the documented 20/255"),
    Mutation("synthetic_preset_decoder_depth", "src/cfld/presets.py",
             '"decoder_config": {"num_queries": 8, "dim": 64, "depth": 2, "num_heads": 4}',
             '"decoder_config": {"num_queries": 8, "dim": 64, "depth": 3, "num_heads": 4}',
             ("tests/test_model_tiny.py::test_every_preset_builds_on_meta_with_its_parameter_table[synthetic]",),
             "the synthetic preset's decoder gets a third layer (the old test only asked > 0)"),
    Mutation("fid_pytorch_range", "src/cfld/metrics/fid.py",
             "x = (x * 255 - 128) / 128", "x = x * 2 - 1",
             ("tests/test_metrics_fid_reference.py::test_standard_fid_features_equal_fid_helpers_own_extraction",),
             "standard FID feeds [-1, 1] instead of TF's [-1, 0.992]"),
    Mutation("fid_tf_resize_half_pixel", "src/cfld/metrics/fid.py",
             "src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)",
             "src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)",
             ("tests/test_metrics_fid_reference.py::test_standard_fid_features_equal_fid_helpers_own_extraction",),
             "standard FID resizes with half-pixel centres instead of TF-1's legacy rule"),
    Mutation("fid_cfld_no_transform_input", "src/cfld/metrics/fid.py",
             "self.net = InceptionV3(transform_input=True)",
             "self.net = InceptionV3(transform_input=False)",
             ("tests/test_metrics_fid_reference.py::test_cfld_fid_features_equal_torchvision_inception",),
             "fid_cfld without the authors' transform_input"),
    Mutation("fid_cfld_antialias", "src/cfld/metrics/fid.py",
             'x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False)',
             'x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)',
             ("tests/test_metrics_fid_reference.py::test_cfld_fid_features_equal_torchvision_inception",),
             "fid_cfld resizes with antialias (the authors do not)"),
    Mutation("eval_crop_not_squash", "src/cfld/pipelines/geometry.py",
             "    return F.interpolate(images, size=tuple(size), mode=\"bicubic\", antialias=True,",
             "    if images.shape[-1] == images.shape[-2] and size[0] != size[1]:\n"
             "        w = round(images.shape[-2] * size[1] / size[0])\n"
             "        o = (images.shape[-1] - w) // 2\n"
             "        images = images[..., o:o + w]\n"
             "    return F.interpolate(images, size=tuple(size), mode=\"bicubic\", antialias=True,",
             ("tests/test_evaluate.py::test_square_outputs_are_squashed_and_truncated",),
             "square outputs are centre-cropped to the aspect instead of squashed"),
    Mutation("eval_rounding_not_truncation", "src/cfld/pipelines/geometry.py",
             "return (images * 255).clamp(0, 255).to(torch.uint8)",
             "return (images * 255).round().clamp(0, 255).to(torch.uint8)",
             ("tests/test_evaluate.py::test_square_outputs_are_squashed_and_truncated",),
             "generated images rounded to 8 bits instead of truncated (the old 0.5 < SSIM < 1 passed)"),
    # ---------------------------------------------------------------- shipped model, benchmarks
    Mutation("shipped_model_degraded", "src/cfld/shipped.py",
             "        pipe = load_shipped_pipeline()\n    else:",
             "        pipe = load_shipped_pipeline()\n"
             "        import torch\n"
             "        torch.manual_seed(0)\n"
             "        with torch.no_grad():\n"
             "            for p in pipe.model.unet.parameters():\n"
             "                if p.numel() > 1:\n"
             "                    p.add_(torch.randn_like(p) * 0.1 * p.std())\n"
             "    else:",
             ("tests/test_shipped_model.py::test_shipped_model_scores_what_was_measured_and_beats_copying_the_source",),
             "shipped UNet weights degraded by 10 % noise (IoU 0.777 -> 0.717; the old >= 0.5 gate passed)"),
    Mutation("ceiling_without_downscale", "benchmarks/shipped_model_quality.py",
             "load_image(root / TEST_DIR / target, tuple(pipe.image_size))",
             "load_image(root / TEST_DIR / target, size)",
             ("tests/test_benchmarks.py::test_shipped_model_quality_resolution_ceiling",),
             "the resolution ceiling skips the trip through 64²"),
    Mutation("ceiling_without_quantisation", "benchmarks/shipped_model_quality.py",
             "back = quantize(resize_output(small, size)).float() / 255",
             "back = resize_output(small, size)",
             ("tests/test_benchmarks.py::test_shipped_model_quality_resolution_ceiling",),
             "the resolution ceiling skips the 8-bit truncation"),
    Mutation("bench_limit_fraction_of_wrong_peak", "benchmarks/bench_limit.py",
             '"fraction_of_peak": achieved / peaks[name]["flops_per_s"],',
             '"fraction_of_peak": achieved / peaks["fp32"]["flops_per_s"],',
             ("tests/test_benchmarks.py::test_bench_limit_quick",),
             "bench_limit divides the bf16 step by the fp32 matmul peak"),
    Mutation("bench_training_one_adam_moment", "benchmarks/bench_training.py",
             "grads, adam = trainable, 2 * trainable", "grads, adam = trainable, trainable",
             ("tests/test_benchmarks.py::test_bench_training_gpu_estimate_arithmetic",),
             "the GPU estimate counts one Adam moment instead of two"),
    Mutation("fidelity_compares_the_wrong_half", "benchmarks/fidelity.py",
             'row("prompt_c", [rel(cond.prompt, ref["c"][batch:])])',
             'row("prompt_c", [rel(cond.prompt, ref["c"][:batch])])',
             ("tests/test_benchmarks.py::test_fidelity_script_measures_within_the_required_tolerances",),
             "the fidelity script compares the prompt with the learnable-vector half of the fixture"),
    # ---------------------------------------------------------------- README figures
    Mutation("readme_figure_edited", "README.md",
             "| Swin features, 4 stages | 1.9e-7 | 1e-5 |",
             "| Swin features, 4 stages | 1.8e-7 | 1e-5 |",
             ("tests/test_readme_claims.py",),
             "a README figure no longer equals its stored result"),
    Mutation("readme_unbacked_number_added", "README.md",
             "| ours, fp32 + channels-last | 1 (3) | 1 | 1.5e-6 |",
             "| ours, fp32 + channels-last | 1 (3) | 1 | 1.5e-6 (1.03× faster) |",
             ("tests/test_readme_claims.py::test_no_unregistered_number_in_the_tables",),
             "a number without a stored result appears in a table of a strict section"),
    Mutation("result_without_command", "benchmarks/results/bench_training.json",
             '"command": "python benchmarks/bench_training.py',
             '"command_was": "python benchmarks/bench_training.py',
             ("tests/test_readme_claims.py::test_results_record_how_they_were_made",),
             "a result the README cites does not record its command"),
    Mutation("readme_intro_bound_edited", "README.md",
             "reproduced to a relative error of at most 1.4e-6 in float32",
             "reproduced to a relative error of at most 1e-6 in float32",
             ("tests/test_readme_claims.py",),
             "the introduction's fidelity bound is not the largest stored error"),
    Mutation("readme_sampler_test_figure_edited", "README.md",
             "the pick DDIM-10 0.776 and", "the pick DDIM-10 0.786 and",
             ("tests/test_readme_claims.py",),
             "a fast-sampler figure on the test people no longer equals its stored result"),
    # ---------------------------------------------------------------- speed options (test_speed)
    Mutation("fp32_request_ignored", "src/cfld/pipelines/pipeline_cfld.py",
             "(docs/fidelity.md).\"\"\"\n        self._autocast = None",
             "(docs/fidelity.md).\"\"\"\n        self._autocast = \"auto\"",
             ("tests/test_speed.py::test_fp32_equals_a_hand_written_loop",),
             "disable_autocast() leaves mixed precision on (fp32 asked, bf16 run)"),
    Mutation("default_precision_fp32", "src/cfld/pipelines/pipeline_cfld.py",
             "self._autocast: str | torch.dtype | None = speed.DEFAULT_AUTOCAST",
             "self._autocast: str | torch.dtype | None = None",
             ("tests/test_speed.py::test_default_precision_is_mixed_where_the_hardware_has_it",
              "tests/test_benchmarks.py::test_bench_vs_authors_quick"),
             "a new pipeline runs fp32, not the documented mixed-precision default"),
    # ---------------------------------------------------------------- EMA target, resizing
    Mutation("ema_never_updated", "src/cfld/training/ema_target.py",
             "inner.register_step_post_hook(lambda *_: self.update())", "pass",
             ("tests/test_ema_target.py::test_update_is_the_lcd_rule_and_only_after_real_steps",),
             "LCD's EMA target is never updated after optimiser steps"),
    Mutation("ema_not_checkpointed", "src/cfld/training/ema_target.py",
             "state[STATE_KEY] = {\"decay\": self.decay, \"weights\": self.state_dict()}",
             "pass",
             ("tests/test_ema_target.py::test_it_travels_inside_the_optimiser_state_and_restores_exactly",
              "tests/test_distill.py::test_resume_is_exact"),
             "the EMA target is left out of the checkpointed optimiser state"),
    Mutation("ema_target_unused", "src/cfld/training/distill_objective.py",
             "target_net = self.ema.in_place_of(self.model) if self.ema else nullcontext(self.model)",
             "target_net = nullcontext(self.model)",
             ("tests/test_distill.py::test_resume_is_exact",),
             "LCD measures against the student itself although an EMA target exists"),
    Mutation("bias_table_corners_moved", "src/cfld/models/resize_positions.py",
             'mode="bicubic", align_corners=True', 'mode="bicubic", align_corners=False',
             ("tests/test_resize_positions.py::test_bias_table_interpolation_by_hand",),
             "bias-table interpolation does not keep the corner offsets' values"),
    Mutation("compile_is_noop", "src/cfld/pipelines/speed.py",
             "    unet.compile(**compile_kwargs)\n", "    unet._compiled_call_impl = unet.forward\n",
             ("tests/test_speed.py::test_compile_unet_runs_the_compiled_graph_in_place",),
             "compile_unet only pretends to compile"),
    Mutation("compile_copy", "src/cfld/pipelines/speed.py",
             "    unet.compile(**compile_kwargs)\n    return unet\n",
             "    return torch.compile(unet, **compile_kwargs)\n",
             ("tests/test_speed.py::test_compile_unet_runs_the_compiled_graph_in_place",),
             "compile_unet compiles a wrapper the pipeline never calls"),
    # ---------------------------------------------------------------- app handlers
    Mutation("app_scales_swapped", "src/cfld/app/handlers.py",
             'scale_pose=checked["scale_pose"], scale_app=checked["scale_app"]',
             'scale_pose=checked["scale_app"], scale_app=checked["scale_pose"]',
             ("tests/test_app_handlers.py::test_generate_handler_is_the_pipeline_call_with_the_panels_settings",),
             "the app passes the pose scale as the appearance scale and back (the old test checked the size)"),
    Mutation("app_skeleton_height", "src/cfld/app/handlers.py",
             "skel_h = max(out_h, 256)", "skel_h = max(out_h, 128)",
             ("tests/test_app_handlers.py::test_generate_handler_is_the_pipeline_call_with_the_panels_settings",),
             "the skeleton beside the result is 128 rows high instead of at least 256"),
    Mutation("app_seed_ignored", "src/cfld/app/handlers.py",
             "manual_seed(int(seed))", "manual_seed(0)",
             ("tests/test_app_handlers.py::test_generate_handler_is_the_pipeline_call_with_the_panels_settings",
              "tests/test_app.py::test_handlers_of_every_tab_equal_the_library_calls_with_the_panels_settings"),
             "the app samples with seed 0 whatever the panel says"),
    Mutation("app_editor_pose_ignored", "src/cfld/app/handlers.py",
             "kp = pose_editor.table_to_keypoints(table)", 'kp = self.gallery["walking"]',
             ("tests/test_app.py::test_handlers_of_every_tab_equal_the_library_calls_with_the_panels_settings",),
             "generating from the editor uses a gallery pose instead of the edited one"),
    Mutation("app_parts_mask_ignored", "src/cfld/app/handlers.py",
             "mask = Image.fromarray(part_mask(ref_kp, list(parts)))",
             'mask = Image.fromarray(part_mask(ref_kp, "body"))',
             ("tests/test_app.py::test_handlers_of_every_tab_equal_the_library_calls_with_the_panels_settings",),
             "style transfer by ticked body parts restyles the whole body"),
    Mutation("app_interpolate_one_source", "src/cfld/app/handlers.py",
             "images = interpolate(self.pipe, a, b, kp,", "images = interpolate(self.pipe, a, a, kp,",
             ("tests/test_app.py::test_handlers_of_every_tab_equal_the_library_calls_with_the_panels_settings",),
             "the interpolation tab interpolates source A with itself"),
    Mutation("app_animate_reversed", "src/cfld/app/handlers.py",
             "poses = interpolate_sequence(keys, int(", "poses = interpolate_sequence(keys[::-1], int(",
             ("tests/test_app.py::test_handlers_of_every_tab_equal_the_library_calls_with_the_panels_settings",),
             "the animation goes through the chosen poses in reverse order"),
    # ---------------------------------------------------------------- CLI edit / animate
    Mutation("cli_style_first_part_only", "src/cfld/commands/edit.py",
             "mask = [m.strip() for m in mask]", "mask = [m.strip() for m in mask][:1]",
             ("tests/test_editing.py::test_cli_edit_style_and_interpolate_write_the_library_results",),
             "`cfld edit style --parts a,b` restyles only the first part (the old test checked the size)"),
    Mutation("cli_interpolate_sources_swapped", "src/cfld/commands/edit.py",
             "images = interpolate(pipe, args.source_a, args.source_b, args.pose,",
             "images = interpolate(pipe, args.source_b, args.source_a, args.pose,",
             ("tests/test_editing.py::test_cli_edit_style_and_interpolate_write_the_library_results",),
             "`cfld edit interpolate` runs from source B to source A"),
    Mutation("cli_animate_poses_reversed", "src/cfld/commands/animate.py",
             "frames = animate(pipe, args.source, poses, generator=generator,",
             "frames = animate(pipe, args.source, poses[::-1], generator=generator,",
             ("tests/test_animation.py::test_cli_animate_writes_the_library_frames",),
             "`cfld animate` writes the frames in reverse order (the old test checked file names)"),
    Mutation("cli_sampling_seed_ignored", "src/cfld/commands/_common.py",
             "manual_seed(args.seed)", "manual_seed(0)",
             ("tests/test_editing.py::test_cli_edit_style_and_interpolate_write_the_library_results", "tests/test_animation.py::test_cli_animate_writes_the_library_frames"),
             "the edit and animate commands sample with seed 0 whatever --seed says"),
    Mutation("gif_duration_wrong", "src/cfld/animation.py",
             'extension=".gif", duration=1000.0 / fps,', 'extension=".gif", duration=1000.0 * fps,',
             ("tests/test_animation.py::test_cli_animate_writes_the_library_frames",),
             "the GIF's frame duration is not 1/fps seconds"),
    Mutation("demo_steps_ignored", "src/cfld/demo.py",
             'steps = num_inference_steps or DEMO_SETTINGS["steps"]', 'steps = DEMO_SETTINGS["steps"]',
             ("tests/test_cli_generate.py::test_demo_with_a_model_folder_scores_what_score_pairs_scores",),
             "`cfld demo --steps` is ignored (the old test checked the metric names)"),
    Mutation("demo_seed_ignored", "src/cfld/demo.py",
             "result = score_pairs(pipe, root, num_pairs, steps, seed, batch_size=num_pairs,",
             "result = score_pairs(pipe, root, num_pairs, steps, 0, batch_size=num_pairs,",
             ("tests/test_cli_generate.py::test_demo_with_a_model_folder_scores_what_score_pairs_scores",),
             "`cfld demo` samples with seed 0 whatever --seed says"),
    Mutation("cli_synth_seed_ignored", "src/cfld/commands/data.py",
             "tmp, people=args.people, poses=args.poses, size=size, seed=args.seed,",
             "tmp, people=args.people, poses=args.poses, size=size, seed=0,",
             ("tests/test_data_synthetic.py::test_cli_synth_writes_synthesize_with_its_flags_and_caps_pairs",),
             "`cfld data synth --seed` is ignored (the old test counted pairs)"),
    Mutation("cli_synth_iou_of_test_split", "src/cfld/commands/data.py",
             "pair_silhouette_iou(args.out, 'train'):.3f", "pair_silhouette_iou(args.out, 'test'):.3f",
             ("tests/test_data_synthetic.py::test_cli_synth_writes_synthesize_with_its_flags_and_caps_pairs",),
             "`cfld data synth --iou` prints the test split's IoU as the training split's"),
    Mutation("cli_pose_mirrors_the_photo", "src/cfld/commands/pose.py",
             'photo = open_image(image_path, what="photo")',
             'from PIL import Image\n'
             '    photo = open_image(image_path, what="photo").transpose(Image.FLIP_LEFT_RIGHT)',
             ("tests/test_pose_estimate.py::test_cli_pose_writes_json",),
             "`cfld pose` estimates on the mirrored photo (the old test checked 3 joints were found)"),
    # ---------------------------------------------------------------- training with an SD VAE
    Mutation("sd_vae_posterior_mean", "src/cfld/training/build.py",
             "z = mean + std * eps.to(device=mean.device, dtype=mean.dtype)",
             "z = mean + 0 * eps.to(device=mean.device, dtype=mean.dtype)",
             ("tests/test_training.py::test_train_with_an_sd_vae_gives_the_hand_computed_first_loss",),
             "training encodes with the posterior mean instead of a sample (the old test checked a finite loss)"),
    Mutation("sd_vae_no_scaling_factor", "src/cfld/training/build.py",
             "return z.float() * float(vae.config.scaling_factor)", "return z.float()",
             ("tests/test_training.py::test_train_with_an_sd_vae_gives_the_hand_computed_first_loss",),
             "training latents without the VAE's scaling factor"),
    Mutation("sd_vae_posterior_global_rng", "src/cfld/training/loop.py",
             "latents = encode_latents(run.vae, images, draws=draws)",
             "latents = encode_latents(run.vae, images)",
             ("tests/test_training.py::test_train_with_an_sd_vae_gives_the_hand_computed_first_loss",),
             "the posterior noise comes from the global RNG, not the pair's stream"),
    # ---------------------------------------------------------------- editing, FID contract
    Mutation("latent_mask_min_pool", "src/cfld/pipelines/editing.py",
             "m = F.adaptive_max_pool2d(m, (h, w))", "m = -F.adaptive_max_pool2d(-m, (h, w))",
             ("tests/test_editing.py::test_style_transfer_png_mask_is_the_hand_pooled_latent_mask_and_pil_is_truncated",),
             "a latent cell is restyled only when the mask covers all of it (the old test checked the size)"),
    Mutation("pil_output_rounded", "src/cfld/pipelines/geometry.py",
             "return (images * 255).clamp(0, 255).to(torch.uint8)",
             "return (images * 255).round().clamp(0, 255).to(torch.uint8)",
             ("tests/test_editing.py::test_style_transfer_png_mask_is_the_hand_pooled_latent_mask_and_pil_is_truncated",),
             "PIL outputs rounded to 8 bits instead of truncated"),
    Mutation("fid_no_clip", "src/cfld/metrics/fid.py",
             "x = self._resize(images.to(device=dev, dtype=torch.float32).clamp(0, 1))",
             "x = self._resize(images.to(device=dev, dtype=torch.float32))",
             ("tests/test_metrics_fid.py::test_fid_extractor_feeds_its_net_tf_resized_tf_scaled_images",),
             "standard FID does not clip inputs to [0, 1] (the old contract test checked shapes)"),
    Mutation("fid_tf_scaling_off_by_one", "src/cfld/metrics/fid.py",
             "x = (x * 255 - 128) / 128", "x = (x * 255 - 127.5) / 127.5",
             ("tests/test_metrics_fid.py::test_fid_extractor_feeds_its_net_tf_resized_tf_scaled_images",),
             "standard FID scales onto [-1, 1] instead of TF's [-1, 0.992]"),
    Mutation("psnr_cap_halved", "src/cfld/metrics/scoring.py",
             'PSNR = PairMetric("psnr", lambda pred, b: psnr(pred, b.gt), cap=PSNR_CAP_DB)',
             'PSNR = PairMetric("psnr", lambda pred, b: psnr(pred, b.gt), cap=PSNR_CAP_DB / 2)',
             ("tests/test_market.py::test_generate_and_evaluate_at_128x64",),
             "identical pairs count as half the documented PSNR cap (the old finite-PSNR gate passed)"),
    Mutation("identical_pairs_not_counted", "src/cfld/metrics/evaluate.py",
             'n_identical = scores.count("model", "psnr", "capped")', "n_identical = 0",
             ("tests/test_market.py::test_generate_and_evaluate_at_128x64",),
             "evaluation reports no pixel-identical pairs when there are some"),
    # ---------------------------------------------------------------- sampler choice (issue 21)
    Mutation("sampler_grid_on_test_people", "benchmarks/bench_sampler_quality.py",
             'val = held_out_pairs(pipe, Path(tmp) / "val", n_val, people, args.val_people_seed)',
             'val = held_out_pairs(pipe, Path(tmp) / "val", n_val, people, args.test_people_seed)',
             ("tests/test_bench_sampler_split.py::test_choice_on_validation_people_report_on_test_people",),
             "the sampler is chosen on the test people"),
    Mutation("sampler_report_on_validation_people", "benchmarks/bench_sampler_quality.py",
             "**evaluate(pipe, test, test_configs, ref_steps, args.chunk)",
             "**evaluate(pipe, val, test_configs, ref_steps, args.chunk)",
             ("tests/test_bench_sampler_split.py::test_choice_on_validation_people_report_on_test_people",),
             "the choice is reported on the validation people it was made on"),
    Mutation("sampler_pick_most_steps", "benchmarks/bench_sampler_quality.py",
             'pick = min(ok, key=lambda r: (r["steps"], -r["ssim"]))',
             'pick = max(ok, key=lambda r: (r["steps"], -r["ssim"]))',
             ("tests/test_bench_sampler_split.py::test_the_pick_is_the_fewest_steps_within_the_spread",),
             "the pick is the slowest setting within the spread"),
    Mutation("sampler_same_people_allowed", "benchmarks/bench_sampler_quality.py",
             "if args.val_people_seed == args.test_people_seed:", "if False:",
             ("tests/test_bench_sampler_split.py::test_refuses_shared_or_training_people",),
             "validation and test may be the same people"),
    # ---------------------------------------------------------------- part-balanced loss
    Mutation("part_weight_ignored", "src/cfld/training/objective.py",
             "        sq = sq * loss_weight.to(sq.dtype)", "        sq = sq",
             ("tests/test_part_weights.py",),
             "the objective ignores the part-balanced weights"),
    Mutation("part_weight_not_normalised", "src/cfld/training/part_weights.py",
             "pixel = pixel / pixel.mean(1, keepdim=True)", "pixel = pixel",
             ("tests/test_part_weights.py",),
             "the part weights are not normalised to a mean of 1 (the loss changes scale)"),
]


SEARCHED = ("src", "benchmarks")
IGNORED = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache",
                                 "runs", "demo", "outputs", "test-artifacts")


def _apply(root: Path, m: Mutation) -> str | None:
    """Apply ``m`` to the copy at ``root``; return the file changed, or None if the text is gone."""
    hint = root / m.file
    if hint.is_file() and hint.read_text().count(m.old) >= m.count:
        path = hint
    else:
        found = [p for d in SEARCHED for p in sorted((root / d).rglob("*.py"))
                 if m.old in p.read_text()]
        if len(found) != 1:
            return None
        path = found[0]
    text = path.read_text()
    if text.count(m.old) < m.count:
        return None
    path.write_text(text.replace(m.old, m.new, m.count))
    return str(path.relative_to(root))


def run(m: Mutation, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cfld-mut-") as tmp:
        root = Path(tmp) / "main"
        shutil.copytree(REPO, root, ignore=IGNORED)
        shared = REPO.parent / "shared"
        if shared.is_dir():  # the tests find their fixtures beside the repository
            (Path(tmp) / "shared").symlink_to(shared)
        changed = _apply(root, m)
        if changed is None:
            return {"id": m.id, "result": "not applied (text not found)", "seconds": 0.0}
        env = {**os.environ, "PYTHONPATH": str(root / "src"), "CFLD_REQUIRE_ALL": "1",
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.setdefault("CFLD_TEST_THREADS", "1")
        check = subprocess.run([sys.executable, "-c", "import cfld; print(cfld.__file__)"],
                               env=env, capture_output=True, text=True, cwd=root)
        if not check.stdout.strip().startswith(str(root)):
            raise RuntimeError(f"the mutated copy is not the one imported: {check.stdout}")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"--timeout={timeout}", *m.tests], env=env, cwd=root,
                              capture_output=True, text=True)
        summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
        result = "caught" if proc.returncode == 1 else f"NOT caught (rc {proc.returncode})"
        return {"id": m.id, "file": changed, "result": result, "summary": summary,
                "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="mutation ids (default: all)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--doc", type=Path, default=None,
                        help="also write the table and every exact mutation to this markdown "
                             "file (tests/MUTATIONS.md)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.ids or m.id in args.ids]
    if args.list:
        for m in chosen:
            print(f"{m.id}: {m.what}")
        return 0
    unknown = set(args.ids) - {m.id for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation id(s): {sorted(unknown)}")
    bad, results = 0, []
    print("| mutation | file | result | tests (pytest summary) | s |")
    print("|---|---|---|---|---|")
    for m in chosen:
        r = run(m, args.timeout)
        results.append((m, r))
        bad += r["result"] != "caught"
        print(f"| `{m.id}`: {m.what} | {r.get('file', '—')} | {r['result']} | "
              f"{r.get('summary', '')} | {r['seconds']} |", flush=True)
    if args.doc:
        args.doc.write_text(_doc(_merge(results, _previous(args.doc))))
    return 1 if bad else 0


def _previous(doc: Path) -> dict[str, dict]:
    """The results an earlier --doc run wrote into ``doc`` (its table), by mutation id."""
    if not doc.is_file():
        return {}
    found = {}
    for line in doc.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and "`:" in cells[0]:
            found[cells[0][1:cells[0].index("`:")]] = {
                "file": cells[1].strip("`"), "result": cells[2], "summary": cells[3]}
    return found


def _merge(results: list[tuple[Mutation, dict]],
           previous: dict[str, dict]) -> list[tuple[Mutation, dict]]:
    """Every mutation in MUTATIONS order: this run's result, else the earlier one (a run of some
    ids updates their rows and keeps the others)."""
    now = {m.id: r for m, r in results}
    return [(m, now.get(m.id) or previous[m.id]) for m in MUTATIONS
            if m.id in now or m.id in previous]


def _doc(results: list[tuple[Mutation, dict]]) -> str:
    """tests/MUTATIONS.md: the table, then each mutation's exact text and guarding tests."""
    caught = sum(r["result"] == "caught" for _, r in results)
    lines = [
        "# Mutations: each rewritten test fails when the behaviour it names is broken",
        "",
        "Written by `CFLD_TEST_THREADS=1 .venv/bin/python scripts/mutation_check.py --doc "
        "tests/MUTATIONS.md`",
        f"({time.strftime('%Y-%m-%d', time.gmtime())}): each mutation replaces one exact piece "
        "of text in a copy of the repository, then runs the tests listed under it against that "
        "copy (with `CFLD_REQUIRE_ALL=1`). \"caught\" = pytest exited 1: at least one of them "
        "failed.",
        "",
        f"**{caught} of {len(results)} mutations caught.**",
        "",
        "| mutation | file | result | pytest summary |",
        "|---|---|---|---|",
    ]
    for m, r in results:
        lines.append(f"| `{m.id}`: {m.what} | `{r.get('file', m.file)}` | {r['result']} | "
                     f"{r.get('summary', '')} |")
    lines += ["", "## The exact mutations", ""]
    for m, r in results:
        lines += [f"### `{m.id}`", "", m.what + ".", "", f"In `{r.get('file', m.file)}`, "
                  "replace", "", "```python", m.old, "```", "", "with", "", "```python", m.new,
                  "```", "", "Guarding tests: " + ", ".join(f"`{t}`" for t in m.tests)
                  + f" — **{r['result']}** ({r.get('summary', '')}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
