"""bench backends reuses a cached INT8 model only when it was made from the same weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from seg_perception.bench import backends_bench
from seg_perception.segmentation import quantize


@pytest.mark.parametrize('same_weights', [True, False])
def test_cached_int8_model_is_reused_only_for_the_same_weights(
        tmp_path: Path, monkeypatch, same_weights: bool) -> None:
    out = tmp_path / 'default_int8_xml.xml'
    out.write_text('<net/>')
    digest = quantize.source_digest('default') if same_weights else '0' * 64
    out.with_suffix('.json').write_text(json.dumps(
        {'export': {'source': 'default', 'source_sha256': digest}}))
    made = []
    monkeypatch.setattr(quantize, 'quantize_model', lambda *a, **k: made.append(k['out']))
    args = argparse.Namespace(model='default', models_dir=tmp_path)
    assert backends_bench._int8_model(args, '.xml', lambda text: None) == str(out)
    assert made == ([] if same_weights else [out])
