"""ament_python build of w2r2_ros: the same file serves `colcon build` on a robot and `pip install` here."""
from glob import glob

from setuptools import find_packages, setup

package_name = "w2r2_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["w2r2_ros", "w2r2_ros.*"]) + ["w2r2_training"],
    package_dir={"w2r2_training": "training"},
    package_data={"w2r2_ros": ["models/default/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/msg", glob("msg/*.msg")),
        ("share/" + package_name + "/rviz", glob("rviz/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="w2r2_ros developers",
    maintainer_email="w2r2-ros@example.com",
    description="Language-driven 3D grounding (W2R2) for ROS 2: scene memory, grounding model, markers.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "w2r2-demo = w2r2_ros.cli.demo:main",
            "w2r2-bringup = w2r2_ros.cli.bringup:main",
            "w2r2-train = w2r2_training.train_cli:main",
            "w2r2-eval = w2r2_training.eval_cli:main",
            "scene_memory_node = w2r2_ros.ros.scene_memory_node:main",
            "grounding_node = w2r2_ros.ros.grounding_node:main",
        ],
    },
)
