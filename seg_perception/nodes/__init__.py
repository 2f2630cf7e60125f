"""Thin rclpy adapters (the only part of seg_perception that imports rclpy)."""
