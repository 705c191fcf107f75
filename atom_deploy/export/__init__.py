"""What to export (modules.py, contract.py) and the export run itself (pipeline.py)."""
