"""INT8 post-training quantisation calibrated on synthetic cell frames (no labels needed).

Two outputs, chosen by the file suffix:

* ``.xml``: an OpenVINO IR quantised by NNCF (``nncf.quantize``), run with backend openvino;
* ``.onnx``: an ONNX graph with QDQ nodes from ONNX Runtime's static quantisation (per-channel
  int8 weights, uint8 activations), run with backend onnxruntime or openvino.

Calibration frames are synthetic cell frames from the training seed range (never the held-out
evaluation seeds), normalised exactly as the engine does. The quantised model is kept only when
its labels agree with the fp32 model on at least `min_agreement` of the pixels of separate check
frames; otherwise nothing is written.
"""

from __future__ import annotations

from dataclasses import replace
import hashlib
import json
from pathlib import Path
import tempfile
from typing import Any, Callable, Sequence

import numpy as np
import torch

from seg_perception.segmentation.backends import graph_segmenter
from seg_perception.segmentation.export import (
    CHECK_SEED_START,
    compare,
    ExportError,
    load_torch_module,
    on_cpu,
    Parity,
    parity_batches,
    sidecar_doc,
    write_onnx,
)
from seg_perception.segmentation.model_spec import ModelLoadError, ModelSpec

__all__ = ['CALIBRATIONS', 'QUANTIZED_SUFFIXES', 'QuantizeError', 'quantize_model']

#: calibration data sources
CALIBRATIONS = ('synthetic',)
#: output suffix -> the tool that quantises
QUANTIZED_SUFFIXES = {'.xml': 'nncf', '.onnx': 'onnxruntime'}
#: check frames start here (after the calibration frames, still in the training range)
CHECK_OFFSET = 5_000
#: NNCF's accuracy-control frames: their own seeds, between calibration and check frames
VALIDATION_OFFSET = 3_000
VALIDATION_FRAMES = 24


class QuantizeError(ExportError):
    """Raised when a model cannot be quantised or the INT8 model disagrees with fp32."""


def _fp32_onnx(source: str, spec_path: str | Path | None, input_size: tuple[int, int] | None,
               folder: Path) -> tuple[Path, ModelSpec]:
    """Return an fp32 ONNX graph of `source` (exported into `folder` for torch models)."""
    if Path(source).suffix.lower() == '.onnx':
        from seg_perception.segmentation.loader import sidecar_for
        if not Path(source).is_file():
            raise QuantizeError(f'model file {source!r} does not exist')
        return Path(source), sidecar_for(Path(source), spec_path)
    if Path(source).suffix.lower() == '.xml':
        raise QuantizeError(f'{source!r} is an OpenVINO IR; quantise its .onnx or the .pt')
    module, spec = load_torch_module(source, spec_path)
    if input_size is not None:
        spec = replace(spec, input_size=tuple(input_size))
    path = folder / 'fp32.onnx'
    write_onnx(on_cpu(module), spec, path, dynamic_batch=False)
    return path, spec


def _quantize_openvino(fp32: Path, out: Path, batches: Sequence[np.ndarray],
                       validation: Sequence[np.ndarray], preset: str, max_drop: float) -> None:
    """Quantise with NNCF, keeping in fp32 the layers that cost label agreement.

    NNCF's accuracy control quantises everything, measures the label agreement with the fp32
    model on `validation` frames, and reverts the most sensitive layers to fp32 until it drops
    by at most `max_drop` (for the default model: only the first convolution, which sees the
    raw normalised pixels).
    """
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise QuantizeError('OpenVINO INT8 needs the openvino and nncf packages (pip install '
                            'openvino nncf)') from exc
    core = ov.Core()
    model = core.read_model(str(fp32))
    reference = core.compile_model(model, 'CPU')
    expected = [np.asarray(reference(b)[0]).argmax(1) for b in validation]

    def agreement(compiled: Any, frames: Sequence[np.ndarray]) -> float:
        return float(np.mean([np.mean(np.asarray(compiled(b)[0]).argmax(1) == want)
                              for b, want in zip(frames, expected)]))

    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(list(batches)), nncf.Dataset(list(validation)),
        validation_fn=agreement, max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(batches), preset=getattr(nncf.QuantizationPreset, preset.upper()))
    ov.save_model(quantized, str(out))


class _Reader:
    """ONNX Runtime's calibration reader protocol over a list of batches."""

    def __init__(self, name: str, batches: Sequence[np.ndarray]) -> None:
        self._items = iter([{name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        """Return the next calibration input, or None at the end."""
        return next(self._items, None)


def _quantize_onnxruntime(fp32: Path, out: Path, batches: Sequence[np.ndarray],
                          preset: str) -> None:
    """Quantise with ONNX Runtime's static QDQ quantisation; first and last conv stay fp32.

    Those two see the raw normalised pixels and produce the logits the labels are argmaxed
    from; in int8 they cost the most agreement (NNCF's accuracy control finds the same).
    Activation ranges from the 99.999th percentile instead of min/max: on the default model
    (32 calibration, 16 check frames) 99.5 % label agreement instead of 99.1 %.
    """
    try:
        import onnxruntime as ort
        from onnxruntime import quantization
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise QuantizeError('ONNX Runtime INT8 needs onnxruntime and onnx (pip install '
                            'onnxruntime onnx)') from exc
    import onnx
    name = ort.InferenceSession(str(fp32), providers=['CPUExecutionProvider']) \
        .get_inputs()[0].name
    convs = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == 'Conv']
    prepared = out.with_name(f'.{out.stem}.pre.onnx')
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        # mixed: symmetric int8 weights, asymmetric uint8 activations (ORT's CPU kernels)
        quantization.quantize_static(
            str(prepared), str(out), _Reader(name, batches), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=convs[:1] + convs[-1:],
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={'ActivationSymmetric': preset == 'performance'})
    finally:
        prepared.unlink(missing_ok=True)


def quantize_model(source: str, *, out: str | Path, calibration: str = 'synthetic',
                   frames: int = 64, spec_path: str | Path | None = None,
                   input_size: tuple[int, int] | None = None, check_frames: int = 16,
                   min_agreement: float = 0.99, preset: str = 'mixed',
                   progress: Callable[[str], None] | None = None) -> tuple[Path, Parity]:
    """Quantise `source` to INT8 into `out` (+ `<stem>.json`); return (path, parity vs fp32).

    Raises QuantizeError (nothing written) on bad arguments, a failed quantisation or labels
    agreeing with the fp32 model on less than `min_agreement` of the check pixels.
    """
    out = Path(out)
    tool = QUANTIZED_SUFFIXES.get(out.suffix.lower())
    if tool is None:
        raise QuantizeError(f'--out must end in {" or ".join(QUANTIZED_SUFFIXES)} (OpenVINO IR '
                            f'by NNCF, or ONNX QDQ by ONNX Runtime), got {str(out)!r}')
    if calibration not in CALIBRATIONS:
        raise QuantizeError(f'calibration must be one of {", ".join(CALIBRATIONS)}, got '
                            f'{calibration!r}')
    if frames < 1 or check_frames < 1:
        raise QuantizeError(f'frames and check frames must be >= 1, got {frames}, '
                            f'{check_frames}')
    if preset not in ('mixed', 'performance'):
        raise QuantizeError(f"preset must be 'mixed' or 'performance', got {preset!r}")
    say = progress or (lambda text: None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='.quantize-', dir=out.parent) as scratch:
        folder = Path(scratch)
        try:
            fp32, spec = _fp32_onnx(source, spec_path, input_size, folder)
        except ModelLoadError as exc:
            raise QuantizeError(str(exc)) from exc
        say(f'rendering {frames} calibration frames at {spec.input_size[0]}x'
            f'{spec.input_size[1]}')
        calib = [b.numpy() for b in parity_batches(spec, synthetic=frames, noise=0)]
        tmp = folder / f'int8{out.suffix}'
        say(f'quantising with {tool}')
        try:
            if tool == 'nncf':
                validation = [b.numpy() for b in parity_batches(
                    spec, synthetic=VALIDATION_FRAMES, noise=0,
                    seed_start=CHECK_SEED_START + VALIDATION_OFFSET)]
                _quantize_openvino(fp32, tmp, calib, validation, preset,
                                   max_drop=(1.0 - min_agreement) / 2)
            else:
                _quantize_onnxruntime(fp32, tmp, calib, preset)
        except QuantizeError:
            raise
        except Exception as exc:  # noqa: B902 - the quantisers raise many types
            raise QuantizeError(f'{tool} could not quantise {source!r}: {exc}') from exc
        runtime = 'openvino' if tool == 'nncf' else 'onnxruntime'
        say(f'checking INT8 against fp32 on {check_frames} frames')
        checks = parity_batches(spec, synthetic=check_frames, noise=0,
                                seed_start=CHECK_SEED_START + CHECK_OFFSET)
        cpu = torch.device('cpu')
        parity = compare(graph_segmenter(runtime, fp32, spec, device=cpu)[0],
                         graph_segmenter(runtime, tmp, spec, device=cpu)[0], checks)
        if parity.label_agreement < min_agreement:
            raise QuantizeError(f'the INT8 model agrees with fp32 on only '
                                f'{parity.label_agreement:.2%} of the pixels (needs '
                                f'{min_agreement:.0%}); nothing written')
        doc = sidecar_doc(spec, format='openvino' if tool == 'nncf' else 'onnx',
                          precision='int8', quantizer=tool, preset=preset, source=str(source),
                          calibration={'source': calibration, 'frames': frames,
                                       'seed_start': CHECK_SEED_START},
                          source_sha256=source_digest(source),
                          parity_vs_fp32=parity.to_dict())
        _move_into_place(tmp, out, doc)
    return out, parity


def source_digest(source: str) -> str | None:
    """Return the SHA-256 of the model file `source` stands for (None for registry names).

    Kept in the INT8 sidecar, so a quantised copy of the default model is known to be stale once
    the default model is retrained.
    """
    from seg_perception.segmentation.model_spec import model_file
    path = model_file(source)
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _move_into_place(tmp: Path, out: Path, doc: dict[str, Any]) -> None:
    """Rename the quantised files (and the IR's .bin) and write the sidecar, sidecar last."""
    if tmp.suffix == '.xml':
        tmp.with_suffix('.bin').replace(out.with_suffix('.bin'))
    tmp.replace(out)
    side_tmp = out.with_name(f'.{out.stem}.tmp.json')
    side_tmp.write_text(json.dumps(doc, indent=2) + '\n', encoding='utf-8')
    side_tmp.replace(out.with_suffix('.json'))
