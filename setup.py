"""pip build of w2r2_ros for the development virtualenv (scripts/setup.sh).

On a robot, colcon builds the package with CMakeLists.txt (ament_cmake: it must generate the
messages in msg/); see docs/INTERFACES.md. Console scripts are listed once, in setup.cfg.
"""
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
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/msg", glob("msg/*.msg")),
        ("share/" + package_name + "/srv", glob("srv/*.srv")),
        ("share/" + package_name + "/action", glob("action/*.action")),
        ("share/" + package_name + "/rviz", glob("rviz/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="w2r2_ros developers",
    maintainer_email="w2r2-ros@example.com",
    description="Language-driven 3D grounding (W2R2) for ROS 2: scene memory, grounding model, markers.",
    license="Apache-2.0",
)
