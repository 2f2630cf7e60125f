"""Copy pretrained MobileNetV2 weights out of an ONNX DeepLabV3 into our MobileNetV2 U-Net.

Why a file importer and not a download: these machines have no model hub, and the one
pretrained segmentation network at hand (../shared/data/models/deeplabv3_mnv2_voc, TF-Hub
DeepLabV3 MobileNetV2 0.5 trained on ImageNet + COCO + Pascal VOC, Apache-2.0) comes as ONNX.
Its encoder convolutions (batch norms folded in) are taken in graph order and checked shape by
shape; DeepLab's ASPP and VOC classifier are left out (our decoder and class set replace them).
The network was trained on inputs scaled as x / 127.5 - 1, so the checkpoint's normalisation is
mean 0.5, std 0.5 (on the 0..1 pixel scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seg_perception.segmentation.mobilenetv2_unet import MobileNetV2UNet

#: name prefix of the encoder's nodes in the TF-Hub graph
ENCODER_PREFIX = 'MobilenetV2/'
#: normalisation the TF-Hub network was trained with (x / 127.5 - 1 on 0..255 pixels)
PRETRAINED_MEAN = (0.5, 0.5, 0.5)
PRETRAINED_STD = (0.5, 0.5, 0.5)


class PretrainedImportError(ValueError):
    """Raised when an ONNX file does not hold the MobileNetV2 encoder we can import."""


def encoder_convolutions(onnx_path: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Return (node name, weight OIHW, bias O) of each encoder Conv of the ONNX graph, in order."""
    import onnx
    from onnx import numpy_helper
    path = Path(onnx_path)
    if not path.is_file():
        raise PretrainedImportError(f'ONNX file {str(path)!r} does not exist')
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not ONNX
        raise PretrainedImportError(f'cannot read {str(path)!r} as ONNX: {exc}') from exc
    tensors = {t.name: t for t in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != 'Conv' or not node.name.startswith(ENCODER_PREFIX):
            continue
        if len(node.input) != 3 or node.input[1] not in tensors or node.input[2] not in tensors:
            raise PretrainedImportError(f'encoder convolution {node.name!r} has no constant '
                                        'weight and bias')
        convs.append((node.name, numpy_helper.to_array(tensors[node.input[1]]),
                      numpy_helper.to_array(tensors[node.input[2]])))
    return convs


def load_pretrained_encoder(model: MobileNetV2UNet, onnx_path: str | Path) -> int:
    """Copy the ONNX encoder weights into `model.encoder`; return how many tensors were set."""
    convs = encoder_convolutions(onnx_path)
    ours = model.encoder.ordered_convolutions()
    if len(convs) != len(ours):
        raise PretrainedImportError(
            f'{str(onnx_path)!r} has {len(convs)} MobileNetV2 encoder convolutions, the '
            f'encoder {len(ours)} (expected the TF-Hub DeepLabV3 MobileNetV2 0.5)')
    with torch.no_grad():
        for (name, weight, bias), conv in zip(convs, ours):
            if tuple(weight.shape) != tuple(conv.weight.shape) or \
                    tuple(bias.shape) != tuple(conv.bias.shape):
                raise PretrainedImportError(
                    f'{name!r}: weight {tuple(weight.shape)} does not fit '
                    f'{tuple(conv.weight.shape)}')
            conv.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
            conv.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return 2 * len(ours)


#: the ONNX tensor equal to our encoder's stride-8 feature (the layers before DeepLab's first
#: dilation are computed identically in both networks)
STRIDE8_TENSOR = 'MobilenetV2/expanded_conv_5/add'


def stride8_parity(model: MobileNetV2UNet, onnx_path: str | Path, rgb: np.ndarray) -> float:
    """Return the max |difference| of the stride-8 features of `model` and the ONNX network.

    rgb: uint8 (257, 257, 3), the ONNX input size. A check that the import copied every tensor
    into the right layer.
    """
    import onnx
    import onnxruntime as ort
    proto = onnx.load(str(onnx_path))
    proto.graph.output.append(onnx.helper.make_tensor_value_info(
        STRIDE8_TENSOR, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(proto.SerializeToString(), providers=['CPUExecutionProvider'])
    scaled = rgb.astype(np.float32) / 127.5 - 1.0
    feed = {session.get_inputs()[0].name: scaled[None]}
    theirs = session.run([STRIDE8_TENSOR], feed)[0]  # NCHW (after the graph's transpose)
    with torch.no_grad():
        ours = model.encoder(torch.from_numpy(scaled).permute(2, 0, 1)[None])[2].numpy()
    if theirs.shape != ours.shape:
        raise PretrainedImportError(f'stride-8 features differ in shape: {theirs.shape} vs '
                                    f'{ours.shape}')
    return float(np.abs(theirs - ours).max())
