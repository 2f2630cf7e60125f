"""Adapting a segmentation model to a user's own cell without labels (`adapt`)."""
