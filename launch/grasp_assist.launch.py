"""Launch grasp_assist_node in a camera namespace.

With the defaults the node reads /camera/color/segmentation/labels, /camera/depth/image_rect and
/camera/depth/camera_info, and publishes /camera/grasp/{graspable_points,candidates,
candidate_poses,markers} and the service /camera/grasp/get_grasp_candidates.
The topic arguments are applied on top of params_file.

    ros2 launch seg_perception grasp_assist.launch.py namespace:=camera
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'seg_perception'
BOOLEANS = ['true', 'false']


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the grasp-assist node."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='camera',
            description='Camera namespace the node runs in; topics below are relative to it'),
        DeclareLaunchArgument(
            'labels_topic', default_value='color/segmentation/labels',
            description='Label image (mono8 class ids) of segmentation_node: '
                        '<its image_topic without /image_raw>/segmentation/labels'),
        DeclareLaunchArgument(
            'depth_topic', default_value='depth/image_rect',
            description='Depth registered to the colour image (16UC1 mm or 32FC1 m)'),
        DeclareLaunchArgument(
            'camera_info_topic', default_value='depth/camera_info',
            description='CameraInfo of the depth image'),
        DeclareLaunchArgument(
            'color_topic', default_value='',
            description="Colour image registered to depth for an XYZRGB cloud ('' = points "
                        'coloured by class)'),
        DeclareLaunchArgument(
            'container_mode', default_value='auto', choices=['auto', 'reference', 'none'],
            description="Bin step: 'auto' finds the bin in each depth frame, 'reference' uses "
                        'an empty-bin depth frame (container_reference_file or the '
                        "capture_container_reference service), 'none' is off"),
        DeclareLaunchArgument(
            'container_reference_file', default_value='',
            description='Empty-bin depth (uint16 PNG in mm, or .npy metres) for '
                        "container_mode:=reference ('' = capture it by service)"),
        DeclareLaunchArgument(
            'target_frame', default_value='',
            description="Frame of the grasp outputs, e.g. base_link ('' = the depth image's "
                        'optical frame); the transform from tf2, or from base_from_camera in '
                        'params_file'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'grasp_assist.yaml']),
            description='Parameter file of grasp_assist_node (the topic and container '
                        'arguments above override those in it)'),
        DeclareLaunchArgument(
            'log_level', default_value='info', choices=['debug', 'info', 'warn', 'error'],
            description='Logging level of the node'),
        DeclareLaunchArgument(
            'use_shm_transport', default_value='true', choices=BOOLEANS,
            description='Load the Fast DDS shared-memory profile (config/fastdds_shm.xml) '
                        'through FASTDDS_DEFAULT_PROFILES_FILE'),
    ]
    shm_profile = SetEnvironmentVariable(
        'FASTDDS_DEFAULT_PROFILES_FILE', PathJoinSubstitution([share, 'config',
                                                               'fastdds_shm.xml']),
        condition=IfCondition(LaunchConfiguration('use_shm_transport')))
    node = Node(
        package=PACKAGE, executable='grasp_assist_node', name='grasp_assist_node',
        output='screen', additional_env={'PYTHONUNBUFFERED': '1'},
        parameters=[LaunchConfiguration('params_file'), {
            name: ParameterValue(LaunchConfiguration(name), value_type=str)
            for name in ('labels_topic', 'depth_topic', 'camera_info_topic', 'color_topic',
                         'container_mode', 'container_reference_file', 'target_frame')
        }],
        ros_arguments=['--log-level', LaunchConfiguration('log_level')])
    return LaunchDescription([
        *arguments,
        shm_profile,
        GroupAction([PushRosNamespace(LaunchConfiguration('namespace')), node]),
    ])
