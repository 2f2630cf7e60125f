"""Grasp assistance: depth decoding, back-projection, label/depth fusion, regions, candidates.

ROS-free: numpy and OpenCV on the default path, Open3D only for optional plane fits/downsampling.
"""

from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.camera_model import InvalidCameraInfoError, PinholeCamera
from seg_perception.grasp.candidates import GRASP_KINDS, GraspCandidate
from seg_perception.grasp.config import GraspConfig
from seg_perception.grasp.depth import (depth_to_metres, DEPTH_TRAITS,
                                        UnsupportedDepthEncodingError)
from seg_perception.grasp.fusion import FusedMasks
from seg_perception.grasp.pipeline import GraspPipeline, GraspResult, POINT_DTYPE
from seg_perception.grasp.regions import Region

__all__ = ['BackProjector', 'DEPTH_TRAITS', 'FusedMasks', 'GRASP_KINDS', 'GraspCandidate',
           'GraspConfig', 'GraspPipeline', 'GraspResult', 'InvalidCameraInfoError',
           'PinholeCamera', 'POINT_DTYPE', 'Region', 'UnsupportedDepthEncodingError',
           'depth_to_metres']
