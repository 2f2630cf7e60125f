# generated-free hook: put the node executables (lib/seg_perception) on PATH
export PATH="$COLCON_CURRENT_PREFIX/lib/seg_perception${PATH:+:$PATH}"
