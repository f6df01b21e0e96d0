"""The voice bot's scripts: vocabulary (model), validation, rendering, the pure engine, and the YAML loader."""
