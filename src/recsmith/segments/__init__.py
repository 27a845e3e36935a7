"""Segments of users formed by their profiles (age band, gender, occupation, plan…), and the
popularity within them that answers users the models know nothing of (#15)."""
