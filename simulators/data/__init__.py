"""The bundled profile extract (CSV, see SOURCE.md), shipped as package data."""
