# Injected by scripts/build_interfaces.sh (CMAKE_PROJECT_INCLUDE); never used on a robot.
# The ROS 2 PyPI wheels were built in a manylinux container and their exported CMake targets
# (e.g. std_msgs::std_msgs__rosidl_generator_py) name that container's Python include folders
# (/opt/python/cp311-cp311/...), which do not exist here; CMake refuses to generate with them.
# At the end of configuration, drop every include folder of an imported target that does not
# exist; the generator's own targets get this interpreter's Python and NumPy headers anyway.
function(_w2r2_drop_missing_include_dirs)
  get_directory_property(imported_targets DIRECTORY "${CMAKE_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(target IN LISTS imported_targets)
    get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT dirs)
      continue()
    endif()
    set(kept "")
    foreach(dir IN LISTS dirs)
      if(dir MATCHES "^\\$<" OR EXISTS "${dir}")
        list(APPEND kept "${dir}")
      else()
        message(STATUS "wheel fixup: ${target} drops missing include folder ${dir}")
      endif()
    endforeach()
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${kept}")
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _w2r2_drop_missing_include_dirs)
