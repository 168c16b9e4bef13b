"""Shared service kit: written once, used by every service for the hard parts of messaging."""
