"""Device register-map templates (YAML), shipped as package data."""
