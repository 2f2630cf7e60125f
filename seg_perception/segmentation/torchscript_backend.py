"""Torch segmenters: eager nn.Modules and TorchScript files behind one `Segmenter` interface."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seg_perception.segmentation.model_spec import ModelLoadError


class TorchSegmenter:
    """Call a torch module and return its logits tensor (unwraps torchvision's {'out': ...})."""

    backend = 'torch'
    fixed_input_size = False  # convolutional networks run at any input size

    def __init__(self, module: nn.Module, *, device: torch.device) -> None:
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.produces_instances = bool(getattr(module, 'produces_instances', False))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Return (N, C, h, w) logits."""
        out = self.module(batch)
        if isinstance(out, dict):
            out = out['out']
        return out

    def forward_with_instances(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return logits and instance ids (only for modules that produce instances)."""
        return self.module.forward_with_instances(batch)

    def to_channels_last(self) -> None:
        """Store the module's weights in channels_last memory format."""
        self.module = self.module.to(memory_format=torch.channels_last)

    def compile_module(self) -> None:
        """Wrap the module with torch.compile (compiled lazily on the first call)."""
        self.module = torch.compile(self.module)


def load_torchscript(path: str | Path, *, device: torch.device) -> nn.Module:
    """Load a TorchScript file onto `device`; raise ModelLoadError when it is not one."""
    try:
        return torch.jit.load(str(path), map_location=torch.device(device)).eval()
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelLoadError(f'{path}: not a loadable TorchScript file ({exc})') from exc


def export_torchscript(model: nn.Module, path: str | Path, *, example: torch.Tensor,
                       trace: bool = True) -> Path:
    """Trace (or script) `model` and save it; the {'out': ...} output is kept as a dict."""
    model = model.eval()
    with torch.no_grad():
        if trace:
            scripted = torch.jit.trace(model, example, strict=False)
        else:
            scripted = torch.jit.script(model)
    path = Path(path)
    scripted.save(str(path))
    return path
