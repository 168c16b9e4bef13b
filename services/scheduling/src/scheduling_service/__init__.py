"""Scheduling service."""
