"""w2r2-demo on recordings as robots make them: RealSense names, compressed images, /tf, Odometry; bad bags."""
import re
from pathlib import Path

import pytest

from w2r2_ros.cli.demo import main
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.recordings.bag_reader import BagTopics
from w2r2_ros.sim.bag_writer import BagWriteConfig, write_bag
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene

REALSENSE = BagTopics(color="/camera/camera/color/image_raw", depth="/camera/camera/aligned_depth_to_color/image_raw",
                      camera_info="/camera/camera/color/camera_info")


@pytest.fixture(scope="module")
def recording():
    return record_scene(generate_scene("demo-robot-bag", 6), n_frames=8, intrinsics=Intrinsics.from_fov(160, 120, 70.0))


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("w2r2-demo")]
    assert len(err) == 1, err
    return err[0]


@pytest.mark.slow
def test_robot_like_bag_plays_with_flags_only(recording, tmp_path, capsys):
    """/tf, /tf_static, JPEG colour and compressedDepth under RealSense names, the pose from an Odometry of base_link."""
    config = BagWriteConfig(color_format="jpeg", depth_format="compressedDepth", pose=False)
    bag = write_bag(recording, tmp_path / "bag", topics=REALSENSE, config=config)
    out = tmp_path / "out"
    code = main(["--bag", str(bag), "--out", str(out), "--checkpoint", str(tmp_path / "no-model"), "--query", "the lamp",
                 "--pose-source", "odometry", "--odom-topic", "/odom", "--rgb-topic", REALSENSE.color,
                 "--depth-topic", REALSENSE.depth, "--camera-info-topic", REALSENSE.camera_info])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert any(line.startswith("playing ") and "/camera/camera/color/image_raw/compressed" in line
               and "/odom" in line and "/tf_static" in line for line in lines), lines
    received = next(line for line in lines if line.startswith("scene memory received:"))
    assert "odometry 8" in received and "rgb 8" in received
    keyframes = int(re.search(r"keyframe (\d+)", received).group(1))
    assert keyframes >= 6
    assert any(line.startswith("dropped: ") for line in lines)
    assert re.search(r"^peak RSS \d+ MB$", "\n".join(lines), re.MULTILINE)
    assert any(line.startswith("scene memory: ") and " 0 proposals" not in line for line in lines)


def test_bag_without_camera_topics_names_what_it_has(recording, tmp_path, capsys):
    bag = write_bag(recording, tmp_path / "bag", topics=BagTopics(color="/front/rgb", depth="/front/depth"))
    assert main(["--bag", str(bag), "--out", str(tmp_path / "out")]) == 2
    line = one_line_error(capsys)
    assert "no camera topics" in line and "/camera/color/image_raw" in line
    assert "/front/rgb (sensor_msgs/msg/Image, 8)" in line and "--rgb-topic" in line


def test_bag_without_tf_suggests_the_pose_topics_it_has(recording, tmp_path, capsys):
    bag = write_bag(recording, tmp_path / "bag", topics=BagTopics(odometry="/camera/odom"),
                    config=BagWriteConfig(tf=False, pose=False))
    assert main(["--bag", str(bag), "--out", str(tmp_path / "out")]) == 2
    line = one_line_error(capsys)
    assert "no /tf or /tf_static" in line and "/camera/odom (nav_msgs/msg/Odometry, 8)" in line
    assert "--pose-source odometry" in line


@pytest.mark.parametrize("damage", ["not a bag", "bad metadata"])
def test_unreadable_bag_is_one_line_and_exit_2(recording, tmp_path, capsys, damage):
    bag = tmp_path / "bag"
    if damage == "not a bag":
        bag.mkdir()
        (bag / "notes.txt").write_text("hello")
    else:
        write_bag(recording, bag)
        (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    assert main(["--bag", str(bag), "--out", str(tmp_path / "out")]) == 2
    assert str(bag) in one_line_error(capsys)


@pytest.mark.slow
def test_corrupt_message_mid_bag_is_one_line_and_exit_2(recording, tmp_path, capsys):
    bag = write_bag(recording, tmp_path / "bag")
    db = next(bag.glob("*.db3"))
    import sqlite3

    with sqlite3.connect(db) as connection:  # cut one colour image's CDR short, as a crashed recorder leaves it
        connection.execute("UPDATE messages SET data = substr(data, 1, 40) WHERE id = (SELECT m.id FROM messages m "
                           "JOIN topics t ON m.topic_id = t.id WHERE t.name = '/camera/color/image_raw' LIMIT 1 OFFSET 3)")
    assert main(["--bag", str(bag), "--out", str(tmp_path / "out"), "--checkpoint", str(tmp_path / "no-model")]) == 2
    line = one_line_error(capsys)
    assert "cannot decode a sensor_msgs/msg/Image message on /camera/color/image_raw" in line
