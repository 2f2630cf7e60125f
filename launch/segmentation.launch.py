"""Launch segmentation_node in a camera namespace.

With the defaults the node reads /camera/color/image_raw and publishes
/camera/color/segmentation/{labels,masks/<class>,overlay,confidence,label_info}.
The launch arguments model, device, precision and image_topic are applied on top of params_file.

    ros2 launch seg_perception segmentation.launch.py namespace:=camera device:=cpu
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
    """Declare the arguments and the segmentation node."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='camera',
            description='Camera namespace the node runs in; topics below are relative to it'),
        DeclareLaunchArgument(
            'image_topic', default_value='color/image_raw',
            description='Colour image to segment (sensor_msgs/Image; CompressedImage when it '
                        'ends in /compressed). Outputs go to <image_topic without '
                        '/image_raw>/segmentation/'),
        DeclareLaunchArgument(
            'model', default_value='default',
            description="'default' (shipped model), a registry architecture such as "
                        "'lraspp_mobilenet_v3_large' or 'unet_small', or a .pt/.ts/.onnx file "
                        'with a .json sidecar'),
        DeclareLaunchArgument(
            'device', default_value='auto', choices=['auto', 'cpu', 'cuda'],
            description="Inference device ('auto' = cuda when available)"),
        DeclareLaunchArgument(
            'precision', default_value='fp16', choices=['fp32', 'fp16', 'bf16'],
            description='Reduced precision where the hardware has it: fp16/bf16 on GPU, bf16 on '
                        'CPUs with native bf16, and on other CPUs backend auto may take the '
                        "shipped INT8 default model; 'fp32' keeps full precision everywhere"),
        DeclareLaunchArgument(
            'backend', default_value='auto', choices=['auto', 'torch', 'onnxruntime', 'openvino'],
            description="Runtime of the network ('auto' times the installed ones at start-up "
                        'and keeps the fastest)'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'segmentation.yaml']),
            description='Parameter file of segmentation_node (the arguments above override '
                        'model, device, precision, backend and image_topics in it)'),
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
        package=PACKAGE, executable='segmentation_node', name='segmentation_node',
        output='screen', additional_env={'PYTHONUNBUFFERED': '1'},
        parameters=[LaunchConfiguration('params_file'), {
            'image_topics': [[LaunchConfiguration('image_topic')]],
            'model': ParameterValue(LaunchConfiguration('model'), value_type=str),
            'device': ParameterValue(LaunchConfiguration('device'), value_type=str),
            'precision': ParameterValue(LaunchConfiguration('precision'), value_type=str),
            'backend': ParameterValue(LaunchConfiguration('backend'), value_type=str),
        }],
        ros_arguments=['--log-level', LaunchConfiguration('log_level')])
    return LaunchDescription([
        *arguments,
        shm_profile,
        GroupAction([PushRosNamespace(LaunchConfiguration('namespace')), node]),
    ])
