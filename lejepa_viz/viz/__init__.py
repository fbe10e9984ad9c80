"""Pictures of LeJEPA at work. viz draws what it is given and never trains: it reads snapshots,
trajectories, checkpoints and images.

- :mod:`.convergence`: embedding-convergence animation of a training run's snapshots.
- :mod:`.toys`: the toy experiments' animations (a cloud's gradient flow; λ = 0 against λ > 0).
- :mod:`.pca`: PCA maps of ViT patch features, image | map pairs.
- :mod:`.video`: a video (or a camera path over a photo) beside its patch-feature map.
- :mod:`.scenes`: synthetic scenes with known masks, the IoU of the PCA maps.
- :mod:`.metrics`: a run's metrics lines as a figure.
- :mod:`.notebook`: plotly + ipywidgets explorers and the live training plot, for notebooks.
- :mod:`.images`, :mod:`.export`: image input with clear errors; atomic GIF / MP4 / PNG output.
"""
