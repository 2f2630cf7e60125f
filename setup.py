"""Install seg_perception (ament_python): the package, its data, launch and config files."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'seg_perception'

# Node executables: installed into lib/seg_perception so `ros2 run` and launch find them.
NODE_EXECUTABLES = [
    'segmentation_node = seg_perception.nodes.segmentation_node:main',
    'segmentation_lifecycle_node = seg_perception.nodes.segmentation_lifecycle_node:main',
    'grasp_assist_node = seg_perception.nodes.grasp_assist_node:main',
    'synthetic_camera_node = seg_perception.nodes.synthetic_camera_node:main',
    'bag_player = seg_perception.nodes.bag_player:main',
    'bag_recorder = seg_perception.nodes.bag_recorder:main',
    'seg_perception = seg_perception.cli:main',
]


def _tree(src: str) -> list:
    """Map every file below `src` to share/<package>/<its folder>."""
    out = {}
    for path in glob(os.path.join(src, '**', '*'), recursive=True):
        if os.path.isfile(path):
            out.setdefault(os.path.join('share', PACKAGE, os.path.dirname(path)), []).append(path)
    return sorted(out.items())


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={PACKAGE: ['resources/*.yaml', 'resources/models/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        # Environment hooks (listed in colcon.pkg): put lib/seg_perception on PATH.
        ('share/' + PACKAGE + '/hook', glob('resource/hook/*')),
        *_tree('launch'),
        *_tree('config'),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='seg_perception maintainers',
    maintainer_email='maintainers@seg-perception.dev',
    description='Semantic segmentation and grasp assistance for logistics cells (ROS 2).',
    license='Apache-2.0',
    entry_points={'console_scripts': NODE_EXECUTABLES},
)
