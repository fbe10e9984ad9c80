"""Pictures of LeJEPA at work: each a library call and a ``lejepa-viz`` command.

- :mod:`.convergence`: embedding-convergence animation of a training run's snapshots.
- :mod:`.flow`: SIGReg gradient flow of a point cloud; λ = 0 against λ > 0 for a tiny encoder.
- :mod:`.pca`: PCA maps of ViT patch features, image | map pairs.
- :mod:`.video`: a video (or a camera path over a photo) beside its patch-feature map.
- :mod:`.scenes`: synthetic scenes with known masks, the IoU of the PCA maps.
- :mod:`.widgets`: ipywidgets + plotly explorers for the notebooks.
- :mod:`.images`, :mod:`.export`: image input with clear errors; atomic GIF / MP4 / PNG output.

viz never trains: it reads snapshots, checkpoints and images.
"""
