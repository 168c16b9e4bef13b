"""Notification service."""
