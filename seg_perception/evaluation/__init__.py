"""Evaluation of segmentation models: metrics (IoU, mIoU, accuracy) and offline/online runs."""
