"""Segmentation models, checkpoints and the inference engine.

Import the submodules you need (``registry``, ``model_spec``, ``engine``...); this package imports
nothing heavy itself so that ``import seg_perception.segmentation`` stays cheap.
"""
