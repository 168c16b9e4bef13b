"""Matching service: suggestions, requests and the mentorship lifecycle, cohort matching."""
