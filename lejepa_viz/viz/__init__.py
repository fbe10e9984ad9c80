"""Pictures of LeJEPA at work. viz draws what it is given and never trains: it takes built
objects (snapshots, trajectories, an encoder, image tensors), computes a picture's numbers as
plain arrays, then draws them; every entry point returns a :class:`.export.Drawn` record.

- :mod:`.convergence` (the numbers) and :mod:`.animation` (the drawing): the
  embedding-convergence animation of a training run's snapshots or of a point cloud.
- :mod:`.toys`: the toy experiments' animations (a cloud's gradient flow; λ = 0 against λ > 0).
- :mod:`.patches`: a ViT's patch tokens and [CLS] attention on the patch grid, and the map
  kinds drawn from them; :mod:`.pca`, :mod:`.attention`: PCA maps and attention masks;
  :mod:`.maps`: every map beside random initialisation, and across checkpoints.
- :mod:`.video`: a video (or a camera path over a photo) beside its patch-feature map.
- :mod:`.scenes`: synthetic scenes with known masks, the IoU of the maps.
- :mod:`.metrics`: a run's metrics lines as a figure.
- :mod:`.notebook`: plotly + ipywidgets explorers and the live training plot, for notebooks.
- :mod:`.images`, :mod:`.export`: image input with clear errors; atomic GIF / MP4 / PNG output
  and the :class:`~.export.Drawn` record.
"""
