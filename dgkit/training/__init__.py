"""Training DG on your own data (losses: docs/how-dg-works.md §9).

Modules (import them directly; nothing heavy is imported here):

* :mod:`dgkit.training.data`     the dataset folder layout, :func:`~dgkit.training.data.load_manifest`,
  :class:`~dgkit.training.data.LandmarkDataset` (IDSG), :class:`~dgkit.training.data.FaceDataset` (RFG),
  :func:`~dgkit.training.data.identity_features` (cached VGG-Face fc7) and
  :func:`~dgkit.training.data.make_synthetic_dataset` (a tiny dataset for tests and tutorials).
* :mod:`dgkit.training.prepare`  ``dgkit prepare-data``: photos/videos of people -> a dataset folder
  (detect, align, draw sketches; resumable and parallel).
* :mod:`dgkit.training.losses`, :mod:`dgkit.training.engine`, :mod:`dgkit.training.cli`: the IDSG and RFG
  losses, the training loops and ``dgkit train``.
"""
