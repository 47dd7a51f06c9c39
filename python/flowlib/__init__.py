"""Model definitions, checkpoint import and export for the optical-flow addon."""
