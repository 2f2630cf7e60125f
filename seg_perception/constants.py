"""Values shared across seg_perception, each defined once."""

#: Label value for pixels that carry no class (mono8 label images; same as vision_msgs' habit).
UNLABELED_ID: int = 255

#: Largest number of classes a mono8 label image can carry (ids 0..254).
MAX_CLASSES: int = 255
