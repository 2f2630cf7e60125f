"""Launch the perception pipeline: segmentation and grasp assist, with an optional source and RViz.

Sources (all optional): the synthetic RGB-D camera (use_synthetic_camera:=true) or a rosbag2
played in a loop (bag:=<folder or .mcap>). With the defaults, in namespace 'camera':
color/image_raw -> segmentation_node -> color/segmentation/labels (+ masks, overlay) ->
grasp_assist_node (+ depth/image_rect, depth/camera_info) -> grasp/{graspable_points,
candidates, candidate_poses, markers}.

    ros2 launch seg_perception perception.launch.py use_synthetic_camera:=true device:=cpu
"""

from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, GroupAction, IncludeLaunchDescription,
                            SetEnvironmentVariable)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import (AndSubstitution, LaunchConfiguration, NotEqualsSubstitution,
                                  NotSubstitution, PathJoinSubstitution)
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'seg_perception'
BOOLEANS = ['true', 'false']


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments, include both node launch files, add source and RViz."""
    share = FindPackageShare(PACKAGE)
    arg = LaunchConfiguration
    arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='camera',
            description='Camera namespace of all nodes; topics below are relative to it'),
        DeclareLaunchArgument(
            'image_topic', default_value='color/image_raw',
            description='Colour image to segment; outputs go to <image_topic without '
                        '/image_raw>/segmentation/'),
        DeclareLaunchArgument(
            'labels_topic', default_value='color/segmentation/labels',
            description='Labels read by grasp_assist_node: must match image_topic '
                        '(color/image_raw -> color/segmentation/labels)'),
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
            'segmentation_params_file',
            default_value=PathJoinSubstitution([share, 'config', 'segmentation.yaml']),
            description='Parameter file of segmentation_node'),
        DeclareLaunchArgument(
            'container_mode', default_value='auto', choices=['auto', 'reference', 'none'],
            description="grasp_assist_node's bin step: 'auto', 'reference' (an empty-bin depth "
                        "frame) or 'none'"),
        DeclareLaunchArgument(
            'container_reference_file', default_value='',
            description="Empty-bin depth for container_mode:=reference ('' = capture it by "
                        'the capture_container_reference service)'),
        DeclareLaunchArgument(
            'target_frame', default_value='',
            description="Frame of grasp_assist_node's outputs, e.g. base_link ('' = the "
                        "camera's optical frame); base_from_camera in grasp_params_file, or tf2"),
        DeclareLaunchArgument(
            'grasp_params_file',
            default_value=PathJoinSubstitution([share, 'config', 'grasp_assist.yaml']),
            description='Parameter file of grasp_assist_node'),
        DeclareLaunchArgument(
            'use_synthetic_camera', default_value='false', choices=BOOLEANS,
            description='Start synthetic_camera_node (a simulated RGB-D logistics cell) in the '
                        'namespace'),
        DeclareLaunchArgument(
            'camera_rate_hz', default_value='10.0',
            description='Frame rate of the synthetic camera'),
        DeclareLaunchArgument(
            'bag', default_value='',
            description="rosbag2 folder or .mcap/.db3 file to play with bag_player ('' = none); "
                        'its topics are published under their recorded names'),
        DeclareLaunchArgument(
            'bag_loop', default_value='true', choices=BOOLEANS,
            description='Play the bag again and again (bag_player --loop)'),
        DeclareLaunchArgument(
            'rviz', default_value='false', choices=BOOLEANS,
            description='Start rviz2 with config/seg_perception.rviz'),
        DeclareLaunchArgument(
            'log_level', default_value='info', choices=['debug', 'info', 'warn', 'error'],
            description='Logging level of all nodes'),
        DeclareLaunchArgument(
            'use_shm_transport', default_value='true', choices=BOOLEANS,
            description='Load the Fast DDS shared-memory profile (config/fastdds_shm.xml) '
                        'through FASTDDS_DEFAULT_PROFILES_FILE in every process'),
    ]
    common = {'namespace': arg('namespace'), 'log_level': arg('log_level'),
              'use_shm_transport': arg('use_shm_transport')}
    segmentation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([share, 'launch', 'segmentation.launch.py'])),
        launch_arguments={**common, 'image_topic': arg('image_topic'), 'model': arg('model'),
                          'device': arg('device'), 'precision': arg('precision'),
                          'backend': arg('backend'),
                          'params_file': arg('segmentation_params_file')}.items())
    grasp = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([share, 'launch', 'grasp_assist.launch.py'])),
        launch_arguments={**common, 'labels_topic': arg('labels_topic'),
                          'depth_topic': arg('depth_topic'),
                          'camera_info_topic': arg('camera_info_topic'),
                          'color_topic': arg('color_topic'),
                          'container_mode': arg('container_mode'),
                          'container_reference_file': arg('container_reference_file'),
                          'target_frame': arg('target_frame'),
                          'params_file': arg('grasp_params_file')}.items())
    log_args = ['--log-level', arg('log_level')]
    unbuffered = {'PYTHONUNBUFFERED': '1'}
    synthetic_camera = Node(
        package=PACKAGE, executable='synthetic_camera_node', name='synthetic_camera',
        output='screen', additional_env=unbuffered,
        parameters=[{'rate_hz': ParameterValue(arg('camera_rate_hz'), value_type=float)}],
        ros_arguments=log_args, condition=IfCondition(arg('use_synthetic_camera')))
    has_bag = NotEqualsSubstitution(arg('bag'), '')
    bag_looped = Node(
        package=PACKAGE, executable='bag_player', name='bag_player', output='screen',
        additional_env=unbuffered, arguments=[arg('bag'), '--loop', '--no-progress'],
        ros_arguments=log_args, condition=IfCondition(AndSubstitution(has_bag, arg('bag_loop'))))
    bag_once = Node(
        package=PACKAGE, executable='bag_player', name='bag_player', output='screen',
        additional_env=unbuffered, arguments=[arg('bag'), '--no-progress'],
        ros_arguments=log_args,
        condition=IfCondition(AndSubstitution(has_bag, NotSubstitution(arg('bag_loop')))))
    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2', output='screen',
        arguments=['-d', PathJoinSubstitution([share, 'config', 'seg_perception.rviz'])],
        ros_arguments=log_args, condition=IfCondition(arg('rviz')))
    return LaunchDescription([
        *arguments,
        # Before any process starts, so every participant gets the same transports.
        SetEnvironmentVariable(
            'FASTDDS_DEFAULT_PROFILES_FILE',
            PathJoinSubstitution([share, 'config', 'fastdds_shm.xml']),
            condition=IfCondition(arg('use_shm_transport'))),
        GroupAction([PushRosNamespace(arg('namespace')), synthetic_camera, bag_looped,
                     bag_once]),
        GroupAction([segmentation]),
        GroupAction([grasp]),
        rviz,
    ])
