"""Local development host: runs function_app.py against Azurite without Core Tools."""
