"""Reports: figures from the store (figures.py), charts (charts.py), renderings (render.py)."""
