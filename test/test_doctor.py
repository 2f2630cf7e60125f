"""`seg_perception doctor`: static checks with controlled environments, --topic over real DDS."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from ros_harness import REPO_ROOT
from seg_perception import doctor
from seg_perception.doctor import (Check, check_builtin_transports, check_discovery,
                                   check_profile, check_rmw, check_socket_buffers, exit_code,
                                   topic_checks, TopicSummary)

SHM_PROFILE = REPO_ROOT / 'config' / 'fastdds_shm.xml'
BAD_VARS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTDDS_BUILTIN_TRANSPORTS', 'RMW_IMPLEMENTATION')


def run_doctor(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the CLI in its own process with this test's ROS isolation plus `env`."""
    base = {k: v for k, v in os.environ.items() if k not in BAD_VARS}
    return subprocess.run([sys.executable, '-m', 'seg_perception.cli', 'doctor', *args],
                          env={**base, **env}, capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)


def line_of(output: str, name: str) -> str:
    lines = [ln for ln in output.splitlines() if f'] {name}' in ln]
    assert lines, f'no {name!r} line in:\n{output}'
    return lines[0]


def test_the_shipped_profile_passes_and_the_command_exits_zero() -> None:
    done = run_doctor(FASTDDS_DEFAULT_PROFILES_FILE=str(SHM_PROFILE))
    assert done.returncode == 0, done.stdout + done.stderr
    line = line_of(done.stdout, 'Fast DDS profile')
    assert line.startswith('[OK  ]') and 'seg_shm_16mb' in line and '16777216' in line
    assert line_of(done.stdout, 'RMW').startswith('[OK  ]')
    assert f'ROS_DOMAIN_ID: {os.environ["ROS_DOMAIN_ID"]}' in done.stdout   # conftest's
    assert 'ROS_AUTOMATIC_DISCOVERY_RANGE: LOCALHOST' in done.stdout


def test_a_missing_profile_fails_with_the_fix(tmp_path: Path) -> None:
    done = run_doctor(FASTDDS_DEFAULT_PROFILES_FILE=str(tmp_path / 'nope.xml'))
    assert done.returncode == 1
    line = line_of(done.stdout, 'Fast DDS profile')
    assert line.startswith('[FAIL]') and 'nope.xml does not exist' in line
    assert '-> fix: point it at an existing file' in line and 'fastdds_shm.xml' in line


def test_a_malformed_profile_fails(tmp_path: Path) -> None:
    broken = tmp_path / 'broken.xml'
    broken.write_text('<dds><profiles><transport_descriptors>')
    done = run_doctor(FASTDDS_DEFAULT_PROFILES_FILE=str(broken))
    assert done.returncode == 1
    line = line_of(done.stdout, 'Fast DDS profile')
    assert line.startswith('[FAIL]') and 'not valid XML' in line


def test_no_profile_warns_but_exits_zero() -> None:
    done = run_doctor()
    assert done.returncode == 0
    line = line_of(done.stdout, 'Fast DDS profile')
    assert line.startswith('[WARN]') and 'go over UDP' in line and 'LARGE_DATA' in line


def test_large_data_builtin_transport_makes_a_missing_profile_fine() -> None:
    env = {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}
    assert check_profile(env).level == 'OK'
    assert check_builtin_transports(env).level == 'OK'
    assert check_builtin_transports({'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA?max_msg_size=1MB'}
                                    ).level == 'OK'
    udp = check_builtin_transports({'FASTDDS_BUILTIN_TRANSPORTS': 'UDPv4'})
    assert udp.level == 'WARN' and 'LARGE_DATA' in udp.fix
    bogus = check_builtin_transports({'FASTDDS_BUILTIN_TRANSPORTS': 'FAST'})
    assert bogus.level == 'FAIL' and 'LARGE_DATA' in bogus.fix


@pytest.mark.parametrize('xml, level, words', [
    ('<dds xmlns="http://www.eprosima.com"><profiles><transport_descriptors>'
     '<transport_descriptor><transport_id>u</transport_id><type>UDPv4</type>'
     '</transport_descriptor></transport_descriptors></profiles></dds>', 'WARN', 'no SHM'),
    ('<profiles><transport_descriptors><transport_descriptor><transport_id>s</transport_id>'
     '<type>SHM</type><segment_size>262144</segment_size></transport_descriptor>'
     '</transport_descriptors><participant profile_name="p" is_default_profile="true"><rtps>'
     '<userTransports><transport_id>s</transport_id></userTransports></rtps></participant>'
     '</profiles>', 'WARN', '262144-byte segment'),
    ('<profiles><transport_descriptors><transport_descriptor><transport_id>s</transport_id>'
     '<type>SHM</type><segment_size>16777216</segment_size></transport_descriptor>'
     '</transport_descriptors><participant profile_name="p"><rtps><userTransports>'
     '<transport_id>s</transport_id></userTransports></rtps></participant></profiles>',
     'WARN', 'is_default_profile'),
    ('<profiles><transport_descriptors><transport_descriptor><transport_id>s</transport_id>'
     '<type>SHM</type><segment_size>big</segment_size></transport_descriptor>'
     '</transport_descriptors></profiles>', 'FAIL', 'not a number'),
    ('<html><body/></html>', 'FAIL', 'not a Fast DDS profile'),
])
def test_profile_contents(tmp_path: Path, xml: str, level: str, words: str) -> None:
    path = tmp_path / 'profile.xml'
    path.write_text(xml)
    check = check_profile({'FASTDDS_DEFAULT_PROFILES_FILE': str(path)})
    assert check.level == level and words in check.detail, check.line()


def test_another_rmw_makes_the_fast_dds_checks_informational(tmp_path: Path) -> None:
    env = {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp',
           'FASTDDS_DEFAULT_PROFILES_FILE': str(tmp_path / 'absent.xml')}
    (tmp_path / 'librmw_cyclonedds_cpp.so').write_bytes(b'')
    rmw = check_rmw(env, [tmp_path])
    assert rmw.level == 'WARN' and 'do not apply' in rmw.detail
    assert check_profile(env).level == 'INFO'
    missing = check_rmw({'RMW_IMPLEMENTATION': 'rmw_zenoh_cpp'}, [tmp_path])
    assert missing.level == 'WARN' and 'librmw_zenoh_cpp.so not found' in missing.detail


def test_socket_buffers_against_the_frame_size() -> None:
    small = check_socket_buffers(212992, 212992)
    assert small.level == 'WARN' and 'Linux default' in small.detail
    assert small.fix == 'sudo sysctl -w net.core.rmem_max=4194304 net.core.wmem_max=4194304'
    assert check_socket_buffers(4194304, 4194304).level == 'OK'
    big = check_socket_buffers(4194304, 4194304, frame_bytes=1920 * 1080 * 3)
    assert big.level == 'WARN' and 'rmem_max=33554432' in big.fix
    assert check_socket_buffers(None, None).level == 'WARN'


def test_discovery_settings_are_information_and_nonsense_fails() -> None:
    levels = [c.level for c in check_discovery({'ROS_DOMAIN_ID': '7',
                                                'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'})]
    assert levels == ['INFO', 'INFO']
    bad = check_discovery({'ROS_DOMAIN_ID': 'seven', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'MOON'})
    assert [c.level for c in bad] == ['FAIL', 'WARN']
    assert exit_code(bad) == 1 and exit_code([Check('WARN', 'x', 'y')]) == 0


def test_topic_checks_without_ros() -> None:
    seen = TopicSummary(topic='/cam/image_raw', duration_s=2.0, types=('sensor_msgs/msg/Image',),
                        publishers=(('/driver', 'best_effort', 'volatile'),),
                        subscribed_reliability='best_effort',
                        arrivals_s=(0.0, 0.5, 1.0), sizes_bytes=(921700,) * 3)
    checks = topic_checks(seen)
    assert [c.level for c in checks] == ['OK', 'OK', 'WARN']
    assert '2.0 Hz' in checks[1].detail and '~15 fragments' in checks[2].detail
    small = topic_checks(TopicSummary(**{**seen.__dict__, 'sizes_bytes': (500,) * 3}))
    assert [c.level for c in small] == ['OK', 'OK']
    nobody = topic_checks(TopicSummary(**{**seen.__dict__, 'publishers': ()}))
    assert [c.level for c in nobody] == ['FAIL']
    silent = topic_checks(TopicSummary(**{**seen.__dict__, 'arrivals_s': (),
                                          'sizes_bytes': ()}))
    assert [c.level for c in silent] == ['OK', 'FAIL', 'WARN']


def test_duration_must_be_positive() -> None:
    done = run_doctor('--duration-s', '0')
    assert done.returncode != 0 and 'positive' in done.stderr


@pytest.mark.ros
@pytest.mark.parametrize('reliability', ['reliable', 'best_effort'])
def test_topic_against_a_live_publisher(ros_probe, reliability: str) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from seg_perception.conversions import numpy_to_image
    policy = {'reliable': ReliabilityPolicy.RELIABLE,
              'best_effort': ReliabilityPolicy.BEST_EFFORT}[reliability]
    topic = f'/doctor_{reliability}/image_raw'
    pub = ros_probe.node.create_publisher(Image, topic, QoSProfile(depth=5, reliability=policy))
    msg = numpy_to_image(np.zeros((240, 320, 3), np.uint8), 'rgb8')   # 230 kB: 4 datagrams
    ros_probe.node.create_timer(0.1, lambda: pub.publish(msg))
    done = run_doctor('--topic', topic, '--duration-s', '2')
    out = done.stdout
    publishers = line_of(out, f'topic {topic} publishers')
    assert publishers.startswith('[OK  ]') and '/test_probe' in publishers
    assert f'({reliability}, volatile)' in publishers and 'sensor_msgs/msg/Image' in publishers
    messages = line_of(out, f'topic {topic} messages')
    if reliability == 'reliable':
        assert done.returncode == 0, out + done.stderr
        assert messages.startswith('[OK  ]') and 'Hz' in messages, messages
        assert f'subscribed {reliability}' in messages
        assert 'best effort' not in out
    else:
        warning = line_of(out, f'topic {topic} best effort')
        assert warning.startswith('[WARN]') and 'large frames are being lost' in warning
        assert 'FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA' in warning and 'reliable' in warning
        assert 'fastdds_shm.xml' in warning
        assert done.returncode == exit_code(
            [Check(ln[1:5].strip(), 'x', 'y') for ln in out.splitlines() if ln.startswith('[')])


def test_module_reports_every_level_it_uses() -> None:
    assert set(doctor.LEVELS) == {'OK', 'INFO', 'WARN', 'FAIL'}
