"""Exporters: rollforge's internal conversation -> the exact row shapes each trainer reads."""
