"""Reading rollouts and writing datasets."""
