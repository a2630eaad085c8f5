"""Evaluate reenactment like a paper does: pose, expression, identity and image-quality numbers, by pose.

::

    pairs  = pose_sweep_pairs(["sample:astronaut"])                  # or pairs_from_folders / _csv / _video
    result = evaluate(pairs, dg=dgkit.load_dg(allow_synthetic=True), out_dir="eval/")   # rows, resumable
    print(markdown_table(result.rows))                               # mean ± std per method
    fig = large_pose_figure(result.rows)                             # each metric vs |reference yaw|
    export_large_pose("eval/results.csv", "eval/large_pose")         # PNG 300 dpi / PDF / SVG + JSON config

Command line: ``dgkit evaluate sweep -o eval/ --synthetic`` (see ``dgkit evaluate --help``).

What each number compares (per output of each method; outputs live in the reference's 256 crop frame):

====================  ============================================================================================
pose error            |yaw|, |pitch|, |roll| differences (and their mean) between the head pose of landmarks
                      *detected on the output* and the reference's pose: the detected reference photo's pose, or,
                      for generated (sweep) references, the pose they were turned to.
NME vs target         detected output landmarks vs the landmarks the method drew (DG: its IDSG target): did the
                      image come out as the method intended? (box-size normalised, see ``metrics.nme``)
NME vs reference      detected output landmarks vs the reference's landmarks (detected, or generated): pose,
                      expression *and* face shape; a method that copies the reference's shape (naive) scores
                      well here and leaks identity, so read it with the identity cosine.
mouth / eye error     difference of inner-lip / eyelid openings, output vs reference, in face-height units.
identity cosine       identity features of the source crop vs the output (VGG-Face fc7 by default; pass any
                      :class:`~dgkit.evaluate.metrics.IdentityEncoder`, e.g. an ArcFace model).
PSNR / SSIM           output vs the real reference frame, only for self-reenactment (same person: video mode or
                      ``same_person`` pairs); empty otherwise. Identical images give ``PSNR_CAP_DB``.
jitter                for videos: frame-to-frame output landmark motion beyond the reference's motion.
detection failures    outputs with no face found: counted (``detected`` False, ``failure`` says why) and shown
                      as a rate; their landmark metrics are empty, never silently dropped.
====================  ============================================================================================
"""

from __future__ import annotations

from .metrics import (
    PSNR_CAP_DB,
    IdentityEncoder,
    PoseError,
    VggFaceIdentity,
    eye_opening,
    identity_cosine,
    landmark_jitter,
    mouth_opening,
    nme,
    opening_errors,
    pose_errors,
    psnr,
    ssim,
)
from .pairs import (
    Pair,
    load_image_spec,
    pairs_from_csv,
    pairs_from_folders,
    pairs_from_lists,
    pairs_from_video,
    pose_sweep_pairs,
)
from .report import (
    binned,
    binned_markdown,
    export_large_pose,
    large_pose_figure,
    large_pose_from_config,
    latex_table,
    markdown_table,
    summarize,
)
from .results import METRICS, ResultRow, read_results, write_results_csv, write_results_json
from .runner import METHODS, Evaluation, evaluate, method_outputs

__all__ = [
    "METHODS", "METRICS", "PSNR_CAP_DB", "Evaluation", "IdentityEncoder", "Pair", "PoseError", "ResultRow",
    "VggFaceIdentity", "binned", "binned_markdown", "evaluate", "export_large_pose", "eye_opening",
    "identity_cosine", "landmark_jitter", "large_pose_figure", "large_pose_from_config", "latex_table",
    "load_image_spec", "markdown_table", "method_outputs", "mouth_opening", "nme", "opening_errors",
    "pairs_from_csv", "pairs_from_folders", "pairs_from_lists", "pairs_from_video", "pose_errors",
    "pose_sweep_pairs", "psnr", "read_results", "ssim", "summarize", "write_results_csv", "write_results_json",
]
