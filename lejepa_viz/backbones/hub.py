"""The Hugging Face Hub: ``hf:ORG/NAME[@REVISION][/SUBFOLDER]`` specs and their local folders."""

from __future__ import annotations

import re
from pathlib import Path

HUB_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def parse_hub(spec: str) -> tuple[str, str | None, str | None]:
    """``ORG/NAME[@REVISION][/SUBFOLDER]`` → ``(repo_id, revision, subfolder)``.

    Example:
        >>> parse_hub("OK-AI/lejepa-vits16-pretrain-in1k@main/checkpoints/ep010")
        ('OK-AI/lejepa-vits16-pretrain-in1k', 'main', 'checkpoints/ep010')
    """
    m = re.fullmatch(r"([\w.-]+/[\w.-]+?)(?:@([^/]+))?(?:/(.+))?", spec)
    if not m:
        raise ValueError(f"hf: wants ORG/NAME[@REVISION][/SUBFOLDER], got {spec!r}")
    return m.group(1), m.group(2), m.group(3)


def hub_folder(spec: str) -> Path:
    """The local folder of ``hf:`` ``spec``: ``config.json`` and the weights, downloaded once
    through huggingface_hub into its cache (no code from the repository is run)."""
    from huggingface_hub import hf_hub_download

    repo, revision, sub = parse_hub(spec)
    files, last = [], None
    for name in HUB_WEIGHTS:
        try:
            files.append(hf_hub_download(repo, name, subfolder=sub, revision=revision))
            break
        except Exception as err:
            last = err
            if type(err).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
                continue
            break
    if not files:
        where = f"{sub}/" if sub else ""
        url = f"https://huggingface.co/{repo}/resolve/{revision or 'main'}/{where}"
        raise ConnectionError(
            f"could not download hf:{spec} ({type(last).__name__}). Without a network, "
            f"download {url}model.safetensors (or pytorch_model.bin) and {url}config.json "
            f"into one folder and pass that folder as the source instead."
        ) from last
    try:
        hf_hub_download(repo, "config.json", subfolder=sub, revision=revision)
    except Exception:
        pass  # the weights' shapes say the architecture
    return Path(files[0]).parent
